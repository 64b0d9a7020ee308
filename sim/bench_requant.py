"""cocotb bench for :class:`hw.rtl.requant.Requant`, checked against :func:`golden.requantize`.

Configuration (from :func:`sim.runner.cosim`): the constructor arguments under
``"params"``, the tile shape (``"tokens"``, ``"channels"``) and a list of
``"cases"``.  A case is either synthetic, ``{m, n, groups, kind, out_bits,
seed, idle, stall}`` (:func:`sim.stimulus.requant_operands`), or a real
layer, ``{layer: path.npz, out_bits, ...}`` holding ``acc``, ``wmul``,
``tmul`` and ``shift``.  Every output word is compared with the golden
function; cases without bubbles or stalls also check the 4-cycle latency of
each finished chunk.
"""
from __future__ import annotations

import json
import time

import cocotb
import numpy as np
from cocotb.clock import Clock

import golden
from hw.rtl.requant import Requant
from sim.drivers import StreamSink, StreamSource, assert_latency, decode, encode, expect_no_more_outputs, \
    reset_stream_dut
from sim.runner import bench_config
from sim.stimulus import requant_operands
from sim.trip_schedule import requant_schedule


def operands(case: dict, model: Requant) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    if "layer" in case:
        z = np.load(case["layer"])
        return z["acc"], z["wmul"], z["tmul"], int(z["shift"])
    return requant_operands(case["kind"], case["m"], case["n"], case["groups"], acc_bits=model.acc_bits,
                            mult_bits=model.mult_bits, out_bits=case["out_bits"], seed=case["seed"])


@cocotb.test()
async def requant(dut):
    cfg = bench_config()
    model = Requant(**cfg["params"])
    Clock(dut.clk, 10, unit="ns").start()
    await reset_stream_dut(dut)
    results = []
    for n, case in enumerate(cfg["cases"]):
        acc, wmul, tmul, shift = operands(case, model)
        sched = requant_schedule(acc, wmul, tmul, shift, case["out_bits"], tokens=cfg["tokens"],
                                 channels=cfg["channels"], lanes=model.lanes, acc_bits=model.acc_bits,
                                 mult_bits=model.mult_bits)
        dut.shift.value = shift
        dut.out_bits8.value = int(case["out_bits"] == 8)
        idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
        source = StreamSource(dut.clk, dut.i__payload, dut.i__valid, dut.i__ready, idle=idle, seed=n)
        sink = StreamSink(dut.clk, dut.o__payload, dut.o__valid, dut.o__ready, stall=stall, seed=n + 1)
        t0 = time.perf_counter()
        collector = cocotb.start_soon(sink.run(len(sched.expected), timeout_cycles=8 * len(sched.beats) + 100))
        await source.send(encode(model.in_layout, sched.beats))
        await collector
        seconds = time.perf_counter() - t0
        await expect_no_more_outputs(dut, model.LATENCY + 2, f"case {case}")
        got = decode(model.out_layout, sink.words)
        bad = np.argwhere(got != sched.expected)
        if len(bad):
            w, l = (int(v) for v in bad[0])
            raise AssertionError(f"case {case}: {len(bad)} outputs differ from golden; first word {w} lane {l}: "
                                 f"got {got[w, l]}, expected {sched.expected[w, l]}")
        if not idle and not stall:
            assert_latency(source, sink, sched.beats[:, -1] == 1, model.LATENCY)
        clamped = int(np.isin(got, golden.int_range(case["out_bits"])).sum())
        results.append({**case, "beats": len(sched.beats), "words": len(sched.expected), "shift": shift,
                        "clamped": clamped, "outputs": int(got.size), "seconds": seconds})
    with open(cfg["report"], "w") as f:
        json.dump({"cases": results, "mismatches": 0}, f)
    dut._log.info("requant %s: %d cases bit-exact", cfg["params"], len(results))
