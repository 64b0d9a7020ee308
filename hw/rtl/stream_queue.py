"""A short queue for a stream: breaks the ready path at full throughput, words never shift."""
from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.hdl import Shape, ShapeLike, Value
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamQueue"]


class StreamQueue(wiring.Component):
    """Cut the combinational path from ``o.ready`` back to ``i.ready``, and keep ``o.ready`` off
    every wide register enable.

    Parameters
    ----------
    shape : the payload's shape.
    depth : the most words held (2 by default).
    piece_bits : the most payload bits that one pair of read and write pointers steers.

    Contract
    --------
    Latency: a word taken at cycle t is offered on ``o`` from cycle t + 1.  Throughput: one word per
    cycle while ``o.ready`` is high (with ``depth`` ≥ 2).  At most ``depth`` words are held; ``i.ready`` is
    high while fewer are, and depends on registers only.  Words leave in order, none is lost or repeated.
    With the default depth this is cycle for cycle what a skid register slice does (``o.valid`` = one or
    more held, ``i.ready`` = fewer than two), so the cycle model is the same; with any depth it is what a
    first-word-fall-through ``SyncFIFO`` of that depth does.  A ``ResetInserter`` empties it.

    Storage: up to two words in registers (``o.payload`` is then a 2:1 multiplexer of two registers
    selected by a register); deeper, a memory per piece with a combinational read (LUT RAM on ECP5).

    Why a queue and not a skid slice: in a slice the output's ready decides whether the word in flight
    goes to the output register or the skid register, so it drives the enables of both, hundreds of
    flip-flops wide for the array's beats.  On the ULX3S-25F that chain (array ready → beat issue →
    skid enables) was the critical path at 13.4 ns.  Here a taken word only moves the queue's read
    pointer, and an entry's write enable depends on the input side alone.

    Why pointers per piece: one read pointer selecting every bit of the array's beat (a 2-word
    ``SyncFIFO`` in LUT RAM) had its route to those bits take 7.5 ns on the ULX3S-85F, the first half
    of its slowest path.  Each piece's pointers are copies (``fanout_`` names, which ``fpga.build``
    keeps from being merged), so each can sit beside its own bits.  The same held for the host link's
    5-word scales queue, a 767-bit ``SyncFIFO`` whose one read pointer took 12.9 ns to reach its LUT RAM.
    """

    def __init__(self, shape: ShapeLike, *, depth: int = 2, piece_bits: int = 32):
        for name, value in (("depth", depth), ("piece_bits", piece_bits)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        self.shape, self.depth, self.piece_bits = shape, depth, piece_bits
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform) -> Module:
        m = Module()
        level = Signal(range(self.depth + 1))    # words held
        m.d.comb += [self.i.ready.eq(level != self.depth), self.o.valid.eq(level != 0)]
        put, take = self.i.valid & self.i.ready, self.o.valid & self.o.ready
        m.d.sync += level.eq(level + put - take)
        width = Shape.cast(self.shape).width
        payload_in, payload_out = Value.cast(self.i.payload), Value.cast(self.o.payload)
        for n, low in enumerate(range(0, width, self.piece_bits)):
            high = min(low + self.piece_bits, width)
            # the entry each writes and reads next
            write = Signal(range(self.depth), name=f"fanout_write_{n}")
            read = Signal(range(self.depth), name=f"fanout_read_{n}")
            with m.If(put):
                m.d.sync += write.eq(self._after(write))
            with m.If(take):
                m.d.sync += read.eq(self._after(read))
            if self.depth <= 2:
                entries = [Signal(high - low, name=f"entry_{n}_{e}") for e in range(self.depth)]
                for e, entry in enumerate(entries):
                    with m.If(put & (write == e)):
                        m.d.sync += entry.eq(payload_in[low:high])
                held = entries[0] if self.depth == 1 else Mux(read, entries[1], entries[0])
                m.d.comb += payload_out[low:high].eq(held)
            else:
                m.submodules[f"entries_{n}"] = entries = memory.Memory(shape=high - low, depth=self.depth, init=[])
                w, r = entries.write_port(), entries.read_port(domain="comb")
                m.d.comb += [w.addr.eq(write), w.data.eq(payload_in[low:high]), w.en.eq(put),
                             r.addr.eq(read), payload_out[low:high].eq(r.data)]
        return m

    def _after(self, pointer: Signal) -> Value:
        """The entry after ``pointer``'s, wrapping at ``depth``."""
        if self.depth & (self.depth - 1) == 0:
            return pointer + 1                      # wraps by itself (truncated to the pointer's width)
        return Mux(pointer == self.depth - 1, 0, pointer + 1)
