"""CPU fallback speed: W4A8 and W8A8 linear layers against fp32 and torch's dynamic int8 (fbgemm), side by side.

For each shape, decode (M = 1) and prefill (M = 128) rows, one run measures:

* ``fp32``: ``torch.nn.functional.linear`` on float32 weights;
* ``int8 dyn``: ``torch.ao.nn.quantized.dynamic.Linear`` (fbgemm; per-tensor int8 weights,
  activations quantized on the fly);
* ``W4A8``: ``cpu.model.CpuLinear``, the layer the quantized model runs: per-token int8
  activations (golden's quantizer, compiled) and this project's int4 kernel with its fused float
  epilogue, group 128, on the weight form the layer keeps (tiled on x86 with AVX2, packed elsewhere);
* ``W8A8``: the same with int8 weights (tiled likewise), group 128.

Times are medians of repeated calls after warm-up, taken in turns (each round gives every method a
short burst of calls, in a new order each round): a shared machine's speed drifts by tens of percent
within a run, and in turns the drift weighs on every method alike instead of on whichever ran during
a slow spell.

Also printed, for decode: the machine's read bandwidth (the median ``torch.sum`` over 256 MiB, five
just before the row's calls and five just after, in 4 KiB pages and in 2 MiB pages: the faster of the
two is the reference) and the share of it each quantized layer reaches on its weight bytes.  The
stream is kept out of the turns: it flushes the whole last-level cache, after which even a small
layer's Python and dispatch state must come back from memory (~90 µs on 768→3072).

Memory: ``CpuLinear`` keeps its weights in huge pages (``cpu.arena``), and so that the fp32 baseline
reads the same kind of memory, its weights are placed in a weight arena too.  fbgemm packs and allocates
its int8 weights itself, in ordinary pages.  (torch's own ``THP_MEM_ALLOC_ENABLE=1`` would put every
allocation of 2 MiB or more in huge pages, prefill's outputs included, whose fresh pages then cost each
call more than the weights gain: measured here, W4A8 prefill 4096→4096 2.9 → 3.9 ms.)

A model's layers together are far larger than the last-level cache, so each call reads its
weights from memory.  To measure that and not a cache-resident layer, every method cycles
through enough copies of its layer to fill ``--working-set`` MiB (default 256) of weights
(``--working-set 0``: one copy, the cache-hot case).

    python -m benchmarks.cpu_linear [--rounds 10] [--threads N] [--working-set MIB]
"""
from __future__ import annotations

import argparse
import itertools
import math
import random
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

import cpu
from cpu.arena import WeightArena, huge_pages_mode
from cpu.model import CpuLinear

SHAPES = [(4096, 4096), (4096, 11008), (768, 3072)]     # (in K, out N)
ROWS = [1, 128]
GROUP = 128


def medians_in_turns(calls: dict[str, Callable[[], object]], rounds: int, burst: int = 3) -> dict[str, float]:
    """Median seconds of each call over ``rounds`` rounds.  Each round gives every method a turn, in a
    new order: one untimed call, then ``burst`` timed ones.  The untimed call absorbs what the previous
    method left in the caches (an fp32 call streams 9 MiB or more through them; the small decode layer
    after it pays ~10 µs more than after another small layer, as it would in a model)."""
    for call in calls.values():
        for _ in range(3):
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    order, shuffle = list(calls), random.Random(0).shuffle
    for _ in range(rounds):
        shuffle(order)
        for name in order:
            calls[name]()
            for _ in range(burst):
                t0 = time.perf_counter()
                calls[name]()
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def stream_seconds(streams: dict[str, torch.Tensor], repeats: int = 5) -> dict[str, list[float]]:
    """Seconds of ``repeats`` reductions over each stream: a read-only pass, like a GEMV's weights."""
    times: dict[str, list[float]] = {}
    for name, stream in streams.items():
        stream.sum()
        times[name] = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            stream.sum()
            times[name].append(time.perf_counter() - t0)
    return times


