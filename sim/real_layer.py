"""Real layers for the hardware benches: integers exported from the shipped model, with a real keep mask.

:func:`capture` quantizes SmolLM2-135M with the shipped bit plan (W4 RTN,
groups of 64, per-layer A4/A8), runs the first ``tokens`` tokens of the
shipped text through it twice — whole, and with the shipped pruning plan —
and records the float input of each requested linear.  Kept rows come from
the pruned run (what the pruned network really feeds that layer), pruned
rows from the whole run (what the hardware is spared).  The model is then
exported (:func:`golden.export.export_model`) and each layer's integers are
taken from the export with its own quantizer (:meth:`ExportedLinear.quantize_input`),
so the bench sees exactly what the export oracle sees.
"""
from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import golden

from golden.data import load_text
from golden.export import ExportedLinear, export_model, load_export
from golden.models import load_model
from golden.policy import DEFAULT_PLAN, BitPlan
from golden.prune import PrunePlan, token_pruning
from golden.qmodel import QuantConfig, quant_layers, quantize_model

__all__ = ["RealLayer", "capture"]


@dataclass(frozen=True)
class RealLayer:
    name: str
    x: np.ndarray           # (tokens, in) activation integers of every token
    keep: np.ndarray        # (tokens,) bool: the pruning plan's keep mask
    x_scale: np.ndarray     # (tokens,) float: each token's activation step
    layer: ExportedLinear   # weights, scales and the oracle

    @property
    def a_bits(self) -> int:
        return self.layer.a_bits

    def oracle(self) -> np.ndarray:
        """The export's exact group sums of the kept tokens: ``(kept, out, groups)``."""
        return self.layer.accumulators(self.x[self.keep])

    def requant(self, out_bits: int) -> tuple[np.ndarray, golden.RequantParams]:
        """The kept tokens' float output and the fixed-point parameters that requantize it to ``out_bits``.

        The output step is what a static observer calibrated on this output would pick.
        """
        xs = self.x_scale[self.keep]
        y = golden.group_scaled(self.oracle(), self.layer.scales, xs)
        return y, golden.requant_params(self.layer.scales, xs, golden.output_scale(y, out_bits), out_bits)


def capture(names: list[str], *, tokens: int = 32, prune: PrunePlan = PrunePlan((15,), 0.75)) -> dict[str, RealLayer]:
    model, tok = load_model()
    plan = BitPlan.load(DEFAULT_PLAN)
    q = quantize_model(copy.deepcopy(model), QuantConfig("plan", 4, 8, 64, bit_plan=plan.bits))
    del model
    layers = quant_layers(q)
    missing = [n for n in names if n not in layers]
    if missing:
        raise ValueError(f"no quantized layer named {missing}; e.g. {next(iter(layers))}")
    ids = tok(load_text(), return_tensors="pt").input_ids[:, :tokens]
    seen: dict[str, torch.Tensor] = {}
    hooks = [layers[n].register_forward_pre_hook(lambda mod, args, n=n: seen.__setitem__(n, args[0][0].detach()))
             for n in names]
    try:
        with torch.no_grad():
            q(ids, use_cache=False)
            whole = dict(seen)
            with token_pruning(q, prune) as trace:
                q(ids, use_cache=False)
    finally:
        for h in hooks:
            h.remove()
    keep = np.zeros(tokens, dtype=bool)
    keep[trace.kept.numpy()] = True
    with tempfile.TemporaryDirectory() as tmp:
        _, exported = load_export(export_model(q, Path(tmp) / "model.safetensors", prune_plan=prune.to_dict()))
    out = {}
    for n in names:
        x = whole[n].clone()
        x[torch.from_numpy(keep)] = seen[n]          # kept rows as the pruned network computes them
        xq, xs, _ = exported[n].quantize_input(x)
        out[n] = RealLayer(n, xq.astype(np.int64), keep, xs.reshape(-1).astype(np.float64), exported[n])
    return out
