"""A two-word queue for a stream: breaks the ready path at full throughput, words never shift."""
from __future__ import annotations

from amaranth import Module
from amaranth.hdl import Shape, ShapeLike
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

__all__ = ["StreamQueue"]


class StreamQueue(wiring.Component):
    """Cut the combinational path from ``o.ready`` back to ``i.ready``, and keep ``o.ready`` off
    every wide register enable.

    Contract
    --------
    Latency: a word taken at cycle t is offered on ``o`` from cycle t + 1.  Throughput: one word per
    cycle while ``o.ready`` is high.  At most two words are held; ``i.ready`` is high while fewer than
    two are, and depends on registers only.  Words leave in order, none is lost or repeated.  This is
    cycle for cycle what a skid register slice does (``o.valid`` = one or more held, ``i.ready`` = fewer
    than two), so the cycle model is the same.

    Why a queue and not a skid slice: in a slice the output's ready decides whether the word in flight
    goes to the output register or the skid register, so it drives the enables of both, hundreds of
    flip-flops wide for the array's beats.  On the ULX3S-25F that chain (array ready → beat issue →
    skid enables) was the critical path at 13.4 ns.  Here a taken word only moves the queue's read
    pointer, and an entry's write enable depends on the input side alone.  ``o.payload`` is a 2:1
    multiplexer of two registers selected by a register.
    """

    def __init__(self, shape: ShapeLike):
        self.shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.fifo = fifo = SyncFIFO(width=Shape.cast(self.shape).width, depth=2)
        m.d.comb += [fifo.w_en.eq(self.i.valid), fifo.w_data.eq(self.i.payload), self.i.ready.eq(fifo.w_rdy),
                     self.o.valid.eq(fifo.r_rdy), self.o.payload.eq(fifo.r_data), fifo.r_en.eq(self.o.ready)]
        return m
