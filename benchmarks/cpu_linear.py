"""CPU fallback speed: W4A8 and W8A8 linear layers against fp32 and torch's dynamic int8 (fbgemm), side by side.

For each shape, decode (M = 1) and prefill (M = 128) rows, one run measures:

* ``fp32``: ``torch.nn.functional.linear`` on float32 weights;
* ``int8 dyn``: ``torch.ao.nn.quantized.dynamic.Linear`` (fbgemm; per-tensor int8 weights,
  activations quantized on the fly);
* ``W4A8``: ``cpu.model.CpuLinear``, the layer the quantized model runs: per-token int8
  activations (golden's quantizer, compiled) and this project's int4 kernel with its fused float
  epilogue, group 128, on the weight form the layer keeps (tiled on x86 with AVX2, packed elsewhere);
* ``W8A8``: the same with int8 weights (tiled likewise), group 128.

Also printed: the machine's read bandwidth (a large ``torch.sum``) and, for decode, the share of
it each quantized kernel reaches on its weight bytes.  Times are medians of repeated calls after warm-up.

A model's layers together are far larger than the last-level cache, so each call reads its
weights from memory.  To measure that and not a cache-resident layer, every method cycles
through enough copies of its layer to fill ``--working-set`` MiB (default 256) of weights
(``--working-set 0``: one copy, the cache-hot case).

    python -m benchmarks.cpu_linear [--repeats 20] [--threads N] [--working-set MIB]
"""
from __future__ import annotations

import argparse
import itertools
import math
import statistics
import time

import numpy as np
import torch

import cpu
from cpu.model import CpuLinear

SHAPES = [(4096, 4096), (4096, 11008), (768, 3072)]     # (in K, out N)
ROWS = [1, 128]
GROUP = 128


def median_seconds(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def read_bandwidth(gib: float = 1.0, repeats: int = 5) -> float:
    """Bytes per second of a reduction over ``gib`` GiB of float32: a read-only stream, like a GEMV."""
    a = torch.ones(int(gib * (1 << 30)) // 4)
    return a.numel() * 4 / median_seconds(lambda: a.sum(), repeats)


def copies(layer_bytes: int, working_set: int) -> int:
    return max(1, math.ceil(working_set / layer_bytes))


def fp32_layers(k: int, n: int, working_set: int):
    weights = itertools.cycle([torch.randn(n, k) for _ in range(copies(4 * n * k, working_set))])
    return lambda x: torch.nn.functional.linear(x, next(weights))


def dynamic_int8_layers(k: int, n: int, working_set: int):
    def one():
        lin = torch.nn.Sequential(torch.nn.Linear(k, n, bias=False))
        return torch.ao.quantization.quantize_dynamic(lin, {torch.nn.Linear}, dtype=torch.qint8)
    layers = itertools.cycle([one() for _ in range(copies(n * k, working_set))])
    return lambda x: next(layers)(x)


def quantized_layers(k: int, n: int, w_bits: int, rng: np.random.Generator, working_set: int):
    """A8 ``cpu.model.CpuLinear`` layers (float in, float out: per-token quantizer, kernel, fused scaling) with
    int4 (``w_bits`` 4) or int8 weights, in the form the layer keeps (tiled where AVX2 runs); returns
    ``(run, weight bytes per layer)``."""
    w_scale = torch.from_numpy(rng.uniform(1e-3, 1e-2, (n, k // GROUP)).astype(np.float32))
    if w_bits == 4:
        w, layer_bytes = cpu.pack_weights(rng.integers(-8, 8, (n, k))), n * k // 2
    else:
        w, layer_bytes = torch.from_numpy(rng.integers(-127, 128, (n, k)).astype(np.int8)), n * k
    layers = itertools.cycle([CpuLinear(f"copy{i}", w.clone(), w_scale, None, 8, GROUP)
                              for i in range(copies(layer_bytes, working_set))])
    return lambda x: next(layers)(x), layer_bytes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cpu_linear", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=20, help="timed calls per measurement (median reported)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--working-set", type=int, default=256,
                   help="MiB of weights each method cycles through, so calls read memory, not cache "
                        "(default 256; 0 = one copy, cache-hot)")
    args = p.parse_args(argv)
    working_set = args.working_set << 20
    if args.threads:
        torch.set_num_threads(args.threads)
    bw = read_bandwidth()
    print(f"{torch.get_num_threads()} threads, kernel path {cpu.best_path()} (available: "
          f"{', '.join(cpu.available_paths())}); read bandwidth {bw / 1e9:.1f} GB/s; "
          f"working set {args.working_set} MiB of weights per method")
    print(f"{'shape K→N':>14} {'M':>4} {'fp32 ms':>9} {'int8 dyn':>9} | {'W4A8 ms':>8} {'×fp32':>6} {'×dyn':>6} "
          f"{'of bw':>6} | {'W8A8 ms':>8} {'×fp32':>6} {'×dyn':>6} {'of bw':>6}")
    rng = np.random.default_rng(0)
    for k, n in SHAPES:
        fp32 = fp32_layers(k, n, working_set)
        dyn = dynamic_int8_layers(k, n, working_set)
        ours = [quantized_layers(k, n, bits, rng, working_set) for bits in (4, 8)]
        for m in ROWS:
            x = torch.randn(m, k)
            with torch.inference_mode():
                t_fp = median_seconds(lambda: fp32(x), args.repeats)
                t_dyn = median_seconds(lambda: dyn(x), args.repeats)
                cells = []
                for run, weight_bytes in ours:
                    t = median_seconds(lambda: run(x), args.repeats)
                    # the share of bandwidth means something where weight traffic bounds the call: decode
                    share = f"{weight_bytes / t / bw:>6.0%}" if m == 1 else f"{'':>6}"
                    cells.append(f"{t * 1e3:>8.3f} {t_fp / t:>5.2f}× {t_dyn / t:>5.2f}× {share}")
            print(f"{f'{k}→{n}':>14} {m:>4} {t_fp * 1e3:>9.3f} {t_dyn * 1e3:>9.3f} | " + " | ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
