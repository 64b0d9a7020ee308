"""The order in which a matmul's beats enter :class:`hw.rtl.trip_array.TripArray`, and what comes out.

Output-stationary tiling: for every tile of ``tokens`` kept rows and every
tile of ``channels`` output channels, for every weight group, every k of the
group sends its beats (one at A4, hi then lo at A8); the group's last beat
carries ``last``.  Rows and channels past the matrix edge are zero padding,
which contributes exactly 0 at either width.  The nibbles come from
:func:`golden.trip_beats`; this module only moves data.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import golden

__all__ = ["ArraySchedule", "RequantSchedule", "array_schedule", "expected_tiles", "kept_rows", "requant_schedule"]


@dataclass(frozen=True)
class ArraySchedule:
    beats: np.ndarray       # (n_beats, tokens + channels + 3): a lanes, w lanes, hi, lo, last
    expected: np.ndarray    # (n_outputs, tokens, channels): one finished tile per (tile, group)
    tiles: int


def _pad(a: np.ndarray, rows: int) -> np.ndarray:
    return np.pad(a, ((0, (-a.shape[0]) % rows), (0, 0)))


def kept_rows(x: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """The rows of ``x`` that the keep mask keeps (all of them without a mask), in order."""
    x = np.asarray(x)
    if keep is None:
        return x
    mask = np.asarray(keep)
    if mask.dtype != np.bool_ or mask.shape != (x.shape[0],):
        raise ValueError(f"keep mask must be bool with one entry per token ({x.shape[0]}), "
                         f"got dtype {mask.dtype} and shape {mask.shape}")
    return x[mask]


def sums_to_tiles(acc: np.ndarray, tokens: int, channels: int) -> np.ndarray:
    """Group sums ``(M, N, G)`` as the hardware emits them: ``tokens × channels`` tiles ordered by token
    tile, channel tile, group (edges padded with zeros)."""
    m_pad, n_pad = -acc.shape[0] % tokens, -acc.shape[1] % channels
    acc = np.pad(np.asarray(acc, np.int64), ((0, m_pad), (0, n_pad), (0, 0)))
    mt, nt, g = acc.shape[0] // tokens, acc.shape[1] // channels, acc.shape[2]
    # (mt, tokens, nt, channels, g) -> (mt, nt, g, tokens, channels)
    return acc.reshape(mt, tokens, nt, channels, g).transpose(0, 2, 4, 1, 3).reshape(-1, tokens, channels)


def tiles_to_sums(tiles: np.ndarray, m_tiles: int, n_tiles: int, groups: int) -> np.ndarray:
    """Inverse of :func:`sums_to_tiles`: ``(m_tiles·tokens, n_tiles·channels, groups)``, padding kept."""
    t, c = tiles.shape[-2:]
    return tiles.reshape(m_tiles, n_tiles, groups, t, c).transpose(0, 3, 1, 4, 2).reshape(m_tiles * t, n_tiles * c,
                                                                                          groups)


def words_to_outputs(words: np.ndarray, m_tiles: int, n_tiles: int, tokens: int, channels: int) -> np.ndarray:
    """Inverse of the requantized word order of :func:`requant_schedule`: ``(m_tiles·tokens, n_tiles·channels)``."""
    return (np.asarray(words).reshape(m_tiles, n_tiles, tokens, channels).transpose(0, 2, 1, 3)
            .reshape(m_tiles * tokens, n_tiles * channels))


def expected_tiles(x_kept: np.ndarray, w: np.ndarray, group_size: int, a_bits: int, tokens: int,
                   channels: int) -> np.ndarray:
    """Golden group sums in the order the hardware emits them: token tile, channel tile, group."""
    return sums_to_tiles(golden.group_accumulators(x_kept, w, group_size, x_bits=a_bits), tokens, channels)


def array_schedule(x: np.ndarray, w: np.ndarray, group_size: int, a_bits: int, tokens: int,
                   channels: int, keep: np.ndarray | None = None) -> ArraySchedule:
    """Beats and expected outputs for ``x @ w.T`` (rows dropped by ``keep`` are never sent)."""
    x_kept = kept_rows(x, keep)
    expected = expected_tiles(x_kept, w, group_size, a_bits, tokens, channels)
    xs, ws = _pad(x_kept, tokens), _pad(np.asarray(w), channels)
    k = xs.shape[1]
    beats = golden.trip_beats(xs, a_bits)
    passes = len(beats)
    rows = []
    for m0 in range(0, xs.shape[0], tokens):
        for n0 in range(0, ws.shape[0], channels):
            # one tile: k-major, beats within k; (k·passes + p) indexes the beat
            a = np.stack([b.nibbles[m0:m0 + tokens].T for b in beats], axis=1).reshape(k * passes, tokens)
            wt = np.repeat(ws[n0:n0 + channels].T, passes, axis=0)
            flags = np.array([[b.hi, b.lo] for b in beats] * k, dtype=np.int64)
            last = np.zeros((k * passes, 1), dtype=np.int64)
            last[group_size * passes - 1::group_size * passes] = 1
            rows.append(np.concatenate([a, wt, flags, last], axis=1))
    return ArraySchedule(np.concatenate(rows) if rows else np.zeros((0, tokens + channels + 3), np.int64),
                         expected, len(rows))


@dataclass(frozen=True)
class RequantSchedule:
    beats: np.ndarray       # (n_beats, 3·lanes + 2): acc lanes, wmul lanes, tmul lanes, first, last
    expected: np.ndarray    # (n_words, lanes): the requantized tile, chunk by chunk
    chunks: int


def requant_schedule(acc: np.ndarray, wmul: np.ndarray, tmul: np.ndarray, shift: int, out_bits: int, *,
                     tokens: int, channels: int, lanes: int, acc_bits: int, mult_bits: int) -> RequantSchedule:
    """Beats of :class:`hw.rtl.requant.Requant` for group sums ``acc (M, N, G)``, in the array's tile order.

    Each ``tokens × channels`` tile (token-major, padded with zero sums and
    zero multipliers) is cut into ``chunks = tokens·channels / lanes`` beats per
    group; the expected words come from :func:`golden.requant.requantize`.
    """
    if (tokens * channels) % lanes:
        raise ValueError(f"{lanes} lanes do not divide a {tokens}×{channels} tile")
    chunks = tokens * channels // lanes
    expected = golden.requantize(acc, wmul, tmul, shift, out_bits, acc_bits=acc_bits, mult_bits=mult_bits)
    m_pad, n_pad = -acc.shape[0] % tokens, -acc.shape[1] % channels
    acc = np.pad(np.asarray(acc, np.int64), ((0, m_pad), (0, n_pad), (0, 0)))
    wmul = np.pad(np.asarray(wmul, np.int64), ((0, n_pad), (0, 0)))
    tmul = np.pad(np.asarray(tmul, np.int64).reshape(-1), (0, m_pad))
    expected = np.pad(expected.astype(np.int64), ((0, m_pad), (0, n_pad)))
    mt, nt, g = acc.shape[0] // tokens, acc.shape[1] // channels, acc.shape[2]
    shape = (mt, nt, g, chunks, lanes)
    # every array to (token tile, channel tile, group, token lane, channel lane), then cut into chunks
    acc_t = acc.reshape(mt, tokens, nt, channels, g).transpose(0, 2, 4, 1, 3).reshape(shape)
    wmul_t = np.broadcast_to(wmul.reshape(1, nt, channels, g).transpose(0, 1, 3, 2)[:, :, :, None, :],
                             (mt, nt, g, tokens, channels)).reshape(shape)
    tmul_t = np.broadcast_to(tmul.reshape(mt, 1, 1, tokens, 1), (mt, nt, g, tokens, channels)).reshape(shape)
    first = np.broadcast_to((np.arange(g) == 0).reshape(1, 1, g, 1, 1), (mt, nt, g, chunks, 1))
    last = np.broadcast_to((np.arange(g) == g - 1).reshape(1, 1, g, 1, 1), (mt, nt, g, chunks, 1))
    beats = np.concatenate([acc_t, wmul_t, tmul_t, first, last], axis=-1).reshape(-1, 3 * lanes + 2)
    words = expected.reshape(mt, tokens, nt, channels).transpose(0, 2, 1, 3).reshape(-1, lanes)
    return RequantSchedule(beats.astype(np.int64), words, chunks)
