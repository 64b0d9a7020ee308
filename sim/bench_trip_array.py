"""cocotb bench for :class:`hw.rtl.trip_array.TripArray`, checked against :func:`golden.group_accumulators`.

Configuration (from :func:`sim.runner.cosim`): the component's constructor
arguments under ``"params"`` and a list of ``"cases"``, each
``{m, k, n, group, a_bits, kind, seed, keep, idle, stall, shuffle}``.  Every case is
scheduled by :func:`sim.trip_schedule.array_schedule`, streamed with random
input bubbles (``idle``) and output back-pressure (``stall``), and every
accumulator of every output tile is compared with the golden oracle.  Cases
without bubbles or stalls also check the cycle count against
:func:`sim.cycle_model.array_cycles`, which must be exact there.  An array
with ``drain_lanes`` is read the way :class:`~hw.rtl.tile_requant.TileRequant`
reads it (:class:`DrainSink`), and its cycles are left to the core's bench,
where the requantizer sets the drain's pace.
"""
from __future__ import annotations

import dataclasses
import json
import random
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from hw.rtl.trip_array import TripArray
from sim.cycle_model import array_cycles
from sim.drivers import StreamSink, StreamSource, assert_latency, decode, encode, expect_no_more_outputs, \
    reset_stream_dut
from sim.runner import bench_config
from sim.stimulus import matmul_operands
from sim.trip_schedule import array_schedule


def shuffled_within_groups(beats: np.ndarray, seed: int) -> np.ndarray:
    """The beats of every group in a random order, the group's ``last`` flag (the final column) on its new
    final beat: the same sums, since each beat's term stands alone, but a lo beat no longer follows the hi
    beat of its own k (a side band one beat out of step with the products is then caught)."""
    rng = np.random.default_rng(seed)
    out, start = beats.copy(), 0
    for end in np.flatnonzero(beats[:, -1] == 1):
        group = beats[start:end + 1][rng.permutation(end + 1 - start)]
        group[:, -1] = 0
        group[-1, -1] = 1
        out[start:end + 1] = group
        start = end + 1
    return out


class DrainSink:
    """Takes each tile ``drain_lanes`` sums at a time, as the requantizer does: reads the first
    ``drain_lanes`` places, drains, and takes the tile with its last chunk.  ``stall`` is the probability
    of a cycle with neither.  ``words`` are the tiles as read, chunk by chunk; ``cycles`` when each was taken."""

    def __init__(self, dut, model: TripArray, *, stall: float = 0.0, seed: int = 1):
        self.dut, self.stall, self.rng = dut, stall, random.Random(seed)
        self.chunk_bits = model.drain_lanes * model.acc_bits
        self.chunks = model.tokens * model.channels // model.drain_lanes
        self.words: list[int] = []
        self.cycles: list[int] = []

    async def run(self, count: int, timeout_cycles: int) -> None:
        chunks: list[int] = []
        for cycle in range(timeout_cycles):
            # o.valid and o.payload are registers: settled at the falling edge, where this writes its answer
            await FallingEdge(self.dut.clk)
            read = bool(self.dut.o__valid.value) and not (self.stall and self.rng.random() < self.stall)
            if read:
                chunks.append(int(self.dut.o__payload.value) & ((1 << self.chunk_bits) - 1))
            last = read and len(chunks) == self.chunks
            self.dut.drain.value = int(read and not last)
            self.dut.o__ready.value = int(last)
            if last:
                self.words.append(sum(c << (n * self.chunk_bits) for n, c in enumerate(chunks)))
                self.cycles.append(cycle)
                chunks = []
                if len(self.words) == count:
                    return
        raise TimeoutError(f"drain sink got {len(self.words)} of {count} tiles in {timeout_cycles} cycles")


@cocotb.test()
async def trip_array(dut):
    cfg = bench_config()
    model = TripArray(**cfg["params"])
    Clock(dut.clk, 10, unit="ns").start()
    draining = model.drain_lanes is not None
    if draining:
        dut.drain.value = 0
    await reset_stream_dut(dut)
    results = []
    for n, case in enumerate(cfg["cases"]):
        x, w = matmul_operands(case["kind"], case["m"], case["k"], case["n"], case["a_bits"], seed=case["seed"])
        keep = None
        if case.get("keep") is not None:
            keep = np.random.default_rng(case["seed"] + 1).random(case["m"]) < case["keep"]
        sched = array_schedule(x, w, case["group"], case["a_bits"], model.tokens, model.channels, keep)
        if case.get("shuffle"):
            sched = dataclasses.replace(sched, beats=shuffled_within_groups(sched.beats, case["seed"] + 2))
        idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
        if case.get("reset_mid_group"):
            # Half-accumulate the first group, let it reach the accumulators, reset: the case that follows
            # must start from zero sums, whatever the reset interrupted.
            first_last = int(np.argmax(sched.beats[:, -1] == 1))
            assert first_last > 0, f"case {case}: a one-beat group has no middle to reset in"
            half = StreamSource(dut.clk, dut.i__payload, dut.i__valid, dut.i__ready)
            await half.send(encode(model.beat_layout, sched.beats[:first_last // 2 + 1]))
            for _ in range(model.latency + 2):
                await FallingEdge(dut.clk)
            await reset_stream_dut(dut)
        source = StreamSource(dut.clk, dut.i__payload, dut.i__valid, dut.i__ready, idle=idle, seed=n)
        if draining:
            sink = DrainSink(dut, model, stall=stall, seed=n + 1)
            timeout = 8 * (len(sched.beats) + len(sched.expected) * sink.chunks) + 100
        else:
            sink = StreamSink(dut.clk, dut.o__payload, dut.o__valid, dut.o__ready, stall=stall, seed=n + 1)
            timeout = 8 * len(sched.beats) + 100
        t0 = time.perf_counter()
        if len(sched.expected):
            collector = cocotb.start_soon(sink.run(len(sched.expected), timeout_cycles=timeout))
            await source.send(encode(model.beat_layout, sched.beats))
            await collector
        else:           # every token pruned: nothing is sent and nothing may come out
            await FallingEdge(dut.clk)
        seconds = time.perf_counter() - t0
        await expect_no_more_outputs(dut, model.latency + 2, f"case {case}")     # drain; nothing extra
        got = decode(model.out_layout, sink.words).reshape(sched.expected.shape)
        bad = np.argwhere(got != sched.expected)
        if len(bad):
            o, t, c = (int(v) for v in bad[0])
            raise AssertionError(f"case {case}: {len(bad)} accumulators differ from golden; first in output "
                                 f"{o} token lane {t} channel lane {c}: got {got[o, t, c]}, "
                                 f"expected {sched.expected[o, t, c]}")
        cycles = sink.cycles[-1] + 1 if sink.cycles else 0
        if not idle and not stall and len(sched.expected) and not draining:
            predicted = array_cycles(len(sched.beats), model.latency)
            assert cycles == predicted, f"case {case}: {cycles} cycles, the cycle model says {predicted}"
            assert_latency(source, sink, sched.beats[:, -1] == 1, model.latency)
        results.append({**case, "beats": len(sched.beats), "outputs": len(sched.expected), "cycles": cycles,
                        "max_abs": int(np.abs(sched.expected).max()) if sched.expected.size else 0,
                        "seconds": seconds})
    with open(cfg["report"], "w") as f:
        json.dump({"cases": results, "mismatches": 0}, f)
    dut._log.info("trip_array %s: %d cases bit-exact", cfg["params"], len(results))
