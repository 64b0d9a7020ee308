"""A two-word queue for a stream: breaks the ready path at full throughput, words never shift."""
from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.hdl import Shape, ShapeLike, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamQueue"]


class StreamQueue(wiring.Component):
    """Cut the combinational path from ``o.ready`` back to ``i.ready``, and keep ``o.ready`` off
    every wide register enable.

    Parameters
    ----------
    shape : the payload's shape.
    piece_bits : the most payload bits that one pair of read and write pointers steers.

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

    Why pointers per piece: one read pointer selecting every bit of the array's beat (a 2-word
    ``SyncFIFO`` in LUT RAM) had its route to those bits take 7.5 ns on the ULX3S-85F, the first half
    of its slowest path.  Each piece's pointers are copies (``fanout_`` names, which ``fpga.build``
    keeps from being merged), so each can sit beside its own bits.
    """

    def __init__(self, shape: ShapeLike, *, piece_bits: int = 32):
        if not isinstance(piece_bits, int) or isinstance(piece_bits, bool) or piece_bits < 1:
            raise ValueError(f"piece_bits must be a positive integer, not {piece_bits!r}")
        self.shape, self.piece_bits = shape, piece_bits
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform) -> Module:
        m = Module()
        level = Signal(range(3))                 # words held: 0, 1 or 2
        m.d.comb += [self.i.ready.eq(level != 2), self.o.valid.eq(level != 0)]
        put, take = self.i.valid & self.i.ready, self.o.valid & self.o.ready
        m.d.sync += level.eq(level + put - take)
        width = Shape.cast(self.shape).width
        payload_in, payload_out = Value.cast(self.i.payload), Value.cast(self.o.payload)
        for n, low in enumerate(range(0, width, self.piece_bits)):
            high = min(low + self.piece_bits, width)
            write, read = Signal(name=f"fanout_write_{n}"), Signal(name=f"fanout_read_{n}")   # the entry each uses
            entries = [Signal(high - low, name=f"entry_{n}_{e}") for e in range(2)]
            for e, entry in enumerate(entries):
                with m.If(put & (write == e)):
                    m.d.sync += entry.eq(payload_in[low:high])
            with m.If(put):
                m.d.sync += write.eq(~write)
            with m.If(take):
                m.d.sync += read.eq(~read)
            m.d.comb += payload_out[low:high].eq(Mux(read, entries[1], entries[0]))
        return m
