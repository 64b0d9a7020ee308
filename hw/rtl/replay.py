"""Replay a memory's words onto a stream: the glue between on-chip operand memories and the TRIP core.

Used by the board's host link (:mod:`fpga.link`) and the fast simulation
harness (:mod:`sim.trip_harness`); it holds no arithmetic.
"""
from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Replay"]


class Replay(wiring.Component):
    """Stream words ``0 … count-1`` of a memory read port, ``repeat`` times, honouring ``ready``.

    Contract: ``start`` (one cycle) rewinds to word 0 and loads ``repeat``; the
    first word is valid two cycles later and then one word per cycle while
    ``ready`` is high (the synchronous read port is enabled only when the output
    register moves, so a stall holds the word).  ``count = 0`` or ``repeat = 0``
    streams nothing.  ``addr``/``en``/``data`` connect to a synchronous read port.
    """

    def __init__(self, width: int, depth: int):
        self.width, self.depth = width, depth
        super().__init__({
            "count": In(range(depth + 1)), "repeat": In(32), "start": In(1),
            "valid": Out(1), "payload": Out(width), "ready": In(1),
            "addr": Out(range(depth)), "en": Out(1), "data": In(width),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        ptr = Signal(range(self.depth + 1))
        left = Signal(32)
        load = Signal()
        m.d.comb += [load.eq(~self.valid | self.ready), self.en.eq(load), self.addr.eq(ptr),
                     self.payload.eq(self.data)]
        with m.If(self.start):
            m.d.sync += [ptr.eq(0), left.eq(self.repeat), self.valid.eq(0)]
        with m.Elif(load):
            more = (left != 0) & (self.count != 0)
            m.d.sync += self.valid.eq(more)
            with m.If(more):
                with m.If(ptr == self.count - 1):
                    m.d.sync += [ptr.eq(0), left.eq(left - 1)]
                with m.Else():
                    m.d.sync += ptr.eq(ptr + 1)
        return m
