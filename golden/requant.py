"""Integer reference of the output stage: per-group scaling and requantization to int8/int4.

A quantized linear layer with per-group weight scales ``ws[n, g]`` and
per-token activation scales ``xs[m]`` has the float output::

    y[m, n] = xs[m] · Σ_g ws[n, g] · acc[m, n, g]

where ``acc`` are the exact group sums (:func:`golden.group_accumulators`).
Hardware cannot multiply by floats, so the scales become unsigned fixed-point
multipliers of ``mult_bits`` bits (:func:`requant_params`) and the next
layer's integers are defined, exactly, as::

    psum[m, n] = Σ_g acc[m, n, g] · wmul[n, g]                  (exact, signed)
    q[m, n]    = clamp(round_half_up(psum[m, n] · tmul[m] / 2**shift), out_bits)

with ``round_half_up(v / 2**s) = (v + 2**(s-1)) >> s`` (arithmetic shift, so
halves round towards +∞ for either sign) and ``clamp`` saturating to the
signed ``out_bits`` range.  ``tmul[m]`` folds the token's activation scale and
the output scale ``os``: ``q ≈ y / os``.  :func:`requantize` is that
definition; the RTL stage (``hw/rtl/requant.py``) and the CPU path must
reproduce it bit for bit, and :func:`requant_bits` bounds every intermediate
so their registers never wrap.

The float view is only approximate (each multiplier is rounded to
``mult_bits``); tests bound that error against ``y / os`` separately.
Symmetric (zero-point-free) weights and activations only: that is what the
TRIP datapath computes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .intref import check_int, int_range

__all__ = ["MULT_BITS", "OUT_BITS", "RequantParams", "group_scaled", "output_scale", "requant_params", "requantize",
           "requant_bits"]

#: Default width of the unsigned fixed-point multipliers (one 18×18 DSP port holds them).
MULT_BITS = 16
#: The widths the next layer's activations can have.
OUT_BITS = (4, 8)
#: The largest total shift the hardware's barrel shifter needs to support.
MAX_SHIFT = 62


@dataclass(frozen=True)
class RequantParams:
    """Integer form of one layer's scales: ``wmul (N, G)``, ``tmul (M,)``, ``shift`` and ``out_bits``."""
    wmul: NDArray[np.int64]
    tmul: NDArray[np.int64]
    shift: int
    out_bits: int
    mult_bits: int = MULT_BITS


def _check_out_bits(out_bits: int) -> None:
    if out_bits not in OUT_BITS:
        raise ValueError(f"requantized activations are 4 or 8 bits, not {out_bits!r}")


def _fixed_point(values: NDArray[np.float64], mult_bits: int, what: str) -> tuple[NDArray[np.int64], int]:
    """``(ints, frac)`` with ``ints = round(values · 2**frac)`` and the largest value using all ``mult_bits``."""
    if values.size == 0:
        raise ValueError(f"{what}: no scales given")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"{what} must be finite and positive (min {values.min()!r})")
    top = float(values.max())
    frac = mult_bits - 1 - int(np.floor(np.log2(top)))        # top · 2**frac in [2**(mult_bits-1), 2**mult_bits)
    ints = np.round(np.ldexp(values, frac)).astype(np.int64)
    ints = np.minimum(ints, (1 << mult_bits) - 1)              # a top value that rounds up to 2**mult_bits
    if np.any(ints == 0):
        small = float(values[ints == 0].min())
        raise ValueError(f"{what} span more than {mult_bits} bits (max {top:.3g}, min {small:.3g}): "
                         f"the smallest rounds to 0; use a wider mult_bits")
    return ints, frac


def group_scaled(acc: ArrayLike, w_scales: ArrayLike, x_scales: ArrayLike) -> NDArray[np.float64]:
    """The float output ``y[m, n] = xs[m] · Σ_g ws[n, g] · acc[m, n, g]`` that requantization approximates."""
    a = np.asarray(acc, dtype=np.float64)
    ws = np.asarray(w_scales, dtype=np.float64)
    xs = np.asarray(x_scales, dtype=np.float64).reshape(-1)
    if a.ndim != 3 or ws.shape != a.shape[1:] or xs.shape != a.shape[:1]:
        raise ValueError(f"group_scaled needs acc (M, N, G), w_scales (N, G) and x_scales (M,); got {a.shape}, "
                         f"{ws.shape} and {xs.shape}")
    return np.einsum("mng,ng->mn", a, ws) * xs[:, None]


