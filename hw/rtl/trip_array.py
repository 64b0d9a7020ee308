"""The TRIP MAC array: a tile of tokens × output channels, accumulated from signed int4 beats.

``rows × cols`` :class:`~hw.rtl.simd_mul4.SimdMul4` units, each an
``a_lanes × w_lanes`` outer product, form an output-stationary tile of
``tokens = rows·a_lanes`` rows by ``channels = cols·w_lanes`` columns.  Every
beat brings one k: a signed int4 nibble per token and an int4 weight per
channel.  Each cell adds its product, scaled as :mod:`golden.trip` defines::

    plain beat (A4)   acc += a·w
    hi beat (A8)      acc += (a·w) << 4
    lo beat (A8)      acc += a·w + 8·w        (a is the low nibble minus 8)

and on a ``last`` beat the finished sums of the whole tile leave as one output
word, while the next beat starts a fresh sum.  A group of ``g`` k therefore
costs ``g`` beats at A4 and ``2·g`` at A8 and yields exactly
:func:`golden.group_accumulators` for that tile.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth import Module, Mux, ResetSignal, Signal, Value, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.trip import LO_OFFSET, trip_acc_bits
from ..global_net import design_wide
from .simd_mul4 import LATENCIES, SimdMul4, packed_layout

__all__ = ["TripArray", "array_latency", "fanout_copies"]

_LO_SHIFT = LO_OFFSET.bit_length() - 1     # 8·w as a shift, never a multiplier
assert 1 << _LO_SHIFT == LO_OFFSET


def array_latency(mul_latency: int, fanout_stages: int = 0) -> int:
    """Cycles from a group's last beat accepted to its sums valid: the fan-out registers, the
    multiplier's pipeline, the term register and the accumulator."""
    return fanout_stages + mul_latency + 2


