"""What a memory may tell synthesis about itself."""
from __future__ import annotations

__all__ = ["NO_RW_CHECK"]

#: ``attrs`` of an :class:`amaranth.lib.memory.Memory` (one read and one write port) whose reads never need the
#: word that a write puts at the same address in the same cycle (yosys's name for this).  A synchronous read
#: port without transparency asks for the old word, and a block RAM gives no such promise across its two
#: ports, so yosys builds it around the RAM: a register of the write, an address compare and a multiplexer
#: after the RAM's read.  fpga.build turns the attribute into yosys's "collision gives X" on the memory's read
#: ports (the yosys of the build does not act on the attribute itself), which drops all three.  Simulation
#: keeps the old word.
NO_RW_CHECK = {"no_rw_check": 1}