def bandwidth_streams(nbytes: int) -> dict[str, torch.Tensor]:
    """``nbytes`` of float32 ones in 4 KiB pages (numpy's malloc: no huge-page advice) and in 2 MiB pages
    (the weight arena), so the reference is the faster of what the machine's memory gives a plain read."""
    small = torch.from_numpy(np.ones(nbytes // 4, dtype=np.float32))
    huge = WeightArena(nbytes).empty((nbytes // 4,), torch.float32)
    huge.fill_(1.0)
    return {"4 KiB pages": small, "2 MiB pages": huge}


def copies(layer_bytes: int, working_set: int) -> int:
    return max(1, math.ceil(working_set / layer_bytes))


def fp32_layers(k: int, n: int, working_set: int):
    arena = WeightArena()
    weights = itertools.cycle([arena.place(torch.randn(n, k)) for _ in range(copies(4 * n * k, working_set))])
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
    p.add_argument("--rounds", type=int, default=10,
                   help="rounds of turns; each gives every method 1 untimed and 3 timed calls (default 10)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--working-set", type=int, default=256,
                   help="MiB of weights each method cycles through, so calls read memory, not cache "
                        "(default 256; 0 = one copy, cache-hot)")
    args = p.parse_args(argv)
    working_set = args.working_set << 20
    if args.threads:
        torch.set_num_threads(args.threads)
    # The bandwidth reference: a read-only reduction (like a GEMV's weight stream) over 256 MiB,
    # eight times this class of machine's last-level cache.
    streams = bandwidth_streams(256 << 20)
    seen: dict[str, list[float]] = {name: [] for name in streams}     # every row's bandwidth, per page size
    print(f"{torch.get_num_threads()} threads, kernel path {cpu.best_path()} (available: "
          f"{', '.join(cpu.available_paths())}); working set {args.working_set} MiB of weights per method; "
          f"transparent huge pages: {huge_pages_mode()}")
    print(f"{'shape K→N':>14} {'M':>4} {'fp32 ms':>9} {'int8 dyn':>9} | {'W4A8 ms':>8} {'×fp32':>6} {'×dyn':>6} "
          f"{'of bw':>6} | {'W8A8 ms':>8} {'×fp32':>6} {'×dyn':>6} {'of bw':>6} | {'bw GB/s':>7}")
    rng = np.random.default_rng(0)
    for k, n in SHAPES:
        fp32 = fp32_layers(k, n, working_set)
        dyn = dynamic_int8_layers(k, n, working_set)
        ours = [quantized_layers(k, n, bits, rng, working_set) for bits in (4, 8)]
        for m in ROWS:
            x = torch.randn(m, k)
            calls = {"fp32": lambda: fp32(x), "dyn": lambda: dyn(x),
                     "W4A8": lambda: ours[0][0](x), "W8A8": lambda: ours[1][0](x)}
            with torch.inference_mode():
                before = stream_seconds(streams) if m == 1 else {}
                t = medians_in_turns(calls, args.rounds)
                after = stream_seconds(streams) if m == 1 else {}
            bw = None
            for name in before:
                rate = (256 << 20) / statistics.median(before[name] + after[name])
                seen[name].append(rate)
                bw = max(bw or 0.0, rate)
            cells = []
            for method, (_, weight_bytes) in zip(("W4A8", "W8A8"), ours):
                # the share of bandwidth means something where weight traffic bounds the call: decode
                share = f"{weight_bytes / t[method] / bw:>6.0%}" if bw else f"{'':>6}"
                cells.append(f"{t[method] * 1e3:>8.3f} {t['fp32'] / t[method]:>5.2f}× "
                             f"{t['dyn'] / t[method]:>5.2f}× {share}")
            bw_cell = f" | {bw / 1e9:>7.1f}" if bw else ""
            print(f"{f'{k}→{n}':>14} {m:>4} {t['fp32'] * 1e3:>9.3f} {t['dyn'] * 1e3:>9.3f} | " + " | ".join(cells)
                  + bw_cell)
    print("read bandwidth (median of the decode rows; 'of bw' uses the faster per row): " + ", ".join(
        f"{name} {statistics.median(rates) / 1e9:.1f} GB/s" for name, rates in seen.items() if rates))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
