"""cocotb bench for :class:`hw.rtl.simd_mul4.SimdMul4`, checked against :func:`golden.simd_mul4`.

Configuration (from :func:`sim.runner.cosim`): the component's constructor
arguments under ``"params"``, plus ``"random_count"``, ``"seed"``, ``"idle"``
(probability of an input bubble) and ``"stall"`` (probability that ``en`` is low
in a cycle, freezing the whole pipeline).  The bench streams every vector from
:func:`sim.stimulus.int4_vectors`, collects every output, compares all of them
with the golden function and checks the documented latency on each output.
"""
from __future__ import annotations

import json
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

import golden
from hw.rtl.simd_mul4 import SimdMul4
from sim.drivers import StreamSink, StreamSource, assert_latency, decode, encode, reset_stream_dut
from sim.runner import bench_config
from sim.stimulus import int4_vectors


@cocotb.test()
async def simd_mul4(dut):
    cfg = bench_config()
    params = cfg["params"]
    model = SimdMul4(**params)          # same layouts as the Verilog under test
    lay = model.layout
    rows, kind = int4_vectors(lay.a_lanes + lay.w_lanes, group=lay.acc_depth,
                              random_count=cfg.get("random_count", 100_000), seed=cfg.get("seed", 0))
    a, w = rows[:, :lay.a_lanes], rows[:, lay.a_lanes:]
    expected = golden.simd_mul4(a, w, lay.acc_depth)

    Clock(dut.clk, 10, unit="ns").start()
    dut.en.value = 1
    await reset_stream_dut(dut, out_ready=1)
    stall = cfg.get("stall", 0.0)
    if stall:
        cocotb.start_soon(_stall_randomly(dut, stall, cfg.get("seed", 0)))
    source = StreamSource(dut.clk, dut.i__payload, dut.i__valid, dut.i__ready,
                          idle=cfg.get("idle", 0.0), seed=cfg.get("seed", 0))
    sink = StreamSink(dut.clk, dut.o__payload, dut.o__valid, dut.o__ready)
    n_out = len(expected)
    t0 = time.perf_counter()
    collector = cocotb.start_soon(sink.run(n_out, timeout_cycles=4 * len(rows) + 100))
    await source.send(encode(model.in_layout, rows))
    await collector
    seconds = time.perf_counter() - t0

    got = decode(model.out_layout, sink.words).reshape(expected.shape)
    bad = np.argwhere((got != expected).any(axis=(1, 2))).ravel()
    if len(bad):
        g = int(bad[0])
        grp = slice(g * lay.acc_depth, (g + 1) * lay.acc_depth)
        raise AssertionError(
            f"{len(bad)} of {n_out} outputs differ from golden.simd_mul4; first at output {g}: "
            f"a={a[grp].tolist()} w={w[grp].tolist()} got={got[g].tolist()} expected={expected[g].tolist()}")
    if not stall:       # (stalled cycles do not count towards the latency)
        assert_latency(source, sink, np.arange(len(rows)) % lay.acc_depth == lay.acc_depth - 1, model.latency)

    cycles = sink.cycles[-1] + 1
    with open(cfg["report"], "w") as f:
        json.dump({"kind": kind, "vectors": len(rows), "outputs": n_out, "mismatches": 0,
                   "cycles": cycles, "seconds": seconds, "lanes": lay.lanes}, f)
    dut._log.info("simd_mul4 %s: %d vectors (%s), %d outputs bit-exact, %d cycles in %.2f s",
                  params, len(rows), kind, n_out, cycles, seconds)


async def _stall_randomly(dut, probability: float, seed: int) -> None:
    """Hold ``en`` low in a random ``probability`` share of the cycles, until the test ends."""
    rng = np.random.default_rng(seed + 1)
    while True:
        await FallingEdge(dut.clk)
        dut.en.value = int(rng.random() >= probability)
