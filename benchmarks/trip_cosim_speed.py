"""Wall time of a bit-exact co-simulation of one 768×768 layer with 128 tokens on Verilator.

The ECP5-85F-sized core (:func:`hw.sizes.core_params`) inside
:class:`sim.trip_harness.TripHarness`: activations and weights are preloaded
into memories, the core runs free, and all 1,152 result tiles are read back and
compared with the golden group sums.  Printed per width: the Verilator build,
the preload, the run and the read-back, and simulated cycles per second.

    python -m benchmarks.trip_cosim_speed [--tokens 128] [--k 768] [--n 768]
"""
from __future__ import annotations

import argparse
import math
import time

from hw.sizes import core_params
from sim.runner import cosim
from sim.trip_harness import TripHarness


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.trip_cosim_speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--k", type=int, default=768)
    p.add_argument("--n", type=int, default=768)
    p.add_argument("--group", type=int, default=128)
    p.add_argument("--device", default="ecp5-85f")
    args = p.parse_args(argv)
    params = core_params(args.device, max_k=args.group, max_k_total=args.k)
    tokens, channels = params["rows"] * params["a_lanes"], params["cols"] * params["w_lanes"]
    m_tiles, n_tiles = math.ceil(args.tokens / tokens), math.ceil(args.n / channels)
    depths = dict(act_depth=m_tiles * args.k, weight_depth=n_tiles * args.k,
                  result_depth=m_tiles * n_tiles * (args.k // args.group))
    cases = [{"m": args.tokens, "k": args.k, "n": args.n, "group": args.group, "a_bits": a, "kind": "random",
              "seed": a} for a in (4, 8)]
    t0 = time.perf_counter()
    result = cosim(TripHarness(params, **depths), toplevel="trip_harness", simulator="verilator",
                   bench="sim.bench_trip_fast", config={"params": params, "depths": depths, "cases": cases})
    wall = time.perf_counter() - t0
    print(f"{args.device} core {tokens}×{channels}, layer {args.k}→{args.n}, {args.tokens} tokens, "
          f"group {args.group}: Verilator build {result.build_seconds:.1f} s, bench {result.run_seconds:.1f} s "
          f"(wall {wall:.1f} s in all)")
    for c in result.report["cases"]:
        total = c["load_s"] + c["run_s"] + c["read_s"]
        print(f"  A{c['a_bits']}: {c['outputs']} result tiles bit-exact; {c['cycles']:,} cycles "
              f"(model {c['predicted']:,}); preload {c['load_s']:.1f} s, run {c['run_s']:.1f} s "
              f"({c['cycles'] / c['run_s']:,.0f} cycles/s), read-back {c['read_s']:.1f} s, total {total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
