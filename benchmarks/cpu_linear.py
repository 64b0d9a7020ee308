"""CPU fallback speed: W4A8 linear layers against fp32 and torch's dynamic int8 (fbgemm), side by side.

For each shape, decode (M = 1) and prefill (M = 128) rows, one run measures:

* ``fp32``: ``torch.nn.functional.linear`` on float32 weights;
* ``int8 dyn``: ``torch.ao.nn.quantized.dynamic.Linear`` (fbgemm; per-tensor int8 weights,
  activations quantized on the fly);
* ``W4A8``: per-token int8 activations (``cpu.quantize_rows``, golden's quantizer compiled) and
  this project's packed-int4 kernel with its fused float epilogue (``cpu.scaled_matmul``), group 128.

Also printed: the machine's read bandwidth (a large ``torch.sum``) and the share of it W4A8
decode reaches on its weight bytes.  Times are medians of repeated calls after warm-up.

    python -m benchmarks.cpu_linear [--repeats 20] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import cpu

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


def w4a8_layer(k: int, n: int, rng: np.random.Generator):
    w = rng.integers(-8, 8, (n, k))
    packed = cpu.pack_weights(w)
    w_scale = torch.from_numpy(rng.uniform(1e-3, 1e-2, (n, k // GROUP)).astype(np.float32))

    def run(x: torch.Tensor) -> torch.Tensor:
        xq, scale = cpu.quantize_rows(x, 8)
        return cpu.scaled_matmul(xq, packed, GROUP, scale, w_scale, check_range=False)
    return run, packed.numel()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cpu_linear", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=20, help="timed calls per measurement (median reported)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    bw = read_bandwidth()
    print(f"{torch.get_num_threads()} threads, kernel path {cpu.best_path()} (available: "
          f"{', '.join(cpu.available_paths())}); read bandwidth {bw / 1e9:.1f} GB/s")
    print(f"{'shape K→N':>14} {'M':>4} {'fp32 ms':>9} {'int8 dyn ms':>12} {'W4A8 ms':>9} "
          f"{'W4A8 vs fp32':>13} {'vs int8 dyn':>12} {'W4A8 GB/s':>10} {'of bw':>6}")
    rng = np.random.default_rng(0)
    for k, n in SHAPES:
        lin = torch.nn.Linear(k, n, bias=False)
        dyn = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(lin), {torch.nn.Linear}, dtype=torch.qint8)
        ours, weight_bytes = w4a8_layer(k, n, rng)
        for m in ROWS:
            x = torch.randn(m, k)
            with torch.inference_mode():
                t_fp = median_seconds(lambda: torch.nn.functional.linear(x, lin.weight), args.repeats)
                t_dyn = median_seconds(lambda: dyn(x), args.repeats)
                t_ours = median_seconds(lambda: ours(x), args.repeats)
            rate = weight_bytes / t_ours
            print(f"{f'{k}→{n}':>14} {m:>4} {t_fp * 1e3:>9.3f} {t_dyn * 1e3:>12.3f} {t_ours * 1e3:>9.3f} "
                  f"{t_fp / t_ours:>12.2f}× {t_dyn / t_ours:>11.2f}× {rate / 1e9:>10.1f} {rate / bw:>6.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
