"""Host side of :class:`hw.trip_core.TripCore`: turn one quantized matmul into register writes and streams.

:func:`prepare_run` checks everything the hardware cannot hold *before*
anything is sent (bits, shapes, keep mask, buffer and accumulator limits,
value ranges) and raises ``ValueError``/``OverflowError`` naming the limit.
Pruned tokens are dropped here (the keep mask), so the core never spends a
beat on them.  The coroutines below drive a cocotb DUT of the core.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import golden
from hw.rtl.trip_sequencer import MAX_TILES, REGS

from .trip_schedule import _pad, expected_tiles, kept_rows, requant_schedule

__all__ = ["CoreLimits", "TripRun", "prepare_run", "read_reg", "scale_words", "start_and_wait", "write_reg"]


@dataclass(frozen=True)
class CoreLimits:
    tokens: int
    channels: int
    max_k: int          # longest group (accumulator width)
    max_k_total: int    # activation buffer depth
    requant_lanes: int | None = None    # outputs per result word when the core requantizes
    max_groups: int | None = None       # most groups per requantized output
    acc_bits: int = 32                  # the group sums' width (what the requantizer assumes)
    max_tiles: int = MAX_TILES          # most token tiles and most channel tiles of one run

    @classmethod
    def of(cls, core) -> "CoreLimits":
        rq = core.requant
        return cls(core.tokens, core.channels, core.max_k, core.max_k_total, rq and rq.lanes,
                   rq and rq.max_groups, core.array.acc_bits, core.max_tiles)


@dataclass(frozen=True)
class TripRun:
    registers: dict[str, int]
    act_words: np.ndarray       # (M_TILES·K, tokens) int8 lanes, token tile after token tile
    weight_words: np.ndarray    # (M_TILES·N_TILES·K, channels) int4 lanes
    expected: np.ndarray | None  # group sums (outputs, tokens, channels) or requantized words (words, lanes)
    m_kept: int
    scale_words: np.ndarray | None = None   # (M_TILES·N_TILES·G, channels + tokens): wmul lanes, tmul lanes


def prepare_run(x: np.ndarray, w: np.ndarray, *, group_size: int, a_bits: int, limits: CoreLimits,
                keep: np.ndarray | None = None, requant: golden.RequantParams | None = None,
                with_expected: bool = True) -> TripRun:
    """Everything one run of ``x @ w.T`` sends to the core, and the golden outputs it must return.

    ``requant`` (for a core built with ``requant_lanes``, and only then) holds the
    output stage's integers: ``wmul (N, K/group_size)`` and ``tmul`` with one
    multiplier per *kept* token.  ``with_expected=False`` skips computing the golden outputs
    (``expected`` is then ``None``): a host that runs the layer on a board needs only the streams.
    """
    if a_bits not in golden.trip.A_BITS:
        raise ValueError(f"activation bits must be 4 or 8, not {a_bits!r}")
    x = golden.check_int(x, a_bits, name="activations")
    w = golden.check_int(w, 4, name="weights")
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"shape mismatch: activations must be (M, K) and weights (N, K) with the same K, "
                         f"got {x.shape} and {w.shape}")
    k = x.shape[1]
    if k > limits.max_k_total:
        raise ValueError(f"K = {k} does not fit the core's activation buffer of {limits.max_k_total} words")
    if not isinstance(group_size, (int, np.integer)) or group_size < 1 or k % group_size:
        raise ValueError(f"group size {group_size} does not divide K = {k}")
    if group_size > limits.max_k:
        raise ValueError(f"group size {group_size} exceeds the core's accumulator limit max_k = {limits.max_k}")
    x_kept = kept_rows(x, keep)
    m_tiles = math.ceil(x_kept.shape[0] / limits.tokens)
    n_tiles = math.ceil(w.shape[0] / limits.channels)
    if max(m_tiles, n_tiles) > limits.max_tiles:
        raise ValueError(f"{m_tiles} token tiles × {n_tiles} channel tiles: one run takes at most "
                         f"{limits.max_tiles} of each; split the layer")
    xs, ws = _pad(x_kept, limits.tokens), _pad(w, limits.channels)
    act = xs.reshape(m_tiles, limits.tokens, k).transpose(0, 2, 1).reshape(-1, limits.tokens)
    wt = ws.reshape(n_tiles, limits.channels, k).transpose(0, 2, 1)              # (n_tiles, K, channels)
    weights = np.tile(wt.reshape(-1, limits.channels), (m_tiles, 1))
    regs = {"K": k, "GROUP": int(group_size), "M_TILES": m_tiles, "N_TILES": n_tiles, "A_BITS": a_bits}
    if (requant is None) != (limits.requant_lanes is None):
        raise ValueError("requantization parameters are needed exactly when the core requantizes "
                         f"(this core: requant_lanes = {limits.requant_lanes})")
    if requant is None:
        expected = (expected_tiles(x_kept, w, group_size, a_bits, limits.tokens, limits.channels)
                    if with_expected else None)
        return TripRun(regs, act, weights, expected, x_kept.shape[0])
    groups = k // group_size
    if groups > limits.max_groups:
        raise ValueError(f"K / group size = {groups} groups exceeds the requantizer's max_groups = "
                         f"{limits.max_groups}")
    wmul, tmul = np.asarray(requant.wmul), np.asarray(requant.tmul).reshape(-1)
    if wmul.shape != (w.shape[0], groups) or tmul.shape != (x_kept.shape[0],):
        raise ValueError(f"requantization multipliers must be wmul ({w.shape[0]}, {groups}) and tmul "
                         f"({x_kept.shape[0]},) for the kept tokens; got {wmul.shape} and {tmul.shape}")
    expected = None
    if with_expected:
        acc = golden.group_accumulators(x_kept, w, group_size, x_bits=a_bits)
        expected = requant_schedule(acc, wmul, tmul, requant.shift, requant.out_bits, tokens=limits.tokens,
                                    channels=limits.channels, lanes=limits.requant_lanes,
                                    acc_bits=limits.acc_bits, mult_bits=requant.mult_bits).expected
    regs |= {"SHIFT": int(requant.shift), "OUT_BITS": int(requant.out_bits)}
    return TripRun(regs, act, weights, expected, x_kept.shape[0],
                   scale_words(wmul, tmul, limits.tokens, limits.channels))


def scale_words(wmul: np.ndarray, tmul: np.ndarray, tokens: int, channels: int) -> np.ndarray:
    """The ``scales`` stream: for every (token tile, channel tile, group), the group's channel multipliers
    and the tile's token multipliers (zero for padding, which then requantizes to 0)."""
    wm = _pad(np.asarray(wmul, np.int64), channels)
    tm = np.pad(np.asarray(tmul, np.int64), (0, -len(tmul) % tokens))
    mt, nt, g = len(tm) // tokens, wm.shape[0] // channels, wm.shape[1]
    w_part = np.broadcast_to(wm.reshape(1, nt, channels, g).transpose(0, 1, 3, 2), (mt, nt, g, channels))
    t_part = np.broadcast_to(tm.reshape(mt, 1, 1, tokens), (mt, nt, g, tokens))
    return np.concatenate([w_part, t_part], axis=-1).reshape(-1, channels + tokens)


async def write_reg(dut, name: str, value: int) -> None:
    from cocotb.triggers import FallingEdge
    dut.regs__addr.value = REGS[name]
    dut.regs__wdata.value = value
    dut.regs__we.value = 1
    await FallingEdge(dut.clk)
    dut.regs__we.value = 0


async def read_reg(dut, name: str) -> int:
    from cocotb.triggers import FallingEdge, ReadOnly
    dut.regs__addr.value = REGS[name]
    await ReadOnly()
    value = int(dut.regs__rdata.value)
    await FallingEdge(dut.clk)
    return value


async def start_and_wait(dut, registers: dict[str, int], timeout_cycles: int) -> dict[str, int]:
    """Write the shape registers, start, and poll until done; returns CTRL, CYCLES and ERROR."""
    for name, value in registers.items():
        await write_reg(dut, name, value)
    await write_reg(dut, "CTRL", 1)
    for _ in range(timeout_cycles):
        ctrl = await read_reg(dut, "CTRL")
        if ctrl & 2:
            return {"CTRL": ctrl, "CYCLES": await read_reg(dut, "CYCLES"), "ERROR": await read_reg(dut, "ERROR")}
    raise TimeoutError(f"the core did not finish within {timeout_cycles} cycles (registers {registers})")
