"""Run a W4A8/W4A4/W8A8 model on the CPU fallback: perplexity next to the fake-quant model, and speed.

    python -m cpu.run [--model PATH] [--text FILE] [--w-bits 4] [--a-bits 8] [--eval-tokens 1024]

Quantizes the model with RTN (weights in groups, per-token activations), scores the fake-quant
model and the same model with every W4 linear on the compiled kernels over the same tokens,
and prints both perplexities, which must be identical bit for bit (it exits 2 if not).  Then it
times prefill (one window) and greedy decode with a KV cache, for the float model and for the
fallback.  With no --model it uses SmolLM2-135M-Instruct and the shipped WikiText-2 text.
"""
from __future__ import annotations

import argparse
import copy
import math
import time

import torch


def _parse(argv):
    from golden.cli import add_source_args
    p = argparse.ArgumentParser(prog="python -m cpu.run", description=__doc__.split("\n\n")[0])
    add_source_args(p)
    p.add_argument("--w-bits", type=int, choices=(4, 8), default=4, help="weight bits (default 4)")
    p.add_argument("--a-bits", type=int, choices=(4, 8), default=8, help="activation bits (default 8)")
    p.add_argument("--eval-tokens", type=int, default=1024, help="evaluation tokens from the start of the text")
    p.add_argument("--seq-len", type=int, default=512, help="window length (default 512)")
    p.add_argument("--prefill-tokens", type=int, default=128, help="prompt length for the speed runs (default 128)")
    p.add_argument("--decode-tokens", type=int, default=32, help="greedy tokens for the decode speed (default 32)")
    return p.parse_args(argv)


@torch.no_grad()
def speed(model, prompt: torch.Tensor, new_tokens: int) -> tuple[float, float]:
    """(prefill tokens/s, decode tokens/s): one forward over the prompt, then greedy steps with the cache."""
    model(prompt[:, :8], use_cache=True)                       # warm-up
    t0 = time.perf_counter()
    out = model(prompt, use_cache=True)
    prefill = prompt.shape[1] / (time.perf_counter() - t0)
    cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
    t0 = time.perf_counter()
    for _ in range(new_tokens):
        out = model(token, past_key_values=cache, use_cache=True)
        cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
    return prefill, new_tokens / (time.perf_counter() - t0)


def main(argv=None) -> int:
    from golden.cli import load_source, run
    from golden.data import split_tokens
    from golden.eval import score
    from golden.qmodel import QuantConfig, auto_group_size, quantize_model

    from . import best_path
    from .arena import huge_page_summary, huge_pages_mode
    from .model import CpuLinear, to_cpu_fallback

    args = _parse(argv)

    def body() -> int:
        if args.eval_tokens < 2 or args.decode_tokens < 1 or args.prefill_tokens < 1:
            raise ValueError("--eval-tokens must be at least 2, --prefill-tokens and --decode-tokens at least 1")
        model, _, ids = load_source(args)
        ids_eval = split_tokens(ids, args.eval_tokens, 0).eval_ids
        float_model = copy.deepcopy(model)
        cfg = QuantConfig("cpu", w_bits=args.w_bits, a_bits=args.a_bits, group_size=auto_group_size(model))
        fake = quantize_model(model, cfg)
        on_cpu = copy.deepcopy(fake)
        kept = to_cpu_fallback(on_cpu)
        for name, why in kept.items():
            print(f"stays on the fake-quant path: {name} ({why})")
        layers = [m for m in on_cpu.modules() if isinstance(m, CpuLinear)]
        held, huge = huge_page_summary([t for m in layers for t in (m.packed, m.w_scale)])
        print(f"{len(layers)} layers on the kernels: {held / 2**20:.1f} MiB of weights and scales, in mappings "
              f"holding {huge / 2**20:.1f} MiB of huge pages (transparent huge pages: {huge_pages_mode()})")
        a = score(fake, ids_eval, args.seq_len, desc="fake-quant")
        b = score(on_cpu, ids_eval, args.seq_len, desc="cpu kernels")
        diff = (a.nll - b.nll).abs()
        # Positions without a prediction hold NaN in both; every other one must match exactly.
        identical = bool(((a.nll == b.nll) | (a.nll.isnan() & b.nll.isnan())).all())
        same = "bit-identical" if identical else "NOT identical"
        print(f"W{args.w_bits}A{args.a_bits} RTN, weight groups of {cfg.group_size}, {a.predicted} predictions, kernel path "
              f"{best_path()}:")
        print(f"  perplexity: fake-quant {a.ppl:.4f}, cpu kernels {b.ppl:.4f} "
              f"({100 * (b.ppl / a.ppl - 1):+.3f}%, per-token log-likelihoods {same}); largest |Δ| "
              f"{float(diff[~diff.isnan()].max()):.2e}; scoring took {a.seconds:.1f} s and {b.seconds:.1f} s")
        prompt = ids[: args.prefill_tokens].unsqueeze(0)
        rows = [("float32", float_model), (f"W{args.w_bits}A{args.a_bits} cpu kernels", on_cpu)]
        base = None
        for label, m in rows:
            pre, dec = speed(m, prompt, args.decode_tokens)
            base = base or (pre, dec)
            print(f"  {label:>22}: prefill {pre:8.1f} tokens/s ({pre / base[0]:.2f}×), decode {dec:6.1f} tokens/s "
                  f"({dec / base[1]:.2f}×)")
        if not math.isfinite(b.ppl):
            raise ValueError("the fallback produced a non-finite perplexity")
        if not identical:
            raise ValueError("the fallback's log-likelihoods differ from the fake-quant model's; both should "
                             "compute golden.linear.scaled_linear exactly")
        return 0

    return run(body)


if __name__ == "__main__":
    raise SystemExit(main())
