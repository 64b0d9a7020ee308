"""Integer reference: the single definition of every integer the project computes.

Everything below works on NumPy integer arrays and never touches floats.  The
hardware benches, the CPU fallback and the quantized model all call these
functions; nothing else in the project re-implements this arithmetic.

Conventions
-----------
* int4 is signed two's complement in ``[-8, 7]``; uint4 is ``[0, 15]``.
* int8 is signed in ``[-128, 127]``.
* Products and dot products are exact and returned as int32.  A result that
  does not fit int32 raises :class:`OverflowError` instead of wrapping.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "int_range", "check_int", "pack_int4", "unpack_int4", "nibble_split",
    "nibble_join", "mul_int", "dot_int", "matmul_int", "group_accumulators", "simd_mul4", "simd_mul4_range",
]

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1


def int_range(bits: int, signed: bool = True) -> tuple[int, int]:
    """Inclusive ``(min, max)`` of a ``bits``-wide two's-complement (or unsigned) integer."""
    if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool) or bits < 1:
        raise ValueError(f"bit width must be a positive integer, not {bits!r}")
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def check_int(x: ArrayLike, bits: int, signed: bool = True, name: str = "x") -> NDArray[np.int64]:
    """Return ``x`` as an int64 array after checking every element fits ``bits``.

    Raises :class:`TypeError` for non-integer input (floats are never silently
    rounded here) and :class:`OverflowError` naming the first offending value.
    """
    arr = np.asarray(x)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, not dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    lo, hi = int_range(bits, signed)
    bad = (arr < lo) | (arr > hi)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        kind = "int" if signed else "uint"
        raise OverflowError(
            f"{name}{list(idx)} = {int(arr[idx])} is outside {kind}{bits} range "
            f"[{lo}, {hi}] ({int(bad.sum())} value(s) out of range)")
    return arr


def pack_int4(x: ArrayLike) -> NDArray[np.uint8]:
    """Pack signed int4 values two per byte along the last axis.

    Element ``2k`` goes to the low nibble of byte ``k`` and element ``2k+1`` to
    the high nibble (the order of the export format and of the hardware lanes).
    """
    v = check_int(x, 4, name="pack_int4 input")
    if v.ndim == 0 or v.shape[-1] % 2:
        raise ValueError(f"pack_int4 needs an even-length last axis, got shape {v.shape}")
    lo = v[..., 0::2] & 0xF
    hi = v[..., 1::2] & 0xF
    return (lo | (hi << 4)).astype(np.uint8)


def unpack_int4(packed: ArrayLike) -> NDArray[np.int8]:
    """Inverse of :func:`pack_int4`: bytes to signed int4 values, twice as many along the last axis."""
    p = np.asarray(packed)
    if p.dtype != np.uint8:
        raise TypeError(f"unpack_int4 expects uint8 bytes, not dtype {p.dtype}")
    nib = np.stack([p & 0xF, p >> 4], axis=-1).astype(np.int16)
    nib = np.where(nib >= 8, nib - 16, nib)
    return nib.reshape(*p.shape[:-1], p.shape[-1] * 2).astype(np.int8)


def nibble_split(x: ArrayLike) -> tuple[NDArray[np.int8], NDArray[np.uint8]]:
    """Split int8 ``x`` into ``(hi, lo)`` with ``x == 16*hi + lo``.

    ``hi`` is signed int4 in ``[-8, 7]`` and ``lo`` unsigned in ``[0, 15]``: this is
    how an A8 activation runs as two 4-bit passes on the TRIP datapath.
    """
    v = check_int(x, 8, name="nibble_split input")
    hi = v >> 4          # arithmetic shift: floor division by 16, keeps the sign
    lo = v & 0xF
    return hi.astype(np.int8), lo.astype(np.uint8)


def nibble_join(hi: ArrayLike, lo: ArrayLike) -> NDArray[np.int8]:
    """Inverse of :func:`nibble_split`: ``16*hi + lo`` as int8."""
    h = check_int(hi, 4, name="hi")
    l = check_int(lo, 4, signed=False, name="lo")
    return (16 * h + l).astype(np.int8)


def _to_int32(v: NDArray[np.int64], what: str) -> NDArray[np.int32]:
    if v.size and (v.min() < INT32_MIN or v.max() > INT32_MAX):
        raise OverflowError(f"{what} overflows int32 (range [{v.min()}, {v.max()}])")
    return v.astype(np.int32)