def fanout_copies(rows: int, fanout_stages: int) -> list[int]:
    """How many copies of the beat each fan-out level holds, from the input to the multipliers: powers
    of two growing geometrically to one copy per row (so no register drives more than a few others)."""
    if fanout_stages == 0:
        return []
    depth = (rows - 1).bit_length()          # log2 of the rows, rounded up
    return [min(rows, 1 << -(-depth * level // fanout_stages)) for level in range(1, fanout_stages + 1)]


@dataclass
class _Copy:
    """One register of the fan-out tree (or the input itself): the beat for a block of the array."""
    rows: range
    cols: range
    valid: Value
    a: list[Value]          # the activations of `rows`: a_lanes int4 lanes per row, or one A operand per row
    w: list[Value]          # the weights of `cols`: w_lanes int4 lanes per column, or one W operand per column
    hi: Value
    lo: Value
    packed: bool = False    # whether `a` and `w` hold the multipliers' operands


class TripArray(wiring.Component):
    """``tokens × channels`` int4 MAC array with per-group accumulators and A8 refinement beats.

    Parameters
    ----------
    rows, cols : int
        SIMD multipliers along the token and channel axes (``rows·cols`` DSPs).
    a_lanes, w_lanes, mul_width : int
        Packing of each multiplier (see :func:`hw.rtl.simd_mul4.packed_layout`).
    mul_latency : int
        Pipeline depth of each multiplier, 1–5 (see SimdMul4).
    max_k : int
        Most k one accumulation may sum (the largest weight group; the whole
        K for per-channel weights).  The accumulators are
        ``golden.trip_acc_bits(max_k)`` bits wide, which holds every partial
        sum of A4 and A8 beats (:func:`golden.trip_acc_range`), so they never wrap.
        A group longer than ``max_k`` is the driver's error to refuse.
    drain_lanes : int or None
        For a consumer that reads the tile a few sums at a time (the
        requantizer): adds ``drain``, and the output register becomes a shift
        register that hands over ``drain_lanes`` sums per cycle in place,
        instead of the consumer selecting them from the whole tile through a
        tile-wide multiplexer (on the ECP5 builds a critical path, and on the
        85F most of the routing congestion).  Must divide ``tokens · channels``.
    fanout_stages : int
        Register levels between ``i`` and the multipliers, 0 (the default) or
        more: level ``n`` holds :func:`fanout_copies` copies of the beat, the
        last one a copy per row with only that row's activations.  On the large
        ECP5 arrays the beat left one queue and fanned out combinationally to
        every DSP across the device (the ULX3S-85F build's critical path, 8 ns
        of routing after the queue's own read); the copies let the placer
        spread that distance over several cycles.  Each level adds one cycle of
        latency and nothing else.
    fanout_cols : int
        With ``fanout_stages`` ≥ 1, the last level splits each copy of the
        level above by columns into this many copies (1, the default: no
        split), each with only its columns' weights.  A per-row copy drove its
        row's 16 DSPs wherever the placer put them (ULX3S-85F: 17.8 ns, one
        route); a copy per few columns sits beside its own multipliers.  The
        level counts among ``fanout_stages``, so the latency is unchanged by it.
    packed_copies : bool
        With ``fanout_stages`` ≥ 1, the last level holds each multiplier's
        port values (:meth:`~hw.rtl.simd_mul4.PackedLayout.operand_a` of a
        row's activations, ``operand_w`` of a column's weights) instead of the
        int4 lanes, and the multipliers take them as they are
        (:class:`SimdMul4`'s ``packed_inputs``).  The packing adders then sit
        before the last copy, not between it and every DSP's input register
        (ULX3S-85F: a column copy through a multiplier's weight-packing adder
        to its DSP, 16.2 ns).  Same latency.
    head_offsets : bool
        With ``drain_lanes`` only: the cells add no lo-beat offset.  Its sum
        over a group, ``8·Σw`` of the lo beats, is the same for every token of
        a channel, so one accumulator per channel keeps it, and it is added to
        a sum as the sum enters the tile's first ``drain_lanes`` places (when
        the tile is dumped there, or drained into them).  That takes an adder,
        a register of flags and a register of weights away from every
        multiplier's terms, and with them the side band's weights, which
        reached every row (ULX3S-85F with the DSPs pinned: 15.3 ns, one
        route, even with a copy of them per multiplier, as the ECP5 builds had
        before), for ``channels`` small accumulators and ``drain_lanes`` adders.
        The cells' sums then leave their range (up to ``1088·k``, beyond
        :func:`golden.trip_acc_range`'s ``1024·k``) and may wrap: harmless,
        since the offset's two's-complement add wraps them back to a sum that
        fits.
        Same latency, same cycles.  ``o.payload`` then holds finished sums in
        its first ``drain_lanes`` places only, which is all a draining
        consumer reads.
    dsp_operands : bool
        :class:`SimdMul4`'s ``dsp_operands``: False keeps each multiplier's
        operand register in the fabric (ECP5, latency 4), where the placer can
        put it partway along the route from the beat queue.  No board's sizing
        turns it on: the ULX3S-85F routed it much more slowly (README).

    Members
    -------
    i : ``In(stream.Signature(beat_layout))``
        ``{"a": tokens × signed(4), "w": channels × signed(4), "hi", "lo", "last"}``.
    o : ``Out(stream.Signature(tokens × channels × signed(acc_bits)))``
        ``o.payload[t][c]`` = the finished group sum of token lane ``t`` and channel lane ``c``.
    drain : ``In(1)``, with ``drain_lanes`` only
        A cycle with ``drain`` high moves every sum of the held tile
        ``drain_lanes`` places down in token-major order (element
        ``t·channels + c``), so the first ``drain_lanes`` elements are always
        the next ones to read; the last ``drain_lanes`` keep their values.
        A tile finishing in the same cycle is loaded instead.  Drain only
        while ``o.valid`` and not in the cycle that takes the tile.

    Contract
    --------
    Throughput one beat per cycle.  Latency: a group's sums are valid
    ``fanout_stages + mul_latency + 2`` cycles after its ``last`` beat is
    accepted (the fan-out registers, the multiplier, a register for each
    product's term, the accumulator).  The
    output is held until taken; while it is, the array keeps accepting beats
    and only stalls (``i.ready`` low, every pipeline register frozen) when a
    second finished group would overwrite it.  With ``local_stall`` (the ECP5
    builds) it also stalls in the cycle the held output is taken, so the stall
    depends on the array's own registers only, never on ``o.ready``: a group of
    G beats finishes every ``max(G, T + handover)`` cycles when the consumer
    holds each output for T cycles (``handover`` is 1 with ``local_stall``, else 0).
    """

    def __init__(self, *, rows: int = 1, cols: int = 1, a_lanes: int = 2, w_lanes: int = 2,
                 mul_width: int = 18, mul_latency: int = 2, max_k: int = 4096, drain_lanes: int | None = None,
                 dsp_operands: bool = True, fanout_stages: int = 0, fanout_cols: int = 1,
                 local_stall: bool = False, packed_copies: bool = False, head_offsets: bool = False):
        for name, value in (("rows", rows), ("cols", cols)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if not isinstance(fanout_stages, int) or isinstance(fanout_stages, bool) or fanout_stages < 0:
            raise ValueError(f"fanout_stages must be a non-negative integer, not {fanout_stages!r}")
        if (not isinstance(fanout_cols, int) or isinstance(fanout_cols, bool) or not 1 <= fanout_cols <= cols
                or (fanout_cols > 1 and fanout_stages < 1)):
            raise ValueError(f"fanout_cols must be an integer from 1 to cols ({cols}), and above 1 only with "
                             f"fanout_stages ≥ 1, not {fanout_cols!r} (fanout_stages={fanout_stages!r})")
        if packed_copies and fanout_stages < 1:
            raise ValueError("packed_copies needs fanout_stages ≥ 1: the last fan-out level holds the packed operands")
        self.fanout_stages, self.fanout_cols, self.packed_copies = fanout_stages, fanout_cols, bool(packed_copies)
        self.local_stall = bool(local_stall)
        #: Cycles a finishing group waits after the held output is taken (see Contract).
        self.handover = int(self.local_stall)
        self.mul_params = dict(a_lanes=a_lanes, w_lanes=w_lanes, mul_width=mul_width, latency=mul_latency,
                               dsp_operands=dsp_operands, packed_inputs=self.packed_copies)
        if mul_latency not in LATENCIES:
            raise ValueError(f"mul_latency must be one of {LATENCIES}, not {mul_latency!r}")
        if not isinstance(max_k, int) or isinstance(max_k, bool) or max_k < 1:
            raise ValueError(f"max_k must be a positive integer, not {max_k!r}")
        self.layout = packed_layout(a_lanes=a_lanes, w_lanes=w_lanes, mul_width=mul_width)
        self.rows, self.cols = rows, cols
        self.tokens, self.channels = rows * a_lanes, cols * w_lanes
        self.mul_latency = mul_latency
        self.latency = array_latency(mul_latency, fanout_stages)
        self.max_k = max_k
        self.acc_bits = trip_acc_bits(max_k)
        self.beat_layout = data.StructLayout({
            "a": data.ArrayLayout(signed(4), self.tokens),
            "w": data.ArrayLayout(signed(4), self.channels),
            "hi": 1, "lo": 1, "last": 1,
        })
        self.out_layout = data.ArrayLayout(data.ArrayLayout(signed(self.acc_bits), self.channels), self.tokens)
        if drain_lanes is not None and (isinstance(drain_lanes, bool) or not isinstance(drain_lanes, int)
                                        or drain_lanes < 1 or (self.tokens * self.channels) % drain_lanes):
            raise ValueError(f"drain_lanes must be a positive divisor of the {self.tokens}×{self.channels} "
                             f"tile's {self.tokens * self.channels} sums, not {drain_lanes!r}")
        self.drain_lanes = drain_lanes
        if head_offsets and drain_lanes is None:
            raise ValueError("head_offsets needs drain_lanes: the offsets are added as sums enter the first "
                             "drain_lanes places")
        self.head_offsets = bool(head_offsets)
        members = {
            "i": In(stream.Signature(self.beat_layout)),
            "o": Out(stream.Signature(self.out_layout)),
        }
        if drain_lanes is not None:
            members["drain"] = In(1)
        super().__init__(members)

    @property
    def macs_per_beat(self) -> int:
        return self.tokens * self.channels

    def elaborate(self, platform) -> Module:
        m = Module()

        advance = Signal()          # the whole pipeline moves on this cycle
        moving = design_wide(m, platform, advance, "moving")     # ... as every pipeline register's enable
        lay = self.layout

        def step(value, shape, name: str, **kwargs) -> Signal:
            """``value`` one pipeline register later; like every register here, frozen while the array stalls."""
            reg = Signal(shape, name=name, **kwargs)
            with m.If(moving):
                m.d.sync += reg.eq(value)
            return reg

        # The fan-out tree: each level's copies take the beat from the copy of the level above that holds
        # their rows, and keep only those rows' activations; with fanout_cols the last level splits each copy
        # by columns instead, keeping only those columns' weights.  fpga.build keeps yosys from merging the
        # copies.  The copies carry the beat's hi/lo flags too, for the terms' flag pipelines below (ECP5).
        copies = [_Copy(range(self.rows), range(self.cols), self.i.valid, list(self.i.payload.a),
                       list(self.i.payload.w), self.i.payload.hi, self.i.payload.lo)]

        def holding(row: int, col: int = 0) -> _Copy:
            """The current level's copy of the beat with ``row`` and ``col``."""
            return next(c for c in copies if row in c.rows and col in c.cols)

        def register(level: int, k: int, parent: _Copy, rows: range, cols: range, pack: bool = False) -> _Copy:
            """Copy ``k`` of ``level``: ``parent``'s beat with only ``rows``' activations and ``cols``' weights,
            with ``pack`` as the multipliers' operands."""
            a = parent.a[(rows.start - parent.rows.start) * lay.a_lanes:(rows.stop - parent.rows.start) * lay.a_lanes]
            w = parent.w[(cols.start - parent.cols.start) * lay.w_lanes:(cols.stop - parent.cols.start) * lay.w_lanes]
            a_shape, w_shape = signed(4), signed(4)
            if pack:
                a = [lay.operand_a(a[n:n + lay.a_lanes]) for n in range(0, len(a), lay.a_lanes)]
                w = [lay.operand_w(w[n:n + lay.w_lanes]) for n in range(0, len(w), lay.w_lanes)]
                a_shape, w_shape = signed(lay.a_bits), signed(lay.w_bits)
            shape = data.StructLayout({"valid": 1, "a": data.ArrayLayout(a_shape, len(a)),
                                       "w": data.ArrayLayout(w_shape, len(w)), "hi": 1, "lo": 1})
            value = Signal(shape)
            m.d.comb += [value.valid.eq(parent.valid), value.hi.eq(parent.hi), value.lo.eq(parent.lo)]
            m.d.comb += [value.a[i].eq(x) for i, x in enumerate(a)]
            m.d.comb += [value.w[i].eq(x) for i, x in enumerate(w)]
            reg = step(value, shape, f"fanout_{level}_{k}")
            return _Copy(rows, cols, reg.valid, list(reg.a), list(reg.w), reg.hi, reg.lo, pack)

        row_levels = self.fanout_stages - (self.fanout_cols > 1)
        for level, count in enumerate(fanout_copies(self.rows, row_levels)):
            below = []
            pack = self.packed_copies and level == self.fanout_stages - 1
            for k in range(count):
                rows = range(k * self.rows // count, (k + 1) * self.rows // count)
                parent = holding(rows.start)
                assert rows.stop <= parent.rows.stop, "fan-out copies nest"
                below.append(register(level, k, parent, rows, parent.cols, pack))
            copies = below
        if self.fanout_cols > 1:
            below = []
            for parent in copies:
                for g in range(self.fanout_cols):
                    cols = range(g * self.cols // self.fanout_cols, (g + 1) * self.cols // self.fanout_cols)
                    below.append(register(row_levels, len(below), parent, parent.rows, cols, self.packed_copies))
            copies = below

        muls = {}
        for r in range(self.rows):
            for c in range(self.cols):
                src = holding(r, c)
                mul = SimdMul4(**self.mul_params)
                m.submodules[f"mul_{r}_{c}"] = mul
                muls[r, c] = mul
                m.d.comb += mul.en.eq(moving)
                if src.packed:
                    m.d.comb += [mul.i.payload.a.eq(src.a[r - src.rows.start]),
                                 mul.i.payload.w.eq(src.w[c - src.cols.start])]
                else:
                    for i in range(lay.a_lanes):
                        m.d.comb += mul.i.payload.a[i].eq(src.a[(r - src.rows.start) * lay.a_lanes + i])
                    for j in range(lay.w_lanes):
                        m.d.comb += mul.i.payload.w[j].eq(src.w[(c - src.cols.start) * lay.w_lanes + j])
                m.d.comb += [mul.i.valid.eq(src.valid), mul.o.ready.eq(1)]

        # Side-band bits and the weights (for the lo-beat offset) follow the products down the pipeline.
        side_layout = data.StructLayout({"valid": 1, "hi": 1, "lo": 1, "last": 1,
                                         "w": data.ArrayLayout(signed(4), self.channels)})
        side = Signal(side_layout)
        m.d.comb += [side.valid.eq(self.i.valid), side.hi.eq(self.i.payload.hi), side.lo.eq(self.i.payload.lo),
                     side.last.eq(self.i.payload.last), side.w.eq(self.i.payload.w)]

        for n in range(self.fanout_stages + self.mul_latency):     # (mul_latency >= 1: at least one stage)
            side = step(side, side_layout, f"side_q{n}")

        # Each product's term (the hi beat's shift, the lo beat's offset) gets a register of its own, so
        # the accumulator adds one registered term: the two adders in series, after a side-band select,
        # were the iCE40 build's critical path.
        # A hi beat's term has its low bits zero (the lo offset starts above them).  On ECP5, said as "clear
        # these bits on a moving hi beat" through a global net of its own, yosys puts that net on the
        # flip-flops' reset pin; left to yosys it made a LUT of (moving, hi) and routed it to every term of
        # the array in fabric (ULX3S-25F: 4.4 ns of routing, the critical path once the multipliers' registers
        # had moved into the DSPs).  Elsewhere the term is one register, the netlist the iCEBreaker's 40 MHz
        # placement was found for (split there too, seed 1 fell from 42.7 to 39.8 MHz).
        ecp5 = getattr(platform, "family", None) == "ecp5"
        low = _LO_SHIFT if ecp5 else 0
        # (From `advance`, not from the `moving` global: fed from one global, this one's input LUT sat where that
        # global reached it and routed on to its own DCCA: ULX3S-85F 11.04 ns into 2,048 term resets, two
        # fabric routes to DCCAs in series, the one group over 10.04 ns at 4520909 seed 1.)
        zero_low = design_wide(m, platform, advance & side.hi, "hi_term") if ecp5 else None
        # On ECP5 every multiplier's terms read their own copy of the beat's hi/lo flags (fpga.build keeps
        # yosys from merging the copies): one flag register steering all the array's term adders was the
        # ULX3S-85F build's critical path, a route of 17 ns around congested fabric.  The copies of a row
        # come from that row's own flag pipeline, which starts at the row's fan-out copy: fed from the side
        # pipeline's one register, the copies were a 128-sink net across the array (85F: 20.5 ns).
        # With head_offsets the cells need no lo flag, so none is copied.
        cell_lo = not self.head_offsets
        flags = {}
        for r in range(self.rows):
            if not ecp5:
                flags.update({(r, c): (side.hi, side.lo) for c in range(self.cols)})
                continue
            for g, leaf in enumerate(c for c in copies if r in c.rows):   # fanout_stages registers after the input
                # ... then as deep as the products, less the copy
                row_hi, row_lo = leaf.hi, leaf.lo
                suffix = f"{r}_{g}_" if self.fanout_cols > 1 else f"{r}_"
                for n in range(self.mul_latency - 1):
                    row_hi = step(row_hi, 1, f"side_copy_row_hi_{suffix}{n}")
                    if cell_lo:
                        row_lo = step(row_lo, 1, f"side_copy_row_lo_{suffix}{n}")
                for c in leaf.cols:
                    flags[r, c] = (step(row_hi, 1, f"side_copy_hi_{r}_{c}"),
                                   step(row_lo, 1, f"side_copy_lo_{r}_{c}") if cell_lo else None)
        terms = {}
        for t in range(self.tokens):
            r, i = divmod(t, lay.a_lanes)
            for ch in range(self.channels):
                c, j = divmod(ch, lay.w_lanes)
                product = muls[r, c].o.payload[i][j]
                hi, lo = flags[r, c]
                term = Mux(hi, product << 4, product)
                if cell_lo:
                    term = term + Mux(lo, side.w[ch] << _LO_SHIFT, 0)
                reg = Signal(term.shape(), name=f"term_{t}_{ch}", reset_less=True)
                with m.If(moving):
                    m.d.sync += reg[low:].eq(term[low:])
                if low:
                    with m.If(zero_low):
                        m.d.sync += reg[:low].eq(0)
                    with m.Elif(moving):
                        m.d.sync += reg[:low].eq(product[:low])
                terms[t, ch] = reg
        # With head_offsets, each channel's lo offset gets a term register of its own instead, beside the cells'.
        # It is kept in units of LO_OFFSET (Σw, not 8·Σw) and shifted only where it is added to a sum: the
        # always-zero low bits, held and rotated in the drain's flip-flops, took their clear on a reset pin
        # driven from the drain's and the dump's global nets (ULX3S-85F: 12.5 ns, the second-slowest path).
        offset_bits = self.acc_bits - _LO_SHIFT
        offset_terms = [step(Mux(side.lo, side.w[ch], 0), signed(offset_bits), f"lo_offset_term_{ch}")
                        for ch in range(self.channels)] if self.head_offsets else []
        side = step(side, side_layout, "side_term")

        # With local_stall a finishing group waits while the output register is full, even in the cycle the
        # consumer takes it: with the consumer's ready in it, the stall is a chain from the array's output
        # through the tile adapter and back into every enable of the array (ULX3S-85F: 15.2 ns to the
        # accumulators' enable).  It costs a cycle only when a group finishes as its predecessor is taken.
        # (The iCEBreaker keeps the netlist its 40 MHz placement was found for.)
        finishing = side.valid & side.last
        stall = finishing & self.o.valid
        if not self.local_stall:
            stall = stall & ~self.o.ready
        m.d.comb += [advance.eq(~stall), self.i.ready.eq(advance)]

        # A group's last beat sends its sums out and clears the accumulators for the next group; the domain
        # reset clears them too (a reset mid-group must not leak into the next one).  Clearing after the
        # last beat through one net that overrides the enable, not selecting 0 before the first beat, lets
        # yosys put the clear on the flip-flops' reset pin instead of a mux in front of every accumulator
        # bit: on the ECP5-85F core those muxes were about 12k of the device's 83.6k LUTs.
        clear = Signal()
        # (A reset-less domain, such as the ECP5 platforms' own clock with its GSR start-up reset, has no
        # run-time reset to clear for.)
        m.d.comb += clear.eq(ResetSignal(allow_reset_less=True) | (advance & finishing))
        # The accumulators' and the output word's enables reach every cell too.
        dump, clear, add = (design_wide(m, platform, advance & finishing, "dump"),
                            design_wide(m, platform, clear, "clear_all"),
                            design_wide(m, platform, advance & side.valid, "add"))
        def accumulate(term: Value, bits: int, name: str) -> Value:
            """A group's running sum of ``term``: cleared by ``clear``, added to on ``add``; returns the sum
            with this cycle's term (what the register takes)."""
            acc = Signal(signed(bits), name=name, reset_less=True)
            total = acc + term
            with m.If(clear):
                m.d.sync += acc.eq(0)
            with m.Elif(add):
                m.d.sync += acc.eq(total)
            return total

        totals = {(t, ch): accumulate(terms[t, ch], self.acc_bits, f"acc_{t}_{ch}")
                  for t in range(self.tokens) for ch in range(self.channels)}
        # ... and so do the channels' lo offsets (head_offsets), summed like the cells' terms.
        offsets = [accumulate(term, offset_bits, f"lo_offset_acc_{ch}") for ch, term in enumerate(offset_terms)]

        if self.drain_lanes is None:
            with m.If(dump):
                m.d.sync += [self.o.payload[t][ch].eq(totals[t, ch])
                             for t in range(self.tokens) for ch in range(self.channels)]
        else:
            # The output register moves when a tile is dumped into it or drained, and that enable gets a global
            # net of its own; the dump net picks what it loads.  (Enabled by "dump or drain" computed in a LUT,
            # the register would get a fabric net of the tile's fanout again.)
            self._drain(m, totals, offsets, dump, design_wide(m, platform, (advance & finishing) | self.drain, "drain"))

        with m.If(advance & finishing):
            m.d.sync += self.o.valid.eq(1)
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m

    def _drain(self, m: Module, totals: dict, offsets: list, dump: Value, move: Value) -> None:
        """The output shift register of ``drain_lanes``.  With ``head_offsets`` (``offsets`` not empty) a sum
        gets its channel's lo offset as it enters the first ``drain_lanes`` places: the group's offsets are
        held beside the tile, rotated ``drain_lanes`` channels on every drain, so the ones the next chunk
        needs sit at fixed places, an adder per lane and no multiplexer."""
        lanes, channels, n = self.drain_lanes, self.channels, self.tokens * self.channels
        elems = [self.o.payload[e // channels][e % channels] for e in range(n)]     # token-major
        loaded = [totals[e // channels, e % channels] for e in range(n)]
        shifted = elems[lanes:]
        if offsets:
            # held[k]: the offset of the channel k places after the first place's
            held = [Signal(signed(self.acc_bits - _LO_SHIFT), name=f"lo_offset_held_{k}", reset_less=True)
                    for k in range(channels)]
            for e in range(lanes):     # (the offsets count LO_OFFSETs)
                loaded[e] = loaded[e] + (offsets[e % channels] << _LO_SHIFT)
                if e < n - lanes:
                    shifted[e] = shifted[e] + (held[(e + lanes) % channels] << _LO_SHIFT)
            with m.If(move):
                with m.If(dump):
                    m.d.sync += [held[k].eq(offsets[k]) for k in range(channels)]
                with m.Else():
                    m.d.sync += [held[k].eq(held[(k + lanes) % channels]) for k in range(channels)]
        with m.If(move):
            with m.If(dump):
                m.d.sync += [elems[e].eq(loaded[e]) for e in range(n - lanes)]
            with m.Else():
                m.d.sync += [elems[e].eq(shifted[e]) for e in range(n - lanes)]
        # The last places only ever load, so they keep the dump net as their enable (under both nets they
        # had a LUT of the two).
        with m.If(dump):
            m.d.sync += [elems[e].eq(loaded[e]) for e in range(n - lanes, n)]
