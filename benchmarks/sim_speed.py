"""Simulated cycles per second of the same simd_mul4 bench on Verilator, Icarus and Amaranth's simulator.

All three run in one invocation on one machine and check every output against
``golden.simd_mul4``; the table prints their ratios.  Only the stimulus phase
is timed (not the Verilator C++ build, reported separately).

    python -m benchmarks.sim_speed [--vectors N]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from amaranth.sim import Simulator

import golden
from hw.rtl.simd_mul4 import SimdMul4
from sim.drivers import decode, encode
from sim.runner import cosim
from sim.stimulus import int4_vectors

PARAMS = dict(a_lanes=2, w_lanes=2, mul_width=18, latency=2)   # the ECP5 packing


def amaranth_cycles_per_second(vectors: int) -> tuple[float, int]:
    """Run ``vectors`` inputs through Amaranth's Python simulator; return (cycles/s, cycles)."""
    dut = SimdMul4(**PARAMS)
    rows = np.random.default_rng(0).integers(-8, 8, size=(vectors, 4))
    words = encode(dut.in_layout, rows)
    outputs: list[int] = []

    async def bench(ctx):
        payload, out = dut.i.payload.as_value(), dut.o.payload.as_value()
        ctx.set(dut.i.valid, 1)
        for word in words + [0] * dut.latency:
            ctx.set(payload, word)
            await ctx.tick()
            if ctx.get(dut.o.valid):
                outputs.append(ctx.get(out))
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    t0 = time.perf_counter()
    sim.run()
    seconds = time.perf_counter() - t0
    got = decode(dut.out_layout, outputs)[:vectors].reshape(vectors, 2, 2)
    assert np.array_equal(got, golden.simd_mul4(rows[:, :2], rows[:, 2:])), "Amaranth sim mismatch"
    cycles = len(words) + dut.latency
    return cycles / seconds, cycles


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vectors", type=int, default=20_000,
                    help="inputs for Amaranth's simulator (the HDL simulators run the full "
                         "exhaustive 2x2 bench, %d vectors)" % len(int4_vectors(4)[0]))
    args = ap.parse_args()
    rates = {}
    for sim in ("verilator", "icarus"):
        res = cosim(SimdMul4(**PARAMS), toplevel="simd_mul4", simulator=sim,
                    bench="sim.bench_simd_mul4", config={"params": PARAMS, "idle": 0.0})
        rates[sim] = (res.report["cycles"] / res.report["seconds"], res.report["cycles"], res.build_seconds)
    rate, cycles = amaranth_cycles_per_second(args.vectors)
    rates["amaranth (python)"] = (rate, cycles, 0.0)
    slowest = min(r for r, _, _ in rates.values())
    print(f"simd_mul4 {PARAMS}: every output checked against golden.simd_mul4\n")
    print(f"{'simulator':<20}{'cycles':>9}{'cycles/s':>12}{'vs slowest':>12}{'build s':>9}")
    for name, (r, c, b) in rates.items():
        print(f"{name:<20}{c:>9}{r:>12,.0f}{r / slowest:>11.1f}x{b:>9.1f}")
    print("\n(cocotb benches drive one Python coroutine per stream per cycle; Verilator's "
          "build is cached, so 'build s' is ~0 on a re-run)")


if __name__ == "__main__":
    main()
