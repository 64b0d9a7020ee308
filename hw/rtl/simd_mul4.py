"""Several signed int4 × int4 products per cycle on one hardware multiplier.

The packing trick (the one Xilinx WP521 uses for DSP48E2), generalised to an
outer product so that both multiplier ports carry several lanes::

    A = a[0]            + a[1]·2^(S·Wl)     + ... + a[Al-1]·2^(S·Wl·(Al-1))     (+ bias_a)
    W = w[0] + w[1]·2^S + ... + w[Wl-1]·2^(S·(Wl-1))                             (+ bias_w)

    A·W = Σ_k p_k · 2^(S·k),   p_k = a[i]·w[j],   k = Wl·i + j

With ``a_lanes=2, w_lanes=2`` on an 18×18 multiplier (S = 7)::

    bit  28     21 20     14 13      7 6       0
        [ a1·w1  ][ a1·w0   ][ a0·w1   ][ a0·w0   ]   one MULT18X18D, 4 products

Fields overlap in two's complement: a negative lower field borrows one from
the field above.  Each lane is recovered from its S-bit slice of the exact
product by adding the borrow of the fields below and decoding the residue
(``p = r`` if ``r <= max`` else ``r - 2^S``); this is exact because a lane's
value range (``[-56, 64]`` per product) has fewer than ``2^S`` members.  The
borrow into field k is read off the low ``S·k`` bits directly (they exceed the
lower lanes' largest possible sum iff that sum is negative), so no borrow
ripples from lane to lane.

Packed operands that would overflow the signed port are shifted into range by
a constant ``bias``; ``bias_a·W + bias_w·A + bias_a·bias_w`` is subtracted again
with shift-adds (never a second multiplier).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.hdl import EnableInserter, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..dsp import mult18x18d

__all__ = ["PackedLayout", "SimdMul4", "best_shape", "packed_layout"]

_INT4_MIN, _INT4_MAX = -8, 7
LATENCIES = (1, 2, 3, 4, 5)


def _signed_bits(lo: int, hi: int) -> int:
    """Fewest two's-complement bits that hold every integer in ``[lo, hi]``."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


@dataclass(frozen=True)
class PackedLayout:
    """Where every lane sits in the packed operands and in the product.

    Attributes
    ----------
    a_lanes, w_lanes : lanes packed on the A and W multiplier ports.
    mul_width : signed width of each multiplier port.
    acc_depth : products accumulated per lane before extraction.
    stride : S, bit distance between neighbouring product fields.
    lane_min, lane_max : range of one output lane.
    a_bits, w_bits : port widths actually used by the packed operands.
    bias_a, bias_w : constants added to fit the signed ports (0 if not needed).
    """
    a_lanes: int
    w_lanes: int
    mul_width: int
    acc_depth: int
    stride: int
    lane_min: int
    lane_max: int
    a_bits: int
    w_bits: int
    bias_a: int
    bias_w: int

    @property
    def lanes(self) -> int:
        return self.a_lanes * self.w_lanes

    @property
    def lane_bits(self) -> int:
        return _signed_bits(self.lane_min, self.lane_max)

    def a_shift(self, i: int) -> int:
        return self.stride * self.w_lanes * i

    def w_shift(self, j: int) -> int:
        return self.stride * j

    def field(self, i: int, j: int) -> int:
        """Index k of product ``a[i]·w[j]`` in the packed result (bit offset ``k·stride``)."""
        return self.w_lanes * i + j

    def pack_a(self, a: Sequence[Value]) -> Value:
        """The ``a_lanes`` int4 activations ``a`` at their shifts, without the port's bias."""
        return sum(a[i] << self.a_shift(i) for i in range(self.a_lanes))

    def pack_w(self, w: Sequence[Value]) -> Value:
        """The ``w_lanes`` int4 weights ``w`` at their shifts, without the port's bias."""
        return sum(w[j] << self.w_shift(j) for j in range(self.w_lanes))

    def operand_a(self, a: Sequence[Value]) -> Value:
        """What the multiplier's A port takes for activations ``a`` (``a_bits`` wide): packed, plus ``bias_a``."""
        return self.pack_a(a) + self.bias_a

    def operand_w(self, w: Sequence[Value]) -> Value:
        """What the multiplier's W port takes for weights ``w`` (``w_bits`` wide): packed, plus ``bias_w``."""
        return self.pack_w(w) + self.bias_w


