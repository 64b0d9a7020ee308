"""Where activation outliers live: statistics of every quantized linear's input, and plots.

For each layer input it records the max and median of ``|x|``, the per-channel
max ``|x|`` (which channels carry outliers) and the per-token max ``|x|`` (which
tokens do).  ``python -m golden.outliers`` writes ``stats.json`` and PNG plots to a
report folder.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .cli import atomic_path, save_figure
from .models import quantizable_linears

__all__ = ["LayerStats", "collect_stats", "write_report", "pruned_token_view", "plot_pruned_tokens", "main"]


@dataclass
class LayerStats:
    name: str
    channel_max: torch.Tensor      # (in_features,) max |x| per input channel
    token_max: torch.Tensor        # (tokens,) max |x| per token, over the tokens seen
    median: float                  # median |x| of the first batch (a typical magnitude)

    @property
    def max(self) -> float:
        return float(self.channel_max.max())

    @property
    def ratio(self) -> float:
        """max |x| / median |x|: how far the worst value is from a typical one."""
        return self.max / max(self.median, 1e-12)


@torch.no_grad()
def collect_stats(model: nn.Module, ids: torch.Tensor, seq_len: int = 512) -> dict[str, LayerStats]:
    """Run ``ids`` (1-D) through ``model`` in windows and gather input statistics of every linear."""
    stats: dict[str, LayerStats] = {}

    def hook(name):
        def grab(module, args):
            x = args[0].detach().float().reshape(-1, args[0].shape[-1]).abs()
            cm, tm = x.amax(dim=0), x.amax(dim=1)
            if name not in stats:
                stats[name] = LayerStats(name, cm, tm, float(x.median()))
            else:
                s = stats[name]
                s.channel_max = torch.maximum(s.channel_max, cm)
                s.token_max = torch.cat([s.token_max, tm])
        return grab

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in quantizable_linears(model).items()]
    try:
        for s in range(0, ids.numel(), seq_len):
            model(ids[s:s + seq_len][None])
    finally:
        for h in handles:
            h.remove()
    return stats


@torch.no_grad()
def pruned_token_view(model: nn.Module, window: torch.Tensor, plan) -> dict:
    """What pruning removes in one window: per-token max ``|x|`` over every linear input after the first
    pruning block (in the unpruned model), and which tokens ``plan`` keeps."""
    from .models import linear_blocks
    from .prune import token_pruning

    block_of = linear_blocks(model)
    later = {n: m for n, m in quantizable_linears(model).items() if block_of[n] > plan.layers[0]}
    token_max = torch.zeros(window.numel())
    def grab(module, args) -> None:
        torch.maximum(token_max, args[0][0].detach().abs().amax(-1).float(), out=token_max)

    handles = [m.register_forward_pre_hook(grab) for m in later.values()]
    try:
        model(window[None], use_cache=False)
    finally:
        for h in handles:
            h.remove()
    with token_pruning(model, plan) as trace:
        model(window[None], use_cache=False)
    kept = torch.zeros(window.numel(), dtype=torch.bool)
    kept[trace.kept] = True
    return {"token_max": token_max, "kept": kept, "plan": plan.to_dict(),
            "max_kept": float(token_max[kept].max()), "max_pruned": float(token_max[~kept].max()) if (~kept).any() else 0.0}


def plot_pruned_tokens(view: dict, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pos = torch.arange(view["token_max"].numel())
    fig, ax = plt.subplots(figsize=(10, 3.5))
    for mask, colour, label in ((view["kept"], "tab:blue", "kept"), (~view["kept"], "tab:red", "pruned")):
        ax.scatter(pos[mask], view["token_max"][mask], s=6, color=colour, label=f"{label} ({int(mask.sum())})")
    ax.set_yscale("log")
    ax.set_xlabel("token position in the window")
    ax.set_ylabel("max |x| over later linear inputs")
    ax.set_title(f"What pruning after blocks {view['plan']['layers']} (keep {view['plan']['keep_ratio']:.0%}) "
                 f"removes: max |x| kept {view['max_kept']:.0f}, pruned {view['max_pruned']:.0f}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def write_report(stats: dict[str, LayerStats], out: str | Path, top: int = 8) -> list[Path]:
    """``stats.json`` plus plots in ``out``; returns the files written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    summary = {n: {"max": s.max, "median": s.median, "ratio": s.ratio,
                   "top_channels": torch.topk(s.channel_max, min(top, s.channel_max.numel())).indices.tolist()}
               for n, s in stats.items()}
    files = [out / "stats.json"]
    with atomic_path(files[0]) as tmp:
        tmp.write_text(json.dumps(summary, indent=1))

    names = list(stats)
    fig, ax = plt.subplots(figsize=(12, 4))
    ax.bar(range(len(names)), [stats[n].ratio for n in names], color="tab:red")
    ax.set_yscale("log")
    ax.set_ylabel("max |x| / median |x|")
    ax.set_title("Activation outliers at the input of every quantized linear")
    ax.set_xticks(range(len(names)), [n.split(".", 2)[-1] for n in names], rotation=90, fontsize=5)
    fig.tight_layout()
    files.append(save_figure(fig, out / "outlier_ratio_per_layer.png"))

    worst = max(stats.values(), key=lambda s: s.ratio)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4))
    a1.plot(worst.channel_max.numpy(), lw=0.7)
    a1.set_title(f"{worst.name}: max |x| per input channel")
    a1.set_xlabel("channel")
    a2.plot(worst.token_max.numpy(), lw=0.7, color="tab:orange")
    a2.set_title("max |x| per token")
    a2.set_xlabel("token")
    for a in (a1, a2):
        a.set_yscale("log")
    fig.tight_layout()
    files.append(save_figure(fig, out / "worst_layer_channels_tokens.png"))
    return files


def main(argv=None) -> int:
    from .cli import add_prune_args, add_source_args, load_source, prune_plan, run
    from .data import split_tokens

    p = argparse.ArgumentParser(prog="python -m golden.outliers",
                                description="Measure activation outliers of a local causal LM, plot where they "
                                            "live (layers, channels, tokens) and which tokens pruning removes.")
    add_source_args(p)
    p.add_argument("--tokens", type=int, default=1024, help="tokens from the start of the text (default 1024)")
    p.add_argument("--out", default="build/report/outliers", help="report folder (default %(default)s)")
    add_prune_args(p, "15")
    args = p.parse_args(argv)

    def body() -> int:
        plan = prune_plan(args)
        model, _, all_ids = load_source(args)
        ids = split_tokens(all_ids, args.tokens, 0).eval_ids
        stats = collect_stats(model, ids)
        view = pruned_token_view(model, ids[:512], plan) if plan is not None else None
        files = write_report(stats, args.out)
        if view is not None:
            files.append(plot_pruned_tokens(view, Path(args.out) / "pruned_tokens.png"))
            print(f"pruning after blocks {list(plan.layers)} keeping {plan.keep_ratio:.0%}: largest |x| on a "
                  f"kept token {view['max_kept']:.1f}, on a pruned token {view['max_pruned']:.1f}")
        for s in sorted(stats.values(), key=lambda s: -s.ratio)[:5]:
            print(f"{s.name:<40} max {s.max:8.1f}  median {s.median:.4f}  ratio {s.ratio:8.0f}")
        print("wrote", ", ".join(str(f) for f in files))
        return 0

    return run(body)


if __name__ == "__main__":
    sys.exit(main())
