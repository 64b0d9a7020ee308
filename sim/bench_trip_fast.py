"""Fast cocotb bench of a whole layer on :class:`sim.trip_harness.TripHarness` (memory preload).

Configuration: ``"params"`` (core), ``"depths"`` (harness memories) and
``"cases"`` as in :mod:`sim.bench_trip_core` (random shapes or ``{"layer":
npz}``).  Each case: load memories, start, one simulator wait for the modelled
cycle count, poll done, read every result back and compare all of them with
the golden group sums.  Reports load, run and read-back wall time separately.
"""
from __future__ import annotations

import json
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, Timer

from sim.bench_trip_core import operands
from sim.cycle_model import core_cycles
from sim.drivers import decode, encode
from sim.runner import bench_config
from sim.trip_driver import CoreLimits, prepare_run, read_reg, write_reg
from sim.trip_harness import TripHarness

PERIOD_NS = 10


async def load(dut, addr, data, en, words: list[int]) -> None:
    en.value = 1
    for i, word in enumerate(words):
        addr.value = i
        data.value = word
        await FallingEdge(dut.clk)
    en.value = 0


@cocotb.test()
async def trip_fast(dut):
    cfg = bench_config()
    harness = TripHarness(cfg["params"], **cfg["depths"])
    core = harness.core
    limits = CoreLimits.of(core)
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    for sig in (dut.regs__we, dut.act_load_en, dut.w_load_en, dut.go):
        sig.value = 0
    dut.rst.value = 1
    await FallingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    results = []
    for case in cfg["cases"]:
        x, w, keep = operands(case)
        run = prepare_run(x, w, group_size=case["group"], a_bits=case["a_bits"], limits=limits, keep=keep)
        sweep = len(run.weight_words) // run.registers["M_TILES"]      # one channel-tile sweep of weights
        if len(run.act_words) > harness.act_depth or sweep > harness.weight_depth \
                or len(run.expected) > harness.result_depth:
            raise ValueError(f"case {case.get('name', case)} does not fit the harness memories {cfg['depths']}")
        t0 = time.perf_counter()
        await load(dut, dut.act_load_addr, dut.act_load_data, dut.act_load_en,
                   encode(core.sequencer.act_layout, run.act_words))
        await load(dut, dut.w_load_addr, dut.w_load_data, dut.w_load_en,
                   encode(core.sequencer.weight_layout, run.weight_words[:sweep]))
        dut.act_words.value = len(run.act_words)
        dut.w_words.value = sweep
        dut.m_tiles.value = run.registers["M_TILES"]
        dut.go.value = 1
        await FallingEdge(dut.clk)
        dut.go.value = 0
        t1 = time.perf_counter()
        predicted = core_cycles(m_kept=run.m_kept, k=x.shape[1], n=w.shape[0], group=case["group"],
                                a_bits=case["a_bits"], tokens=core.tokens, channels=core.channels,
                                latency=core.latency)
        for name, value in run.registers.items():
            await write_reg(dut, name, value)
        await write_reg(dut, "CTRL", 1)
        await Timer(predicted * PERIOD_NS, unit="ns")           # one wait: no Python per cycle
        for _ in range(1000):
            ctrl = await read_reg(dut, "CTRL")
            if ctrl & 2:
                break
        else:
            raise TimeoutError(f"case {case.get('name', case)}: not done 1000 cycles after the model's {predicted}")
        cycles, error = await read_reg(dut, "CYCLES"), await read_reg(dut, "ERROR")
        assert error == 0, f"the core refused a valid run (error {error})"
        t2 = time.perf_counter()
        words = []
        for i in range(len(run.expected)):
            dut.res_addr.value = i
            await FallingEdge(dut.clk)
            await ReadOnly()
            words.append(int(dut.res_data.value))
            await FallingEdge(dut.clk)
        t3 = time.perf_counter()
        assert int(dut.res_count.value) == len(run.expected)
        got = decode(core.array.out_layout, words).reshape(run.expected.shape)
        bad = np.argwhere(got != run.expected)
        assert not len(bad), f"case {case.get('name', case)}: {len(bad)} accumulators differ from golden"
        results.append({**case, "m_kept": run.m_kept, "outputs": len(run.expected), "cycles": cycles,
                        "predicted": predicted, "load_s": t1 - t0, "run_s": t2 - t1, "read_s": t3 - t2})
    with open(cfg["report"], "w") as f:
        json.dump({"cases": results, "mismatches": 0}, f)