def _fit_port(shifts: list[int], width: int) -> tuple[int, int] | None:
    """(bits, bias) for a packed signed-int4 operand on a ``width``-bit signed port, or None."""
    weight = sum(1 << s for s in shifts)
    lo, hi = _INT4_MIN * weight, _INT4_MAX * weight
    port_lo, port_hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    bias = max(0, port_lo - lo)
    if hi + bias > port_hi:
        return None
    return _signed_bits(lo + bias, hi + bias), bias


def packed_layout(*, a_lanes: int, w_lanes: int, mul_width: int, acc_depth: int = 1) -> PackedLayout:
    """Compute the packing of ``a_lanes × w_lanes`` int4 products, or raise ``ValueError``."""
    for name, value in (("a_lanes", a_lanes), ("w_lanes", w_lanes), ("mul_width", mul_width),
                        ("acc_depth", acc_depth)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    if mul_width < 4:
        raise ValueError(f"mul_width must be at least 4 to hold one int4 operand, not {mul_width!r}")
    lane_min, lane_max = _INT4_MIN * _INT4_MAX * acc_depth, _INT4_MIN * _INT4_MIN * acc_depth
    stride = (lane_max - lane_min).bit_length()   # 2^S > lane_max - lane_min: residues are unique
    lanes = a_lanes * w_lanes
    fit_a = _fit_port([stride * w_lanes * i for i in range(a_lanes)], mul_width)
    fit_w = _fit_port([stride * j for j in range(w_lanes)], mul_width)
    for port, fit, n, step in (("A", fit_a, a_lanes, stride * w_lanes), ("W", fit_w, w_lanes, stride)):
        if fit is None:
            need = _signed_bits(_INT4_MIN * sum(1 << (step * i) for i in range(n)),
                                _INT4_MAX * sum(1 << (step * i) for i in range(n)))
            raise ValueError(
                f"simd_mul4: {a_lanes}×{w_lanes} lanes with acc_depth={acc_depth} need a "
                f"{need}-bit {port} operand (stride {stride} bits); the limit is the "
                f"{mul_width}×{mul_width} multiplier's {mul_width}-bit signed port "
                f"(even with a bias the range does not fit)")
    if stride * lanes > 2 * mul_width:
        raise ValueError(f"simd_mul4: {lanes} fields of {stride} bits exceed the "
                         f"{2 * mul_width}-bit product of a {mul_width}×{mul_width} multiplier")
    (a_bits, bias_a), (w_bits, bias_w) = fit_a, fit_w
    return PackedLayout(a_lanes, w_lanes, mul_width, acc_depth, stride, lane_min, lane_max,
                        a_bits, w_bits, bias_a, bias_w)


def best_shape(mul_width: int, acc_depth: int = 1) -> PackedLayout:
    """The packing with the most products per multiplier (ties: more W lanes, smaller A port)."""
    best = None
    for a_lanes in range(1, mul_width):
        for w_lanes in range(1, mul_width):
            try:
                lay = packed_layout(a_lanes=a_lanes, w_lanes=w_lanes, mul_width=mul_width,
                                    acc_depth=acc_depth)
            except ValueError:
                continue
            key = (lay.lanes, lay.w_lanes, -lay.a_bits)
            if best is None or key > best[0]:
                best = (key, lay)
    if best is None:
        raise ValueError(f"no int4 packing fits a {mul_width}×{mul_width} multiplier "
                         f"with acc_depth={acc_depth}")
    return best[1]


def _times_const(x: Value, c: int) -> Value:
    """``x * c`` for a non-negative constant as shift-adds, so synthesis never spends a DSP on it."""
    terms = [x.as_signed() << b for b in range(c.bit_length()) if (c >> b) & 1]
    out = terms[0] if terms else Const(0, signed(2))
    for t in terms[1:]:
        out = out + t
    return out


class SimdMul4(wiring.Component):
    """``a_lanes × w_lanes`` signed int4 products per cycle on one signed multiplier.

    Parameters
    ----------
    a_lanes : int
        Activations per input, packed on the multiplier's A port.
    w_lanes : int
        Weights per input, packed on the W port.
    mul_width : int
        Signed width of each multiplier port: 16 for iCE40 ``SB_MAC16``, 18 for
        ECP5 ``MULT18X18D``.  A packing that does not fit raises ``ValueError``.
    latency : int
        Pipeline registers, 1–5: output register; plus the product register
        (≥2); plus a register on the exact packed sum, between the bias
        subtraction and the lane extraction (≥3); plus the packed-operand
        register in front of the multiplier (≥4); plus a register inside the
        extraction (5): each lane's borrow and its field decoded both with
        and without it are registered, and one select feeds the output
        register, so that on a large device the placer can put the
        extraction beside the DSP and the select beside the lanes' users
        (ULX3S-85F: the compare, the decode and the select behind 5.4 ns of
        routing from the sum's register were the slowest group, 3,200
        endpoints at 11.9 ns).  The ECP5 builds use 4 or 5 (hw.sizes): on
        ECP5 to approach 100 MHz, on iCE40 because yosys then packs the
        operand and product registers into the SB_MAC16, the one form whose
        timing nextpnr-ice40 models (it times every DSP pin as a register).
        On ECP5 (a platform whose ``family`` is ``"ecp5"``, 18-bit ports,
        latency ≥ 2) the multiplier is a ``MULT18X18D`` instance that holds the
        product register, and the operand register too at latency 4: yosys
        packs no register into ECP5 DSPs, and nextpnr-ecp5 times a DSP whose
        registers are on as clocked, so the fabric-to-DSP-to-fabric path of
        one cycle becomes two short ones.  Same latency, same results.
    dsp_operands : bool
        On ECP5 at latency 4, whether the operand register is the DSP's own
        input register (True, the default) or a flip-flop in the fabric in
        front of an unregistered DSP input (False).  In the fabric the placer
        can put it halfway along a long route, where the operands of an array
        spread over a large device come from one queue: the ULX3S-85F's
        critical path.  Same latency, same results.
    acc_depth : int
        Sum this many consecutive inputs per lane (in the packed domain, one
        extraction per group) before emitting one output.  Wider lanes mean a
        wider stride and fewer lanes per multiplier; see :func:`best_shape`.
    packed_inputs : bool
        False (the default): ``i`` brings int4 lanes, packed here.  True: ``i``
        brings the ports' values themselves, :meth:`PackedLayout.operand_a` and
        :meth:`~PackedLayout.operand_w` of the lanes, packed by the producer
        (the TRIP array's fan-out registers: on ECP5 the packing adder sat between
        a column's copy of the beat and each DSP's input register, two routes in
        one cycle).  Same latency, same results.

    Members
    -------
    en : ``In(1, init=1)``
        Pipeline enable.  While it is low nothing moves: every register holds,
        ``i.ready`` and ``o.valid`` are low.  (The TRIP array stalls its
        multipliers with it; an ``EnableInserter`` cannot reach the registers
        inside a vendor DSP instance.)
    i : ``In(stream.Signature(StructLayout({"a": ArrayLayout(signed(4), a_lanes), "w": ArrayLayout(signed(4), w_lanes)})))``
        Operands; with ``packed_inputs``, ``StructLayout({"a": signed(a_bits), "w": signed(w_bits)})``.  ``i.ready`` is ``en``: one input is accepted on every
        enabled cycle with ``i.valid`` high; there is no other back-pressure.
    o : ``Out(stream.Signature(ArrayLayout(ArrayLayout(signed(B), w_lanes), a_lanes)))``
        ``o.payload[i][j] = Σ a[i]·w[j]`` over the last ``acc_depth`` inputs,
        with ``B = layout.lane_bits`` (8 for acc_depth 1).  ``o.valid`` pulses
        for one cycle, ``latency`` enabled cycles after the input that completes
        a group.  ``o.ready`` is ignored: the consumer must take every output.

    Contract
    --------
    Throughput one input per enabled cycle; latency ``latency`` enabled cycles; exact for every
    int4 input (no overflow is possible: the lane width covers the full range
    ``[-56·acc_depth, 64·acc_depth]``).  The accumulation group counter starts
    at reset.
    """

    def __init__(self, *, a_lanes: int = 2, w_lanes: int = 2, mul_width: int = 18,
                 latency: int = 2, acc_depth: int = 1, dsp_operands: bool = True, packed_inputs: bool = False):
        if latency not in LATENCIES:
            raise ValueError(f"latency must be one of {LATENCIES}, not {latency!r}")
        self.dsp_operands, self.packed_inputs = dsp_operands, bool(packed_inputs)
        self.layout = packed_layout(a_lanes=a_lanes, w_lanes=w_lanes, mul_width=mul_width,
                                    acc_depth=acc_depth)
        self.latency = latency
        if self.packed_inputs:
            self.in_layout = data.StructLayout({"a": signed(self.layout.a_bits), "w": signed(self.layout.w_bits)})
        else:
            self.in_layout = data.StructLayout({
                "a": data.ArrayLayout(signed(4), a_lanes),
                "w": data.ArrayLayout(signed(4), w_lanes),
            })
        self.out_layout = data.ArrayLayout(
            data.ArrayLayout(signed(self.layout.lane_bits), w_lanes), a_lanes)
        super().__init__({
            "en": In(1, init=1),
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(self.out_layout)),
        })

    def uses_ecp5_dsp(self, platform) -> bool:
        """Whether :meth:`elaborate` instantiates a registered ``MULT18X18D`` for ``platform``."""
        return getattr(platform, "family", None) == "ecp5" and self.layout.mul_width == 18 and self.latency >= 2

    def elaborate(self, platform):
        m = Module()
        lay = self.layout
        S = lay.stride

        def stage(value: Value, name: str) -> Signal:
            """One pipeline register.  Only the valid and group flags are reset: the data registers mean
            nothing until a valid reaches them, and without a reset yosys can move the multiplier's
            registers into the iCE40 SB_MAC16 (whose registers have no matching synchronous reset)."""
            reg = Signal(value.shape(), name=name, reset_less=not name.startswith(("valid", "last")))
            m.d.sync += reg.eq(value)
            return reg

        # Stage 0: pack operands (unbiased values are kept for the bias correction), unless they come packed.
        op_a = Signal(signed(lay.a_bits))
        op_w = Signal(signed(lay.w_bits))
        if self.packed_inputs:
            m.d.comb += [op_a.eq(self.i.payload.a), op_w.eq(self.i.payload.w)]
            a_packed, w_packed = op_a - lay.bias_a, op_w - lay.bias_w
        else:
            a_packed, w_packed = lay.pack_a(self.i.payload.a), lay.pack_w(self.i.payload.w)
            m.d.comb += [op_a.eq(a_packed + lay.bias_a), op_w.eq(w_packed + lay.bias_w)]
        correction = _times_const(w_packed, lay.bias_a) + _times_const(a_packed, lay.bias_w) \
            + lay.bias_a * lay.bias_w
        corr = Signal(signed(lay.a_bits + lay.w_bits + 1))
        m.d.comb += corr.eq(correction)

        valid = self.i.valid
        dsp = self.uses_ecp5_dsp(platform)
        # the DSP's input registers hold the operands (latency 4 on ECP5, unless dsp_operands is False)
        in_dsp = dsp and self.latency >= 4 and self.dsp_operands
        op_a_in, op_w_in = op_a, op_w
        if self.latency >= 4:     # the packing adders and the multiplier in separate cycles
            # With the operand registers inside the DSP, the fabric keeps only the one the correction reads
            # (fpga.build marks these flip-flops `keep`, so an unread copy would not be swept away).
            if not in_dsp or lay.bias_w:
                op_a = stage(op_a, "op_a_q")
            if not in_dsp or lay.bias_a:
                op_w = stage(op_w, "op_w_q")
            if not in_dsp:
                op_a_in, op_w_in = op_a, op_w
            valid = stage(valid, "valid_q0")
            # The correction again, from the registered operands (bias_a·op_w + bias_w·op_a − bias_a·bias_w
            # is the same number), beside the multiply.  Registered on its own it was op_w's bits shifted
            # (bias_w = 0 on ECP5), and yosys merged those flip-flops with the op_w registers of the other
            # multipliers of the column: one of them then drove a DSP across the device (the ULX3S-25F
            # build's critical path, 4.8 ns of routing into the multiplier).
            corr = Signal(signed(lay.a_bits + lay.w_bits + 1), name="corr_from_ops")
            m.d.comb += corr.eq(_times_const(op_w, lay.bias_a) + _times_const(op_a, lay.bias_w)
                                - lay.bias_a * lay.bias_w)

        # Stage 1: the one hardware multiplier.  The lanes read only the low S·lanes bits of the product
        # (everything after it adds and subtracts, so those bits are exact modulo 2^(S·lanes)); keeping
        # just those is also what lets yosys pack the product registers into an iCE40 SB_MAC16, which
        # it does not do for a product wider than its users.
        if dsp:
            # The DSP's own registers stand in for product_q, and for op_a_q/op_w_q at latency 4 unless
            # dsp_operands is False (then it takes the fabric registers' outputs).
            product = Signal(signed(S * lay.lanes), name="product_q")
            m.submodules.dsp = mult18x18d(op_a_in, op_w_in, product, input_registers=in_dsp, enable=self.en)
            corr, valid = stage(corr, "corr_q1"), stage(valid, "valid_q1")
        else:
            product = Signal(signed(S * lay.lanes), name="product")
            m.d.comb += product.eq(op_a * op_w)
            if self.latency >= 2:
                product = stage(product, "product_q")
                corr, valid = stage(corr, "corr_q1"), stage(valid, "valid_q1")

        # Stage 2: remove the bias, accumulate in the packed domain, extract lanes.
        exact = Signal(signed(lay.a_bits + lay.w_bits + 1), name="exact")
        m.d.comb += exact.eq(product - corr)
        acc_bits = len(exact) + (lay.acc_depth - 1).bit_length()
        total = Signal(signed(acc_bits), name="total")
        last = Signal()
        if lay.acc_depth == 1:
            m.d.comb += [total.eq(exact), last.eq(1)]
        else:
            acc = Signal(signed(acc_bits), name="acc")
            count = Signal(range(lay.acc_depth), name="count")
            m.d.comb += [total.eq(Mux(count == 0, 0, acc) + exact),
                         last.eq(count == lay.acc_depth - 1)]
            with m.If(valid):
                m.d.sync += [acc.eq(total), count.eq(Mux(last, 0, count + 1))]

        if self.latency >= 3:     # the subtraction (and accumulation) and the extraction in separate cycles
            total, last, valid = stage(total, "total_q"), stage(last, "last_q"), stage(valid, "valid_q2")

        lanes = Signal(self.out_layout, name="lanes")
        split = self.latency >= 5           # the extraction in two cycles: the register between is below
        for k in range(lay.lanes):
            i, j = divmod(k, lay.w_lanes)
            # Field k sees a borrow iff the lanes below it sum to a negative value.  Their sum lies in
            # [Σ lane_min·2^(S·j), Σ lane_max·2^(S·j)], a range narrower than 2^(S·k), so it is negative
            # exactly when the low S·k bits of the total exceed the largest sum.  One constant compare
            # per lane, all side by side: a borrow rippled from lane to lane was the ECP5 build's
            # critical path (the lane chain through four carry chains).
            below_max = sum(lay.lane_max << (S * jj) for jj in range(k))
            borrow: Value = total[:S * k] > below_max if k else Const(0, 1)
            field = total[S * k:S * (k + 1)]
            if dsp or split:
                # The field decoded with and without the borrow side by side, then one select: the borrow's
                # compare, the increment and the decode's compare in series, through a multiplexer into the
                # output register, were 13.3 ns on the ULX3S-85F.  A residue r decodes to r - 2^S when it
                # exceeds lane_max, which is r with a sign bit of weight -2^S on top.
                def decoded(residue: Value) -> Value:
                    return Cat(residue, residue > lay.lane_max).as_signed()
                choices = (borrow, decoded(field), decoded((field + 1)[:S]))
                if split:
                    choices = tuple(stage(value, f"{name}_{k}_q") for value, name in
                                    zip(choices, ("borrow", "decoded", "decoded_borrow")))
                borrow, plain, borrowed = choices
                m.d.comb += lanes[i][j].eq(Mux(borrow, borrowed, plain))
                continue
            residue = (field + borrow)[:S]
            negative = residue > lay.lane_max
            m.d.comb += lanes[i][j].eq(Mux(negative, residue - (1 << S), residue))

        if split:
            last, valid = stage(last, "last_q3"), stage(valid, "valid_q3")
        out_valid = Signal()
        m.d.sync += [self.o.payload.eq(lanes), out_valid.eq(valid & last)]
        m.d.comb += [self.i.ready.eq(self.en), self.o.valid.eq(out_valid & self.en)]
        # Every register above, and the accumulator, holds while en is low (the DSP gets en on its CE0).
        return EnableInserter(self.en)(m)
