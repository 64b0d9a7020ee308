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

    Contract: ``start`` (one cycle) rewinds to word 0 and takes ``count`` and
    ``repeat`` (they are sampled then, so they may change during a replay); the
    first word is valid ``read_latency + 1`` cycles later and then one word per cycle while
    ``ready`` is high (the read pipeline is enabled only when the output
    moves, so a stall holds the word).  ``count = 0`` or ``repeat = 0``
    streams nothing.  ``addr``/``en``/``data`` connect to a synchronous read port
    (``read_latency`` 1), or to a read pipeline whose stages all move with ``en``
    (such as :class:`~hw.rtl.sliced_memory.SlicedMemory`'s, 3).

    The wrap-around address and "last round" are registered at ``start``, so the
    per-word path compares ``depth``-wide registers only: it sits between the
    core's ``ready`` and the memory's read enable, on the iCE40 build's critical path.
    """

    def __init__(self, width: int, depth: int, max_repeat: int = (1 << 16) - 1, read_latency: int = 1):
        if not isinstance(read_latency, int) or isinstance(read_latency, bool) or read_latency < 1:
            raise ValueError(f"read_latency must be a positive integer, not {read_latency!r}")
        self.width, self.depth, self.max_repeat, self.read_latency = width, depth, max_repeat, read_latency
        super().__init__({
            "count": In(range(depth + 1)), "repeat": In(range(max_repeat + 1)), "start": In(1),
            "valid": Out(1), "payload": Out(width), "ready": In(1),
            "addr": Out(range(depth)), "en": Out(1), "data": In(width),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        ptr, last_ptr = Signal(range(self.depth)), Signal(range(self.depth))
        rounds_left = Signal(range(self.max_repeat + 1))
        running = Signal()
        load = Signal()
        m.d.comb += [load.eq(~self.valid | self.ready), self.en.eq(load), self.addr.eq(ptr),
                     self.payload.eq(self.data)]
        # Whether each stage of the read pipeline holds a word, the last one the word on offer.
        stages = [Signal(name=f"reading_{n}") for n in range(self.read_latency - 1)] + [self.valid]
        with m.If(self.start):
            m.d.sync += [ptr.eq(0), last_ptr.eq(self.count - 1), rounds_left.eq(self.repeat),
                         running.eq((self.count != 0) & (self.repeat != 0)), *(v.eq(0) for v in stages)]
        with m.Elif(load):
            m.d.sync += [v.eq(before) for v, before in zip(stages, [running, *stages])]
            with m.If(running):
                with m.If(ptr == last_ptr):
                    m.d.sync += [ptr.eq(0), rounds_left.eq(rounds_left - 1)]
                    with m.If(rounds_left == 1):
                        m.d.sync += running.eq(0)
                with m.Else():
                    m.d.sync += ptr.eq(ptr + 1)
        return m
