"""cocotb bench for :class:`hw.trip_core.TripCore`: whole runs through registers and streams.

Configuration: ``"params"`` (constructor arguments), ``"cases"`` (matmul runs:
``{m, k, n, group, a_bits, kind, seed, keep, idle, stall}`` or
``{"layer": path}`` for a real exported layer written by the test as ``.npz``;
a core with ``requant_lanes`` also needs ``"out_bits"`` and ``"mult"``
(``random`` or ``max`` multipliers) or the layer file's ``wmul``/``tmul``/``shift``),
and ``"bad"`` (raw register sets the driver would refuse, each with the
error code the hardware must flag).  Every output of every run is compared
with the golden group sums; full-rate runs also report the hardware's CYCLES
register next to :func:`sim.cycle_model.core_cycles`.
"""
from __future__ import annotations

import json
import time

import cocotb
import numpy as np

import golden
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, SimTimeoutError, with_timeout

from hw.trip_core import TripCore
from sim.cycle_model import core_cycles
from sim.drivers import StreamSink, StreamSource, decode, encode
from sim.runner import bench_config
from sim.stimulus import matmul_operands, spread_shift
from sim.trip_driver import CoreLimits, prepare_run, start_and_wait
from sim.trip_schedule import kept_rows


async def reset(dut) -> None:
    for sig in (dut.act__valid, dut.weights__valid, dut.results__ready, dut.regs__we):
        sig.value = 0
    if hasattr(dut, "scales__valid"):
        dut.scales__valid.value = 0
    dut.rst.value = 1
    for _ in range(2):
        await FallingEdge(dut.clk)
    dut.rst.value = 0


def operands(case: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    if "layer" in case:
        z = np.load(case["layer"])
        return z["x"], z["w"], z["keep"] if "keep" in z else None
    x, w = matmul_operands(case["kind"], case["m"], case["k"], case["n"], case["a_bits"], seed=case["seed"])
    keep = None
    if case.get("keep") is not None:
        keep = np.random.default_rng(case["seed"] + 1).random(case["m"]) < case["keep"]
    return x, w, keep


def requant_params(case: dict, x_kept: np.ndarray, w: np.ndarray, a_bits: int) -> golden.RequantParams:
    """The case's output-stage integers: from the layer file, or random/extreme multipliers with a
    shift that spreads the outputs over the range."""
    if "layer" in case:
        z = np.load(case["layer"])
        return golden.RequantParams(z["wmul"], z["tmul"], int(z["shift"]), case["out_bits"])
    groups, top = w.shape[1] // case["group"], (1 << golden.requant.MULT_BITS) - 1
    if case["mult"] == "max":
        return golden.RequantParams(np.full((w.shape[0], groups), top), np.full(x_kept.shape[0], top), 1,
                                    case["out_bits"])
    rng = np.random.default_rng(case["seed"] + 2)
    wmul, tmul = rng.integers(1, top + 1, (w.shape[0], groups)), rng.integers(1, top + 1, x_kept.shape[0])
    acc = golden.group_accumulators(x_kept, w, case["group"], x_bits=a_bits)
    return golden.RequantParams(wmul, tmul, spread_shift(acc, wmul, tmul, case["out_bits"]), case["out_bits"])


@cocotb.test()
async def trip_core(dut):
    cfg = bench_config()
    core = TripCore(**cfg["params"])
    limits = CoreLimits.of(core)
    Clock(dut.clk, 10, unit="ns").start()
    await reset(dut)
    results = []
    for n, case in enumerate(cfg["cases"]):
        x, w, keep = operands(case)
        rq = None
        if core.requant:
            rq = requant_params(case, kept_rows(x, keep), w, case["a_bits"])
        run = prepare_run(x, w, group_size=case["group"], a_bits=case["a_bits"], limits=limits, keep=keep,
                          requant=rq)
        idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
        if run.m_kept == 0:         # every token pruned: nothing to compute, the core is not started
            assert run.expected.size == 0
            results.append({**case, "outputs": 0, "cycles": 0, "predicted": 0, "full_rate": True,
                            "m_kept": 0, "seconds": 0.0, "max_abs": 0, "clamped": 0})
            continue
        act = StreamSource(dut.clk, dut.act__payload, dut.act__valid, dut.act__ready, idle=idle, seed=n)
        wts = StreamSource(dut.clk, dut.weights__payload, dut.weights__valid, dut.weights__ready, idle=idle,
                           seed=n + 7)
        sink = StreamSink(dut.clk, dut.results__payload, dut.results__valid, dut.results__ready, stall=stall,
                          seed=n + 13)
        t0 = time.perf_counter()
        budget = 8 * (len(run.act_words) + 2 * len(run.weight_words)) + 1000
        tasks = [cocotb.start_soon(act.send(encode(core.sequencer.act_layout, run.act_words))),
                 cocotb.start_soon(wts.send(encode(core.sequencer.weight_layout, run.weight_words))),
                 cocotb.start_soon(sink.run(len(run.expected), timeout_cycles=budget))]
        if core.requant:
            scales = StreamSource(dut.clk, dut.scales__payload, dut.scales__valid, dut.scales__ready, idle=idle,
                                  seed=n + 19)
            tasks.append(cocotb.start_soon(scales.send(encode(core.requant.scales_layout, run.scale_words))))
        status = await start_and_wait(dut, run.registers, budget)
        for task in tasks:          # a core that is done but left input words untaken must fail, not hang
            try:
                await with_timeout(task, 10 * budget, "ns")
            except SimTimeoutError:
                raise AssertionError(f"case {case}: the core reported done, but a stream's words were not all "
                                     f"taken (or results not all sent) within {budget} cycles") from None
        seconds = time.perf_counter() - t0
        await FallingEdge(dut.clk)
        dut.results__ready.value = 0
        assert status["ERROR"] == 0, f"case {case}: the core refused a valid run (error {status['ERROR']})"
        got = decode(core.result_layout, sink.words).reshape(run.expected.shape)
        bad = np.argwhere(got != run.expected)
        if len(bad):
            where = tuple(int(v) for v in bad[0])
            raise AssertionError(f"case {case}: {len(bad)} outputs differ from golden; first at (word, lanes…) "
                                 f"{where}: got {got[where]}, expected {run.expected[where]}")
        predicted = core_cycles(m_kept=run.m_kept, k=x.shape[1], n=w.shape[0], group=case["group"],
                                a_bits=case["a_bits"], tokens=core.tokens, channels=core.channels,
                                latency=core.latency, requant_chunks=core.requant and core.requant.chunks,
                                handover=core.array.handover)
        results.append({**case, "outputs": len(run.expected), "cycles": status["CYCLES"], "predicted": predicted,
                        "full_rate": not idle and not stall, "m_kept": run.m_kept, "seconds": seconds,
                        "max_abs": int(np.abs(run.expected).max()) if run.expected.size else 0,
                        "clamped": int(np.isin(run.expected, golden.int_range(rq.out_bits)).sum()) if rq else 0})
    flagged = []
    for bad in cfg.get("bad", []):
        status = await start_and_wait(dut, bad["registers"], 10_000)
        assert status["ERROR"] == bad["error"], f"{bad}: the core flagged error {status['ERROR']}"
        assert int(dut.act__ready.value) == 0 and int(dut.weights__ready.value) == 0
        flagged.append(status["ERROR"])
    with open(cfg["report"], "w") as f:
        json.dump({"cases": results, "flagged": flagged, "mismatches": 0}, f)
    dut._log.info("trip_core %s: %d runs bit-exact, %d malformed commands flagged", cfg["params"], len(results),
                  len(flagged))
