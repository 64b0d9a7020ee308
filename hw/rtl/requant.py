"""The output stage: per-group scaling, rounding and clamping of TRIP group sums to int8/int4.

Implements :func:`golden.requant.requantize` on a stream of ``lanes`` group
sums per beat.  A tile of ``chunks · lanes`` outputs arrives as one beat per
chunk per group, groups in order (what :class:`~hw.rtl.trip_array.TripArray`
emits, cut into chunks); each lane's running sum
``psum += acc · wmul`` lives in an :mod:`amaranth.lib.memory` buffer with one
``lanes``-wide word per chunk.  On the ``last`` group the finished sum is
multiplied by the lane's token multiplier, rounded half up by ``shift`` and
clamped to the signed 8- or 4-bit range, and leaves on ``o``.
"""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Value
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.requant import MAX_SHIFT, MULT_BITS, requant_bits
from ..dsp import registered_product
from ..global_net import design_wide
from ..ram import NO_RW_CHECK
from .skid_buffer import SkidBuffer

__all__ = ["Requant"]

#: Bits of psum per piece of the token-multiplier product: unsigned 17 bits fit an 18×18 multiplier port.
PIECE = 17
# Bits of the halved product that the output stage rounds and compares: 9 is the fewest for which a value
# outside them rounds outside [-128, 127] (|h| >= 2^8 gives |round(h/2)| >= 2^7); one more for margin.
WINDOW = 10
#: Stage 4a shifts by multiples of COARSE, stage 4 by the rest.
COARSE_BITS = 3
COARSE = 1 << COARSE_BITS


