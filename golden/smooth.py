"""SmoothQuant-style smoothing, the W4A8 baseline: move activation outliers into the weights.

For a linear group reading ``x`` (q/k/v, or gate/up, or OPT's fc1), per input
channel ``j``: ``s_j = max|x_j|^alpha / max|W_:,j|^(1-alpha)`` over calibration
tokens, then ``x_j / s_j`` and ``W_:,j · s_j`` compute the same product with a
flatter activation.  The division is folded into the norm that produces ``x``
(its weight, and bias if any), so the smoothed float model is the same function
and nothing downstream (quantizers, GPTQ, export, hardware) sees a new op.
Groups whose input is not a norm's output (o_proj, down_proj, fc2) stay as they
are, as in the SmoothQuant paper; the norm feeding each group is found by tensor
identity in one forward pass, not by family-specific names.
"""
from __future__ import annotations

import torch
from torch import nn
from tqdm import tqdm

from .policy import ActivationGroup, activation_groups
from .qmodel import quant_layers
from .quant import QuantError

__all__ = ["smooth_model", "norm_feeding"]


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.LayerNorm) or (type(module).__name__.endswith("RMSNorm")
                                                and isinstance(getattr(module, "weight", None), torch.Tensor))


@torch.no_grad()
def norm_feeding(model: nn.Module, groups: list[ActivationGroup]) -> dict[str, nn.Module]:
    """The norm module whose output each group reads directly (groups with no such norm are absent)."""
    made: dict[int, nn.Module] = {}
    keep: list[torch.Tensor] = []           # hold outputs alive so their ids stay unique
    read: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())

    def on_norm(m, a, out):
        keep.append(out)
        made[id(out)] = m

    handles = [m.register_forward_hook(on_norm) for m in modules.values() if _is_norm(m)]
    handles += [modules[g.layers[0]].register_forward_pre_hook(lambda m, a, n=g.name: read.__setitem__(n, a[0]))
                for g in groups]
    try:
        model(torch.zeros(1, 2, dtype=torch.long), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return {g.name: made[id(read[g.name])] for g in groups if id(read[g.name]) in made}


@torch.no_grad()
def smooth_model(model: nn.Module, windows: torch.Tensor, alpha: float = 0.5,
                 progress: bool = True) -> dict[str, torch.Tensor]:
    """Smooth a *float* model in place from calibration ``windows`` ``(n, seq_len)``; returns ``s`` per group."""
    if not 0.0 <= alpha <= 1.0:
        raise QuantError(f"smoothing alpha must be in [0, 1], not {alpha!r}")
    if windows.dim() != 2 or windows.numel() == 0:
        raise QuantError(f"calibration windows must be (n, seq_len), got {tuple(windows.shape)}")
    if quant_layers(model):
        raise QuantError("smooth the float model, before quantizing it")
    modules = dict(model.named_modules())
    groups = activation_groups(model)
    feeders = norm_feeding(model, groups)
    amax: dict[str, torch.Tensor] = {}

    def observe(name):
        def hook(m, a):
            x = a[0].detach().abs().reshape(-1, a[0].shape[-1]).amax(0).float()
            amax[name] = x if name not in amax else torch.maximum(amax[name], x)
        return hook

    targets = [g for g in groups if g.name in feeders]
    handles = [modules[g.layers[0]].register_forward_pre_hook(observe(g.name)) for g in targets]
    try:
        for w in tqdm(windows, desc="smoothing stats", unit="window", disable=not progress, leave=False):
            model(w[None], use_cache=False)
    finally:
        for h in handles:
            h.remove()
    factors = {}
    for g in targets:
        w_max = torch.stack([modules[n].weight.abs().amax(0) for n in g.layers]).amax(0).float()
        s = (amax[g.name].clamp(min=1e-5) ** alpha / w_max.clamp(min=1e-5) ** (1 - alpha)).clamp(min=1e-5)
        norm = feeders[g.name]
        norm.weight.div_(s.to(norm.weight.dtype))
        if getattr(norm, "bias", None) is not None:
            norm.bias.div_(s.to(norm.bias.dtype))
        for n in g.layers:
            modules[n].weight.mul_(s.to(modules[n].weight.dtype))
        factors[g.name] = s
    return factors
