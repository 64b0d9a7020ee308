"""A register slice for a stream: both directions registered, full throughput."""
from __future__ import annotations

from amaranth import Module, Signal
from amaranth.hdl import ShapeLike
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SkidBuffer"]


class SkidBuffer(wiring.Component):
    """Cut every combinational path through a stream: ``o.valid``/``o.payload`` and ``i.ready`` are
    register outputs.

    Contract
    --------
    Latency: a word taken at cycle t is offered on ``o`` from cycle t + 1.  Throughput: one word per
    cycle while ``o.ready`` is high.  When ``o`` stalls, the word in flight goes to a second
    ("skid") register and ``i.ready`` drops a cycle later; at most two words are held.  Words leave in
    order, none is lost or repeated.

    Used between the TRIP sequencer and the array, so the array's stall (which fans out to every
    pipeline register) and the sequencer's beat logic are separate timing paths.
    """

    def __init__(self, shape: ShapeLike):
        self.shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform) -> Module:
        m = Module()
        skid = Signal(self.shape)
        skid_valid = Signal()
        m.d.comb += self.i.ready.eq(~skid_valid)
        with m.If(self.o.ready | ~self.o.valid):            # the output register takes a word this cycle
            with m.If(skid_valid):
                m.d.sync += [self.o.payload.eq(skid), self.o.valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & ~skid_valid):             # output stalled: park the word in flight
            m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
        return m