def _piece_count(bits: int) -> int:
    """How many PIECE-bit pieces (so hardware multipliers) a ``bits``-wide value is cut into."""
    return -(-bits // PIECE)


def _pieces(value: Value) -> list[Value]:
    """``value`` cut into PIECE-bit unsigned pieces from the bottom, the top one signed (it carries the sign):
    ``value == Σ piece_p · 2^(PIECE·p)``, each piece small enough for one 18×18 multiplier port."""
    count = _piece_count(len(value))
    return [value[PIECE * p:].as_signed() if p == count - 1 else value[PIECE * p:PIECE * (p + 1)]
            for p in range(count)]


class Requant(wiring.Component):
    """``lanes`` requantizers sharing a ``chunks``-deep partial-sum buffer.

    Parameters
    ----------
    lanes : int
        Outputs finished per beat (two multipliers each).
    chunks : int
        Beats per group of one tile (the buffer depth): a tile has ``chunks · lanes`` outputs.
    acc_bits : int
        Width of the signed group sums (the array's ``acc_bits``).
    max_groups : int
        Most groups one output sums; with ``mult_bits`` it sets the widths
        from :func:`golden.requant.requant_bits`, so no register ever wraps.
    mult_bits : int
        Width of the unsigned multipliers.

    Members
    -------
    i : ``In(stream.Signature({acc, wmul, tmul, first, last}))``
        ``acc``: lanes × signed(acc_bits); ``wmul`` (the lane's channel, this
        group) and ``tmul`` (the lane's token): lanes × unsigned(mult_bits);
        ``first``/``last`` mark the first and last group of the tile.
        Beats of one group come in chunk order 0 … chunks-1.
    o : ``Out(stream.Signature(lanes × signed(8)))``: one word per chunk of a finished tile.
    shift : ``In(range(1, 63))``, out_bits8 : ``In(1)``
        Per-run settings: the rounding shift, and 8-bit (1) or 4-bit (0) outputs.
        Hold them steady while beats are in flight.
    busy : ``Out(1)``: an accepted beat is still in the pipeline or an output waits on ``o``.

    Contract
    --------
    Throughput one beat per cycle while ``o`` is taken.  Latency: a ``last``
    beat's outputs are valid 10 cycles after it is accepted.  When ``o`` holds
    an untaken word, the next finished word waits in a spare register and the
    whole stage freezes from the cycle after (``i.ready`` low): ``i.ready`` is
    a register's output, never a function of ``o.ready``.  The chunk
    counter starts at 0 after reset and wraps every ``chunks`` beats, so the
    producer must send whole groups; ``first`` discards whatever the buffer held.
    """

    LATENCY = 10
    #: Stages from a beat's read of its partial sums to their write (0 is the read's, stage 0): a beat's chunk
    #: was last written ``chunks`` or more beats ahead of it, so with at least this many chunks the write may
    #: come a stage after the sum (see ``elaborate``).
    WRITE_DELAY = 3

    def __init__(self, *, lanes: int, chunks: int = 1, acc_bits: int = 24, max_groups: int = 64,
                 mult_bits: int = MULT_BITS):
        for name, value in (("lanes", lanes), ("chunks", chunks), ("acc_bits", acc_bits),
                            ("max_groups", max_groups), ("mult_bits", mult_bits)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        self.lanes, self.chunks, self.acc_bits, self.mult_bits = lanes, chunks, acc_bits, mult_bits
        self.max_groups = max_groups
        self.psum_bits, self.product_bits = requant_bits(acc_bits, mult_bits, max_groups)
        #: The names of each lane's hardware multipliers, ``(stage, piece)``, in the order a beat meets them: the
        #: ``acc_wmul_{lane}_{piece}`` products of stage 1, then the ``psum_tmul_{lane}_{piece}`` of stage 3.
        self.multipliers = [(stage, p) for stage, bits in (("acc_wmul", acc_bits), ("psum_tmul", self.psum_bits))
                            for p in range(_piece_count(bits))]
        self.in_layout = data.StructLayout({
            "acc": data.ArrayLayout(signed(acc_bits), lanes),
            "wmul": data.ArrayLayout(unsigned(mult_bits), lanes),
            "tmul": data.ArrayLayout(unsigned(mult_bits), lanes),
            "first": 1, "last": 1,
        })
        self.out_layout = data.ArrayLayout(signed(8), lanes)
        super().__init__({
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(self.out_layout)),
            "shift": In(range(1, MAX_SHIFT + 1), init=1),
            "out_bits8": In(1, init=1),
            "busy": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        # The output register with a spare beside it (a skid buffer), so that whether the stage moves is a
        # register, not o.ready: as ~o.valid | o.ready it began a combinational chain through the tile
        # adapter, the array's handshake and the scales queue into the adapter's 767-bit scales register
        # (ULX3S-85F: 13.9 ns) and the array's drain enable (12.1 ns).
        m.submodules.out = out = SkidBuffer(self.out_layout)
        wiring.connect(m, out.o, wiring.flipped(self.o))
        ready = Signal()            # every register moves on this cycle
        m.d.comb += [ready.eq(out.i.ready), self.i.ready.eq(ready)]
        # ... through a global net on ECP5: it is every pipeline register's enable, and routed in fabric
        # its fanout sat in the ULX3S-25F build's critical path (result ready -> tile adapter -> scales).
        advance = design_wide(m, platform, ready, "advance")
        lanes = range(self.lanes)
        psum_shape = data.ArrayLayout(signed(self.psum_bits), self.lanes)

        # Stage 0: the accepted beat, registered as it comes (it arrives through the caller's muxes, often
        # straight from a block RAM's output), and its products acc·wmul computed from that register.
        s0 = Signal(data.StructLayout({"valid": 1, "beat": self.in_layout}))

        # The partial sums: the chunk's word is read while its beat is in stage 0 and registered as the beat
        # enters stage 1b (the block RAM's unregistered read, 5.6 ns clock-to-out, went on through the adder
        # into the RAM's write port: the ULX3S-85F build's second-slowest path), already 0 for a tile's first
        # group (selected in front of the adder, the `first` flag's route to every lane's bits was a third of
        # the 85F's slowest path).  The new sum is computed in stage 1b and written from a register after it,
        # so that its route into the RAM has a cycle of its own (it was the 85F's slowest path, 13.0 ns).
        # A beat reads its chunk `chunks` or more places behind the last beat of that chunk: the write is
        # `WRITE_DELAY` places on, so with fewer chunks than that it is written straight from stage 1b, and
        # with one chunk the beat right ahead, written after the read, has its sum forwarded.
        # With more chunks than WRITE_DELAY a beat never reads the chunk written in its cycle (that one is 1 to
        # WRITE_DELAY beats behind it), so the buffer needs no old-word logic around its RAM (hw.ram).
        transparent = self.chunks <= self.WRITE_DELAY
        m.submodules.psums = buf = memory.Memory(shape=psum_shape, depth=self.chunks, init=[],
                                                 attrs=None if transparent else NO_RW_CHECK)
        wr = buf.write_port()
        # The read is transparent to the write only while the write `chunks` places ahead can land in the
        # cycle of the read (the write is WRITE_DELAY places on, or one fewer with fewer chunks): yosys
        # emulates a block RAM's transparency with a register of the written word and a multiplexer on the
        # read (the 85F: 188 flip-flops, and a LUT in the read's path to `stored`).
        rd = buf.read_port(transparent_for=(wr,) if transparent else ())
        chunk = Signal(range(self.chunks))
        with m.If(s0.valid & advance):
            m.d.sync += chunk.eq(Mux(chunk == self.chunks - 1, 0, chunk + 1))

        # Stage 1: the beat's products acc·wmul; stage 1b only adds them to its chunk's old partial sums
        # (multiply and accumulate in one cycle was the ECP5 build's critical path).  The products are
        # registered as PIECE-bit pieces of acc, one multiplier each, so that on ECP5 each piece's register
        # is its DSP's output register (hw.dsp): registered behind the adder that joins the pieces, a DSP
        # pair and a carry chain in one cycle were the ULX3S-25F build's critical path (11.3 ns).
        s1 = Signal(data.StructLayout({"valid": 1, "chunk": range(self.chunks), "beat": self.in_layout}))
        # Stage 1b: the products once more, in fabric registers.  The requantizer's DSPs are the ones the array
        # leaves, wherever on the device those are: on the ULX3S-85F a product crossed 11 ns of routing
        # from its DSP into the adder below, every path of the nine slowest groups (fpga.timing).  Here the
        # placer can put a register halfway.
        s1b = Signal.like(s1, name="s1b")
        m.d.comb += [rd.addr.eq(chunk), rd.en.eq(advance)]
        psum = Signal(psum_shape)
        stored = Signal(psum_shape)            # the chunk's sums as read (0 for a first group), registered
        with m.If(advance):
            m.d.sync += stored.eq(Mux(s1.beat.first, 0, rd.data))
        old = [stored[l] for l in lanes]
        if self.chunks == 1:
            written = Signal(psum_shape)       # the sums stage 1b wrote last (or offered, when it held no beat)
            forward = Signal()                 # ... and they are this beat's chunk's, newer than `stored`
            # `written` is read only with `forward`, registered in the same cycle and only when stage 1b held a
            # beat, so it takes stage 1b's sums on every advance: its enable is then the global net itself.
            with m.If(advance):
                m.d.sync += [forward.eq(s1b.valid & ~s1.beat.first), written.eq(psum)]
            old = [Mux(forward, written[l], stored[l]) for l in lanes]
        for l in lanes:
            # Each piece's multiplier reads its own copy of the lane's wmul (fpga.build keeps yosys from merging
            # the copies, ``fanout_``): from one register, its routes to DSPs wherever the array left them took
            # 9-10 ns on the ULX3S-85F.
            acc_pieces = _pieces(s0.beat.acc[l])
            wmuls = [Signal.like(self.i.payload.wmul[l], name=f"fanout_wmul_{l}_{p}") for p in range(len(acc_pieces))]
            with m.If(advance):
                m.d.sync += [copy.eq(self.i.payload.wmul[l]) for copy in wmuls]
            pieces = [registered_product(m, platform, piece, wmul, enable=advance, name=f"acc_wmul_{l}_{p}")
                      for p, (piece, wmul) in enumerate(zip(acc_pieces, wmuls))]
            moved = [Signal.like(piece, name=f"acc_wmul_{l}_{p}_q") for p, piece in enumerate(pieces)]
            with m.If(advance):
                m.d.sync += [q.eq(piece) for q, piece in zip(moved, pieces)]
            m.d.comb += psum[l].eq(old[l] + sum(piece << (PIECE * p) for p, piece in enumerate(moved)))
        if self.chunks >= self.WRITE_DELAY:
            write_valid, write_chunk, write_psum = (Signal(name="psum_write_valid"), Signal.like(s1b.chunk),
                                                    Signal(psum_shape, name="psum_write"))
            with m.If(advance):
                m.d.sync += [write_valid.eq(s1b.valid), write_chunk.eq(s1b.chunk), write_psum.eq(psum)]
            write_pending = write_valid        # a write still to come, after stage 1b
        else:
            write_valid, write_chunk, write_psum = s1b.valid, s1b.chunk, psum
            write_pending = 0
        m.d.comb += [wr.addr.eq(write_chunk), wr.data.eq(write_psum), wr.en.eq(advance & write_valid)]
        # Stage 2: finished sums only (the last group), with their token multipliers.
        s2 = Signal(data.StructLayout({"valid": 1, "psum": psum_shape}))     # (and the tmul copies below)
        # Stage 3: psum · tmul in PIECE-bit pieces of psum, one hardware multiplier each; stage 3a registers the
        # pieces once more in fabric, and stage 3b adds them shifted.  (The whole wide product in one cycle, a
        # DSP cascade with its adder tree behind it, was the ECP5 build's critical path; from the DSPs' output
        # registers straight into the adder, the route from a DSP took 8.7 of the ULX3S-85F's 14.2 ns.)
        s3 = Signal(data.StructLayout({"valid": 1}))        # (its partial products are registered per piece)
        s3a = Signal(data.StructLayout({"valid": 1}))       # (... and again here)
        s3b = Signal(data.StructLayout({"valid": 1,
                                        "product": data.ArrayLayout(signed(self.product_bits), self.lanes)}))
        with m.If(advance):
            m.d.sync += [s0.valid.eq(self.i.valid), s0.beat.eq(self.i.payload)]
            m.d.sync += [s1.valid.eq(s0.valid), s1.chunk.eq(chunk), s1.beat.eq(s0.beat), s1b.eq(s1),
                         s2.valid.eq(s1b.valid & s1b.beat.last), s2.psum.eq(psum),
                         s3.valid.eq(s2.valid), s3a.valid.eq(s3.valid), s3b.valid.eq(s3a.valid)]
        for l in lanes:
            psum_pieces = _pieces(s2.psum[l])
            # Stage 2 holds the lane's tmul once per piece, each its multiplier's own (as wmul above).
            tmuls = [Signal(unsigned(self.mult_bits), name=f"fanout_tmul_{l}_{p}") for p in range(len(psum_pieces))]
            with m.If(advance):
                m.d.sync += [copy.eq(s1b.beat.tmul[l]) for copy in tmuls]
            partials = [registered_product(m, platform, piece, tmul, enable=advance, name=f"psum_tmul_{l}_{p}")
                        for p, (piece, tmul) in enumerate(zip(psum_pieces, tmuls))]
            partials_q = [Signal.like(partial, name=f"psum_tmul_{l}_{p}_q") for p, partial in enumerate(partials)]
            with m.If(advance):
                m.d.sync += [q.eq(partial) for q, partial in zip(partials_q, partials)]
                m.d.sync += s3b.product[l].eq(sum(q << (PIECE * p) for p, q in enumerate(partials_q)))

        # Per-run settings, registered here so that the placer can keep them beside their users (they come from
        # the sequencer's register file, across the device), and what stages 4-5 need from them as constants
        # of the run: where the window starts in the product, and which product bits must all equal its sign.
        # Each lane has its own copies (fpga.build keeps yosys from merging them, ``fanout_``): shared, the
        # ULX3S-85F's routes from the shift to the mask took 6.1 ns (11.4 in all), and from the window's
        # offset into the lanes' shifters 13.5.
        window = min(WINDOW, self.product_bits)
        shift_q = [Signal.like(self.shift, name=f"fanout_shift_{l}") for l in lanes]
        offsets = [Signal(range(MAX_SHIFT), name=f"fanout_window_offset_{l}") for l in lanes]    # shift - 1
        # the product bits that must all equal its sign: those >= shift - 2 + window
        high_masks = [Signal(self.product_bits, name=f"fanout_high_mask_{l}") for l in lanes]
        # out_bits8 once per lane, for stage 5's clamps: from one register, its route to the four lanes' clamps
        # was 9.5 ns on the 85F.
        out_bits8_q = [Signal(init=1, name=f"fanout_out_bits8_{l}") for l in lanes]
        for l in lanes:
            m.d.sync += [shift_q[l].eq(self.shift), offsets[l].eq(shift_q[l] - 1), out_bits8_q[l].eq(self.out_bits8)]
            m.d.sync += [high_masks[l][b].eq(shift_q[l] + (window - 2) <= b) for b in range(self.product_bits)]

        # Stages 4a and 4: the shift, in cycles of their own (behind the rounding and the clamp it was the ECP5 build's
        # critical path).  halved = product >> (shift - 1) is needed only as its low `window` bits, whether it
        # fits them (its bits from window - 1 up all equal its sign) and its sign, so that is what is computed:
        # a window-wide shifter instead of a product-wide one (the whole-product barrel shifter sprawled over
        # the ULX3S-25F and was its critical path at 82.5 MHz), and the fit test as a mask of the run.
        # Stage 4a: the coarse shift, by the offset's multiple of COARSE, into a window COARSE - 1 bits wider, and
        # the fit test and the sign; stage 4 then shifts by the offset's low bits.  As one 64-way selection from
        # the offset's register, stage 4 was the ULX3S-85F's slowest requantizer path (4520909 seed 1: 10.04 ns,
        # 7.8 of them routing between its four levels of LUTs).
        wide = window + COARSE - 1
        s4a = Signal(data.StructLayout({
            "valid": 1,
            "coarse": data.ArrayLayout(unsigned(wide), self.lanes),
            "fits": data.ArrayLayout(1, self.lanes),
            "negative": data.ArrayLayout(1, self.lanes),
        }))
        s4 = Signal(data.StructLayout({
            "valid": 1,
            "window": data.ArrayLayout(unsigned(window), self.lanes),
            "fits": data.ArrayLayout(1, self.lanes),
            "negative": data.ArrayLayout(1, self.lanes),
        }))
        m.d.comb += self.busy.eq(s0.valid | s1.valid | s1b.valid | write_pending | s2.valid | s3.valid | s3a.valid
                                 | s3b.valid | s4a.valid | s4.valid | ~out.i.ready | self.o.valid)
        starts = range(0, MAX_SHIFT, COARSE)    # where a coarse window can start
        reach = starts[-1] + wide               # every bit one can hold, sign-extended past the product's top
        with m.If(advance):
            m.d.sync += [s4a.valid.eq(s3b.valid), s4.valid.eq(s4a.valid)]
            for l in lanes:
                product = s3b.product[l]
                sign = product[-1]
                extended = product.as_signed() if reach <= len(product) else \
                    Cat(product, sign.replicate(reach - len(product)))
                unequal = (product ^ sign.replicate(len(product))) & high_masks[l]
                coarse = Cat(*(extended[start:start + wide] for start in starts))
                m.d.sync += [s4a.coarse[l].eq(coarse.word_select(offsets[l][COARSE_BITS:], wide)),
                             s4a.fits[l].eq(unequal == 0), s4a.negative[l].eq(sign)]
                m.d.sync += [s4.window[l].eq(s4a.coarse[l].bit_select(offsets[l][:COARSE_BITS], window)),
                             s4.fits[l].eq(s4a.fits[l]), s4.negative[l].eq(s4a.negative[l])]

        # Stage 5 (the output register, or its spare): round, then saturate.  Only the window goes through carry chains: if
        # the halved product fits it, rounding and the compares happen there (a few bits wide); if it does
        # not, it is far outside the int8 range and its sign alone picks the bound.  Rounding half up as
        # ((p >> (shift-1)) + 1) >> 1 equals (p + 2**(shift-1)) >> shift without a variable constant.
        # The clamp's compares look at the window itself, beside the rounding adder rather than after it
        # (after it, window → adder → compares → multiplexers was the 85F's slowest path, 10.79 ns at e32494d's
        # seed 1): with w the window, ((w + 1) >> 1) < lo exactly when w < 2·lo - 1, and > hi when w > 2·hi.
        saturated = Signal(self.out_layout)
        for l in lanes:
            lo, hi = Mux(out_bits8_q[l], -128, -8), Mux(out_bits8_q[l], 127, 7)
            w = s4.window[l].as_signed()
            below = Mux(out_bits8_q[l], w < 2 * -128 - 1, w < 2 * -8 - 1)
            above = Mux(out_bits8_q[l], w > 2 * 127, w > 2 * 7)
            rounded = Signal(signed(window + 1), name=f"rounded_{l}")
            m.d.comb += [rounded.eq((w + 1) >> 1),
                         saturated[l].eq(Mux(s4.fits[l], Mux(below, lo, Mux(above, hi, rounded)),
                                             Mux(s4.negative[l], lo, hi)))]
        m.d.comb += [out.i.valid.eq(s4.valid), out.i.payload.eq(saturated)]
        return m

