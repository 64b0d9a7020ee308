"""A two-word queue for a stream: breaks the ready path at full throughput, words never shift."""
from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.hdl import ShapeLike
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamQueue"]


class StreamQueue(wiring.Component):
    """Cut the combinational path from ``o.ready`` back to ``i.ready``, and keep ``o.ready`` off
    every wide register enable.

    Contract
    --------
    Latency: a word taken at cycle t is offered on ``o`` from cycle t + 1.  Throughput: one word per
    cycle while ``o.ready`` is high.  At most two words are held; ``i.ready`` is high while fewer than
    two are, and is a flip-flop's output (inverted).  Words leave in order, none is lost or repeated.  This is
    cycle for cycle what a skid register slice does (``o.valid`` = one or more held, ``i.ready`` = fewer
    than two), so the cycle model is the same.

    Why a queue and not a skid slice: in a slice the output's ready decides whether the word in flight
    goes to the output register or the skid register, so it drives the enables of both, hundreds of
    flip-flops wide for the array's beats.  On the ULX3S-25F that chain (array ready → beat issue →
    skid enables) was the critical path at 13.4 ns.  Here a taken word only moves the queue's read
    pointer, and an entry's write enable depends on the input side alone.  ``o.payload`` is a 2:1
    multiplexer of two registers selected by a register.  (Written out rather than an amaranth
    ``SyncFIFO``: that one's ready compares its level with the depth, a LUT in front of the sequencer's
    issue logic that cost the iCEBreaker build its 40 MHz.)
    """

    def __init__(self, shape: ShapeLike):
        self.shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform) -> Module:
        m = Module()
        entries = [Signal(self.shape, name=f"entry{k}") for k in range(2)]
        write_at, read_at = Signal(), Signal()
        nonempty, full = Signal(), Signal()
        push = Signal()
        pop = Signal()
        m.d.comb += [push.eq(self.i.valid & ~full), pop.eq(self.o.ready & nonempty),
                     self.i.ready.eq(~full), self.o.valid.eq(nonempty),
                     self.o.payload.eq(Mux(read_at, entries[1], entries[0]))]
        for k, entry in enumerate(entries):
            with m.If(push & (write_at == k)):
                m.d.sync += entry.eq(self.i.payload)
        with m.If(push):
            m.d.sync += write_at.eq(~write_at)
        with m.If(pop):
            m.d.sync += read_at.eq(~read_at)
        m.d.sync += [nonempty.eq(full | push | (nonempty & ~pop)),
                     full.eq((full | (nonempty & push)) & ~pop)]
        return m
