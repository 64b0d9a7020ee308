"""TRIP datapath performance: utilisation, A8/A4 cost and pruning gain on OPT-125M-sized layers.

For each device-sized core (:func:`hw.sizes.core_params`) it prints, at 128
tokens, the cycles of 768×768, 768→3072 and 3072→768 layers at A4 and A8, with
and without 50% of tokens pruned, from :func:`sim.cycle_model.core_cycles`.
That model equals the RTL's CYCLES register on every full-rate bench run
(``tests/test_trip_core.py``, ``tests/test_trip_real_layer.py``); to show it
here too, the same run also co-simulates one smaller layer on Verilator and
prints measured against modelled cycles.

    python -m benchmarks.trip_perf [--skip-cosim]
"""
from __future__ import annotations

import argparse
import time

from hw.sizes import DEVICES, core_params
from hw.trip_core import TripCore
from sim.cycle_model import core_cycles, core_latency
from sim.runner import cosim

SHAPES = [(768, 768), (768, 3072), (3072, 768)]     # (K, N): OPT-125M attention and MLP layers
TOKENS = 128


def modelled(params: dict, m: int, k: int, n: int, a_bits: int) -> int:
    tokens, channels = params["rows"] * params["a_lanes"], params["cols"] * params["w_lanes"]
    return core_cycles(m_kept=m, k=k, n=n, group=128, a_bits=a_bits, tokens=tokens, channels=channels,
                       latency=core_latency(params))


def table() -> None:
    print(f"{'device':10} {'array':>8} {'MAC/cyc':>7} {'layer K→N':>11} {'A4 cycles':>10} {'util A4':>7} "
          f"{'A8/A4':>6} {'A4 full/50% pruned':>19}")
    for device in DEVICES:
        p = core_params(device)
        tokens, channels = p["rows"] * p["a_lanes"], p["cols"] * p["w_lanes"]
        peak = tokens * channels
        for k, n in SHAPES:
            a4, a8 = modelled(p, TOKENS, k, n, 4), modelled(p, TOKENS, k, n, 8)
            half = modelled(p, TOKENS // 2, k, n, 4)
            util = TOKENS * k * n / (a4 * peak)
            print(f"{device:10} {tokens:>3}×{channels:<4} {peak:>7} {k:>5}→{n:<5} {a4:>10,} {util:>7.1%} "
                  f"{a8 / a4:>6.3f} {a4 / half:>19.3f}")


def measured_against_model() -> None:
    params = dict(core_params("ice40up5k"), max_k=128, max_k_total=256)
    shapes = [dict(m=16, k=256, n=64, group=128, a_bits=a, kind="random", seed=a) for a in (4, 8)]
    shapes.append(dict(m=16, k=256, n=64, group=128, a_bits=4, kind="random", seed=9, keep=0.5))
    t0 = time.perf_counter()
    report = cosim(TripCore(**params), toplevel="trip_core", simulator="verilator", bench="sim.bench_trip_core",
                   config={"params": params, "cases": shapes}).report
    print(f"\nmeasured on Verilator ({time.perf_counter() - t0:.0f} s including the build), iCE40-sized core:")
    for c in report["cases"]:
        print(f"  M={c['m_kept']:>2} kept, K={c['k']}, N={c['n']}, A{c['a_bits']}: CYCLES {c['cycles']:,}, "
              f"model {c['predicted']:,} ({c['cycles'] / c['predicted'] - 1:+.2%})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.trip_perf", description=__doc__.split("\n\n")[0])
    p.add_argument("--skip-cosim", action="store_true", help="only the modelled table (no Verilator run)")
    args = p.parse_args(argv)
    table()
    if not args.skip_cosim:
        measured_against_model()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