def mul_int(a: ArrayLike, b: ArrayLike, a_bits: int = 4, b_bits: int = 4) -> NDArray[np.int32]:
    """Exact elementwise product of signed ``a_bits`` and ``b_bits`` integers (broadcasting)."""
    return _to_int32(check_int(a, a_bits, name="a") * check_int(b, b_bits, name="b"), "product")


def dot_int(a: ArrayLike, b: ArrayLike, a_bits: int = 4, b_bits: int = 4) -> NDArray[np.int32]:
    """Exact dot product over the last axis (broadcasting the rest), as int32.

    Accumulates in int64 and raises :class:`OverflowError` if any result does
    not fit the int32 accumulator the hardware and CPU path use.
    """
    x = check_int(a, a_bits, name="a")
    y = check_int(b, b_bits, name="b")
    if x.shape[-1:] != y.shape[-1:]:
        raise ValueError(f"dot_int: last axes differ: {x.shape} vs {y.shape}")
    return _to_int32(np.einsum("...k,...k->...", x, y), "dot product")


def matmul_int(x: ArrayLike, w: ArrayLike, x_bits: int = 8, w_bits: int = 4,
               x_signed: bool = True) -> NDArray[np.int32]:
    """Exact ``x @ w.T`` for ``x`` of shape ``(M, K)`` and ``w`` of shape ``(N, K)``, as int32.

    This is the integer core of one quantized linear layer (weights are
    always signed; unsigned activations come from asymmetric quantizers).
    """
    a = check_int(x, x_bits, signed=x_signed, name="x")
    b = check_int(w, w_bits, name="w")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"matmul_int needs x (M, K) and w (N, K), got {a.shape} and {b.shape}")
    return _to_int32(a @ b.T, "matmul accumulator")


def group_accumulators(x: ArrayLike, w: ArrayLike, group_size: int, x_bits: int = 8, w_bits: int = 4,
                       x_signed: bool = True) -> NDArray[np.int32]:
    """Exact int32 partial sums of ``x @ w.T`` per weight group: shape ``(M, N, K // group_size)``.

    Group ``g`` covers K columns ``[g·group_size, (g+1)·group_size)``; these are
    the integers a quantized linear layer with per-group weight scales computes
    before any scaling (``group_size = K`` gives one group, per-channel weights).
    """
    a = check_int(x, x_bits, signed=x_signed, name="x")
    b = check_int(w, w_bits, name="w")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"group_accumulators needs x (M, K) and w (N, K), got {a.shape} and {b.shape}")
    k = a.shape[1]
    if group_size < 1 or k % group_size:
        raise ValueError(f"group size {group_size} does not divide K = {k}")
    g = k // group_size
    acc = np.einsum("mgk,ngk->mng", a.reshape(-1, g, group_size), b.reshape(-1, g, group_size))
    return _to_int32(acc, "group accumulator")


def simd_mul4_range(acc_depth: int = 1) -> tuple[int, int]:
    """Range of one ``simd_mul4`` output lane: a sum of ``acc_depth`` int4×int4 products."""
    if not isinstance(acc_depth, int) or acc_depth < 1:
        raise ValueError(f"acc_depth must be a positive integer, not {acc_depth!r}")
    return -56 * acc_depth, 64 * acc_depth   # -8*7 and (-8)*(-8)


def simd_mul4(a: ArrayLike, w: ArrayLike, acc_depth: int = 1) -> NDArray[np.int32]:
    """What the SIMD 4-bit multiplier must output: per-cycle outer products.

    ``a`` has shape ``(N, a_lanes)`` and ``w`` shape ``(N, w_lanes)`` (one row per
    accepted input).  Row ``n`` contributes ``a[n, i] * w[n, j]`` to lane ``(i, j)``;
    each group of ``acc_depth`` consecutive rows is summed into one output, so the
    result has shape ``(N // acc_depth, a_lanes, w_lanes)``.
    """
    simd_mul4_range(acc_depth)
    x = check_int(a, 4, name="a")
    y = check_int(w, 4, name="w")
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"simd_mul4 expects a (N, a_lanes) and w (N, w_lanes), got {x.shape} and {y.shape}")
    if x.shape[0] % acc_depth:
        raise ValueError(f"{x.shape[0]} inputs is not a whole number of acc_depth={acc_depth} groups")
    outer = x[:, :, None] * y[:, None, :]
    groups = outer.reshape(-1, acc_depth, x.shape[1], y.shape[1]).sum(axis=1)
    return _to_int32(groups, "simd_mul4 result")