def output_scale(y: ArrayLike, out_bits: int) -> float:
    """A per-tensor output step that maps the largest ``|y|`` to the top of the signed ``out_bits`` range.

    What a static observer calibrated on ``y`` would choose.
    """
    _check_out_bits(out_bits)
    top = float(np.abs(np.asarray(y, dtype=np.float64)).max(initial=0.0))
    if not np.isfinite(top) or top == 0:
        raise ValueError(f"cannot derive an output scale from max |y| = {top}")
    return top / int_range(out_bits)[1]


def requant_params(w_scales: ArrayLike, x_scales: ArrayLike, out_scale: float, out_bits: int,
                   mult_bits: int = MULT_BITS) -> RequantParams:
    """Fixed-point multipliers for float ``w_scales (N, G)``, ``x_scales (M,)`` and the output step ``out_scale``.

    Each set is scaled by its own power of two so its largest entry uses all
    ``mult_bits`` bits; the two exponents add up to ``shift``.
    """
    _check_out_bits(out_bits)
    if not isinstance(mult_bits, int) or not 2 <= mult_bits <= 24:
        raise ValueError(f"mult_bits must be an integer in [2, 24], not {mult_bits!r}")
    ws = np.asarray(w_scales, dtype=np.float64)
    xs = np.asarray(x_scales, dtype=np.float64).reshape(-1)
    if ws.ndim != 2:
        raise ValueError(f"weight scales must be (out, groups), got shape {ws.shape}")
    if not (np.isfinite(out_scale) and out_scale > 0):
        raise ValueError(f"out_scale must be finite and positive, not {out_scale!r}")
    wmul, w_frac = _fixed_point(ws, mult_bits, "weight scales")
    tmul, t_frac = _fixed_point(xs / out_scale, mult_bits, "activation scales / out_scale")
    shift = w_frac + t_frac
    if not 1 <= shift <= MAX_SHIFT:
        raise ValueError(f"scales need a shift of {shift}, outside [1, {MAX_SHIFT}]: the output scale is "
                         f"{'too large' if shift < 1 else 'too small'} for these weight and activation scales")
    return RequantParams(wmul, tmul, shift, out_bits, mult_bits)


def requant_bits(acc_bits: int, mult_bits: int, groups: int) -> tuple[int, int]:
    """Signed widths ``(psum_bits, product_bits)`` that hold ``psum`` and ``psum · tmul`` without wrapping.

    ``acc`` is signed ``acc_bits``, multipliers unsigned ``mult_bits``; ``psum``
    adds ``groups`` such products.
    """
    if groups < 1:
        raise ValueError(f"groups must be at least 1, not {groups!r}")
    psum_bits = acc_bits + mult_bits + (groups - 1).bit_length()
    return psum_bits, psum_bits + mult_bits


def requantize(acc: ArrayLike, wmul: ArrayLike, tmul: ArrayLike, shift: int, out_bits: int,
               acc_bits: int = 32, mult_bits: int = MULT_BITS) -> NDArray[np.int8]:
    """The next layer's integers from group sums ``acc (M, N, G)``: shape ``(M, N)``, int8 dtype.

    ``acc`` must fit signed ``acc_bits`` and the multipliers unsigned
    ``mult_bits``; ``shift`` is in ``[1, 62]``.  Exact integer arithmetic
    (Python ints where int64 could overflow).
    """
    _check_out_bits(out_bits)
    a = check_int(acc, acc_bits, name="acc")
    wm = check_int(wmul, mult_bits, signed=False, name="wmul")
    tm = check_int(tmul, mult_bits, signed=False, name="tmul").reshape(-1)
    if a.ndim != 3 or wm.shape != a.shape[1:] or tm.shape != a.shape[:1]:
        raise ValueError(f"requantize needs acc (M, N, G), wmul (N, G) and tmul (M,); got {a.shape}, "
                         f"{wm.shape} and {tm.shape}")
    if not isinstance(shift, (int, np.integer)) or not 1 <= shift <= MAX_SHIFT:
        raise ValueError(f"shift must be an integer in [1, {MAX_SHIFT}], not {shift!r}")
    _, product_bits = requant_bits(acc_bits, mult_bits, a.shape[2])
    # int64 is exact while the product and the rounding constant fit; beyond that, Python ints.
    kind = np.int64 if product_bits <= 62 and shift <= 62 else object
    psum = (a.astype(kind) * wm.astype(kind)[None]).sum(axis=2)
    product = psum * tm.astype(kind)[:, None]
    lo, hi = int_range(out_bits)
    rounded = (product + (1 << (int(shift) - 1))) >> int(shift)
    return np.clip(rounded, lo, hi).astype(np.int8)
