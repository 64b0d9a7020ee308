"""Cycle model of the TRIP datapath: how many clock cycles a layer takes, from its shape alone.

Every prediction here is checked against the RTL's own cycles in the cocotb
benches (exactly where the bench drives at full rate).
"""
from __future__ import annotations

import math

__all__ = ["array_beats", "array_cycles", "core_cycles"]


def array_beats(m_kept: int, k: int, n: int, a_bits: int, tokens: int, channels: int) -> int:
    """Beats one matmul sends to a ``tokens × channels`` array: every tile runs every k, A8 twice."""
    if a_bits not in (4, 8):
        raise ValueError(f"activation bits must be 4 or 8, not {a_bits!r}")
    passes = 2 if a_bits == 8 else 1
    return math.ceil(m_kept / tokens) * math.ceil(n / channels) * k * passes


def array_cycles(beats: int, latency: int) -> int:
    """Cycles from the first beat's acceptance to the last output, with beats at full rate and
    a consumer that keeps up: one beat per cycle plus the pipeline's latency."""
    return beats + latency if beats else 0


def core_cycles(*, m_kept: int, k: int, n: int, group: int, a_bits: int, tokens: int, channels: int,
                latency: int) -> int:
    """CYCLES register of :class:`hw.trip_core.TripCore` for one run at full stream rate.

    start (1) + divisibility check (K/GROUP + 1) + per token tile: buffer load (K)
    and every beat of every channel tile (N_TILES·K·passes) and one hand-over
    cycle + the array's latency and the drain handshake (1).
    """
    m_tiles = math.ceil(m_kept / tokens)
    if m_tiles == 0:
        return 0            # every token pruned: the host does not start the core at all
    beats_per_tile = array_beats(tokens, k, n, a_bits, tokens, channels)
    return 1 + (k // group + 1) + m_tiles * (k + beats_per_tile + 1) + latency + 1
