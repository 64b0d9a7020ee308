"""Integer reference of the TRIP matmul datapath: A4 and A8 on one signed 4-bit multiplier array.

TRIP ("two refinements improved by pruning") computes ``x @ w.T`` for int4
weights with activations streamed as signed 4-bit *beats*:

* **A4**: one beat per k, the activation itself (``x`` in ``[-8, 7]``).
* **A8**: two beats per k.  With ``hi = x >> 4`` (signed, ``[-8, 7]``) and
  ``lo = x & 15`` (unsigned, ``[0, 15]``), ``x = 16·hi + lo``.  The unsigned low
  nibble does not fit a signed int4 multiplier port, so it is sent *offset*:
  ``lo - 8`` in ``[-8, 7]``, and the accumulator adds ``8·w`` back on that beat::

      x·w = 16·(hi·w) + ((lo - 8)·w + 8·w)
            └ hi beat ┘   └──── lo beat ────┘

  so every beat is a signed int4 × int4 product (what :func:`golden.simd_mul4`
  computes) plus, on ``lo`` beats, a shift-add of the weight.

Each accumulator sums one weight group (``group_size`` consecutive k), giving
exactly :func:`golden.group_accumulators`.  :func:`trip_acc_range` bounds every
value an accumulator register holds, including the partial sum between the
hi and lo beats of one k; that bound sets the hardware's accumulator width.
Token skipping: rows the keep mask drops are never sent, so they cost no beats.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .intref import _to_int32, check_int, int_range

__all__ = ["A_BITS", "Beat", "trip_beats", "trip_group_accumulators", "trip_acc_range", "trip_acc_bits",
           "LO_OFFSET"]

A_BITS = (4, 8)
#: The low nibble of an A8 activation travels as ``lo - LO_OFFSET`` (signed int4).
LO_OFFSET = 8


@dataclass(frozen=True)
class Beat:
    """One pass of activations over the 4-bit datapath.

    ``nibbles`` are signed int4 with the activations' shape.  The accumulator
    adds ``product << 4`` on ``hi`` beats and ``product + 8·w`` on ``lo`` beats.
    """
    nibbles: NDArray[np.int8]
    hi: bool
    lo: bool


def _check_a_bits(a_bits: int) -> None:
    if a_bits not in A_BITS:
        raise ValueError(f"TRIP activations are 4 or 8 bits, not {a_bits!r}")


def trip_beats(x: ArrayLike, a_bits: int) -> list[Beat]:
    """The beats that carry signed ``a_bits`` activations ``x`` through the datapath (hi before lo)."""
    _check_a_bits(a_bits)
    v = check_int(x, a_bits, name="activations")
    if a_bits == 4:
        return [Beat(v.astype(np.int8), hi=False, lo=False)]
    return [Beat((v >> 4).astype(np.int8), hi=True, lo=False),
            Beat(((v & 0xF) - LO_OFFSET).astype(np.int8), hi=False, lo=True)]


def trip_group_accumulators(x: ArrayLike, w: ArrayLike, group_size: int, a_bits: int,
                            keep: ArrayLike | None = None) -> NDArray[np.int32]:
    """Per-group accumulators of ``x @ w.T`` computed the way the TRIP datapath does, beat by beat.

    ``x`` is ``(M, K)`` signed ``a_bits``, ``w`` is ``(N, K)`` int4.  ``keep``
    (bool, length M) drops rows before any beat is formed.  Returns
    ``(M_kept, N, K // group_size)`` int32, equal to
    ``golden.group_accumulators(x[keep], w, group_size, a_bits)`` for every input.
    """
    _check_a_bits(a_bits)
    a = check_int(x, a_bits, name="x")
    b = check_int(w, 4, name="w")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"trip_group_accumulators needs x (M, K) and w (N, K), got {a.shape} and {b.shape}")
    if keep is not None:
        mask = np.asarray(keep)
        if mask.dtype != np.bool_ or mask.shape != (a.shape[0],):
            raise ValueError(f"keep mask must be bool of length M = {a.shape[0]}, got {mask.dtype} {mask.shape}")
        a = a[mask]
    k = a.shape[1]
    if not isinstance(group_size, (int, np.integer)) or group_size < 1 or k % group_size:
        raise ValueError(f"group size {group_size} does not divide K = {k}")
    g = k // group_size
    wg = b.reshape(-1, g, group_size)
    acc = np.zeros((a.shape[0], b.shape[0], g), dtype=np.int64)
    for beat in trip_beats(a, a_bits):
        product = np.einsum("mgk,ngk->mng", beat.nibbles.astype(np.int64).reshape(-1, g, group_size), wg)
        acc += product << 4 if beat.hi else product
        if beat.lo:
            acc += LO_OFFSET * wg.sum(-1)[None]
    return _to_int32(acc, "TRIP accumulator")


def trip_acc_range(max_k: int) -> tuple[int, int]:
    """Every value a TRIP accumulator can hold when it sums at most ``max_k`` k (A4 or A8).

    A finished sum of int8 × int4 products lies in ``[-1016·k, 1024·k]``
    (``127·(-8)`` and ``(-128)·(-8)``).  Between the hi and lo beats of the
    k-th term it holds ``S_{k-1} + 16·hi·w`` with ``16·hi·w`` in ``[-896, 1024]``,
    which stays inside the same range; A4 sums (``[-56·k, 64·k]``) do too.
    """
    if not isinstance(max_k, (int, np.integer)) or max_k < 1:
        raise ValueError(f"max_k must be a positive integer, not {max_k!r}")
    lo8, hi8 = int_range(8)
    lo4, hi4 = int_range(4)
    return hi8 * lo4 * max_k, lo8 * lo4 * max_k


def trip_acc_bits(max_k: int) -> int:
    """Signed width that holds :func:`trip_acc_range` ``(max_k)`` exactly."""
    lo, hi = trip_acc_range(max_k)
    return max((-lo - 1).bit_length(), hi.bit_length()) + 1
