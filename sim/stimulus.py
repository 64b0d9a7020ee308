"""Stimulus for int4 lanes: exhaustive where the space is small, else random plus corners."""
from __future__ import annotations

import itertools

import numpy as np

from golden.requant import MAX_SHIFT

__all__ = ["EXHAUSTIVE_LIMIT", "CORNERS", "int4_vectors", "matmul_operands", "requant_operands", "spread_shift"]

EXHAUSTIVE_LIMIT = 1 << 16
#: Values that stress sign handling and field borrows: the extremes, zero and ±1.
CORNERS = (-8, -7, -1, 0, 1, 7)


def int4_vectors(n_lanes: int, *, group: int = 1, random_count: int = 100_000,
                 seed: int = 0) -> tuple[np.ndarray, str]:
    """Rows of ``n_lanes`` int4 values, a whole number of ``group``-row groups.

    If every combination of one group's inputs fits in :data:`EXHAUSTIVE_LIMIT`
    they all come (``kind == "exhaustive"``); otherwise ``random_count`` uniform
    rows.  Either
    way every corner combination follows, each repeated ``group`` times so that
    accumulated lanes reach their extremes (e.g. ``group × (-8)·(-8)``).
    Returns ``(rows, kind)``.
    """
    if 16 ** (n_lanes * group) <= EXHAUSTIVE_LIMIT:
        body = np.array(list(itertools.product(range(-8, 8), repeat=n_lanes)), dtype=np.int64)
        kind = "exhaustive"
    else:
        body = np.random.default_rng(seed).integers(-8, 8, size=(random_count, n_lanes))
        kind = "random"
    corners = np.array(list(itertools.product(CORNERS, repeat=n_lanes)), dtype=np.int64)
    corners = np.repeat(corners, group, axis=0)
    pad = (-len(body)) % group          # complete the last group of the body
    rows = np.concatenate([body, body[:pad], corners])
    if len(rows) % group:
        raise AssertionError("stimulus is not a whole number of groups")
    return rows, kind


#: Matmul stimulus kinds: uniform random, and the products that reach the accumulator's bounds.
MATMUL_KINDS = ("random", "max", "min", "corners")


def matmul_operands(kind: str, m: int, k: int, n: int, a_bits: int, *,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(x (m, k), w (n, k))``: signed ``a_bits`` activations and int4 weights of one stimulus kind.

    ``max`` makes every product ``(-2^(a_bits-1))·(-8)`` (the largest sum), ``min``
    every product ``(2^(a_bits-1)-1)·(-8)`` (the smallest), and ``corners``
    draws every lane from the extremes, zero and ±1.
    """
    lo, hi = -(1 << (a_bits - 1)), (1 << (a_bits - 1)) - 1
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.integers(lo, hi + 1, size=(m, k)), rng.integers(-8, 8, size=(n, k))
    if kind == "max":
        return np.full((m, k), lo), np.full((n, k), -8)
    if kind == "min":
        return np.full((m, k), hi), np.full((n, k), -8)
    if kind == "corners":
        return (rng.choice([lo, lo + 1, -1, 0, 1, hi], size=(m, k)),
                rng.choice(np.array(CORNERS), size=(n, k)))
    raise ValueError(f"unknown stimulus kind {kind!r}; choose one of {MATMUL_KINDS}")


#: Requantization stimulus kinds: random sums, sums at the accumulator bounds, and exact rounding ties.
REQUANT_KINDS = ("random", "max", "min", "ties", "edges", "edges_far", "max_far", "min_far", "max_top", "min_top")


def requant_operands(kind: str, m: int, n: int, groups: int, *, acc_bits: int, mult_bits: int, out_bits: int,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(acc (m, n, groups), wmul (n, groups), tmul (m,), shift)`` of one stimulus kind.

    ``random`` picks ``shift`` so most outputs land inside the range and some
    clamp; ``max``/``min`` put every sum and multiplier at its extreme (the
    widest partial sums the hardware must hold); ``ties`` makes every
    ``psum·tmul`` an odd multiple of ``2**(shift-1)``, so each output is a
    rounding tie of either sign; ``edges`` (shift 1, unit multipliers, so the
    product is the sum itself) puts every value within 3 of a power of two,
    of either sign, at the outputs: the saturation and rounding boundaries of
    both output widths and the edges of any internal window.  ``edges_far``
    is ``edges`` through multipliers of ``2**(mult_bits-1)`` each and the shift
    that undoes them, ``max_far``/``min_far`` are ``max``/``min`` at the largest
    shift, and ``max_top``/``min_top`` at the shift that leaves them 5 bits
    (their top bits, where a hardware window over the product reaches past it).
    """
    rng = np.random.default_rng(seed)
    a_lo, a_hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    top = (1 << mult_bits) - 1
    if kind in ("max", "min", "max_far", "min_far", "max_top", "min_top"):
        acc = np.full((m, n, groups), a_hi if kind.startswith("max") else a_lo)
        shift = {"far": MAX_SHIFT, "top": (abs(a_lo) * top * top * groups).bit_length() - 5}.get(kind[-3:], 1)
        return acc, np.full((n, groups), top), np.full(m, top), shift
    if kind == "ties":
        shift = int(rng.integers(1, 8))
        acc = np.zeros((m, n, groups), dtype=np.int64)
        acc[..., 0] = rng.integers(-(1 << out_bits), 1 << out_bits, size=(m, n)) * 2 + 1   # odd
        return acc, np.ones((n, groups), dtype=np.int64), np.full(m, 1 << (shift - 1)), shift
    if kind in ("edges", "edges_far"):
        powers = [1 << b for b in range(2, acc_bits - 1)]
        values = sorted({v for p in powers for d in range(-3, 4) for v in (p + d, -(p + d))} | {a_lo, a_hi})
        values = [v for v in values if a_lo <= v <= a_hi]
        if m * n < len(values):
            raise ValueError(f"edges needs m·n >= {len(values)} outputs, got {m}·{n}")
        flat = np.resize(np.array(values, dtype=np.int64), m * n)        # every value, then again from the start
        acc = np.zeros((m, n, groups), dtype=np.int64)
        acc[..., 0] = flat.reshape(m, n)
        if kind == "edges":
            return acc, np.ones((n, groups), dtype=np.int64), np.ones(m, dtype=np.int64), 1
        half = 1 << (mult_bits - 1)
        return acc, np.full((n, groups), half), np.full(m, half), 2 * mult_bits - 1
    if kind == "random":
        acc = rng.integers(a_lo >> 2, (a_hi >> 2) + 1, size=(m, n, groups))
        wmul = rng.integers(1, top + 1, size=(n, groups))
        tmul = rng.integers(1, top + 1, size=m)
        return acc, wmul, tmul, spread_shift(acc, wmul, tmul, out_bits)
    raise ValueError(f"unknown stimulus kind {kind!r}; choose one of {REQUANT_KINDS}")


def spread_shift(acc: np.ndarray, wmul: np.ndarray, tmul: np.ndarray, out_bits: int) -> int:
    """A shift that puts the 90th percentile of ``|psum·tmul|`` at or above the top output code, so most
    outputs land inside the range and some clamp (a stimulus choice only: floats are fine here)."""
    product = np.abs(np.einsum("mng,ng->mn", np.asarray(acc, float), wmul) * np.asarray(tmul)[:, None])
    if product.size == 0:
        return 1        # no outputs (every token pruned): any valid shift
    top = max(float(np.quantile(product, 0.9)), 1.0) / ((1 << (out_bits - 1)) - 1)
    return int(np.clip(np.floor(np.log2(top)), 1, 62))
