"""GPTQ (Frantar et al., 2023), written from the paper's algorithm.

For one linear layer with weight ``W`` (out × in) and calibration inputs ``X``:

1. Hessian ``H = 2/n · Σ xᵀx`` over calibration tokens; dead inputs (zero
   diagonal) get ``H_jj = 1`` and zero weights; ``H += λ·mean(diag H)·I``.
2. ``U = chol(H⁻¹)ᵀ`` (upper Cholesky factor of the inverse).
3. Columns are quantized left to right (or by decreasing ``diag H`` with
   act-order).  After column ``j`` is rounded, its error ``e = (w - q)/U_jj`` is
   spread over the not-yet-quantized columns, ``W[:, k] -= e · U_jk``.  Updates
   are applied lazily inside blocks of ``block_size`` columns and to the rest of
   the matrix once per block, which is the same arithmetic in fewer passes.

Rounding goes through :func:`golden.quant.quantize`, so the integers are the
ones the export and the oracle see.  Group scales are computed when the
group's first column is reached (from the already-updated weights); with
act-order they are fixed up front from the original weights so that groups
stay contiguous in the original column order (the export's layout).
"""
from __future__ import annotations

import torch
from torch import nn
from tqdm import tqdm

from .quant import QuantError, QuantSpec, qparams, quantize

__all__ = ["HessianAccumulator", "gptq_quantize_weight", "gptq_quantize_model"]


class HessianAccumulator:
    """Running ``2/n · Σ xᵀx`` over every token fed to :meth:`add` (float64 for stability)."""

    def __init__(self, in_features: int):
        self.H = torch.zeros(in_features, in_features, dtype=torch.float64)
        self.n = 0

    def add(self, x: torch.Tensor) -> None:
        x = x.detach().reshape(-1, x.shape[-1]).double()
        if not torch.isfinite(x).all():
            raise QuantError("calibration activations hold NaN/Inf; refusing to build a Hessian")
        total = self.n + x.shape[0]
        self.H *= self.n / total
        self.H += (2.0 / total) * (x.t() @ x)
        self.n = total


def gptq_quantize_weight(W: torch.Tensor, H: torch.Tensor, spec: QuantSpec, *, block_size: int = 128,
                         percdamp: float = 0.01, act_order: bool = False
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GPTQ integers of ``W`` (out, in) for ``spec`` (``row`` or ``group`` granularity).

    Returns ``(q, scale, zero)`` in the layout of :func:`golden.quant.quantize`
    for ``spec`` (``scale``/``zero`` shaped ``(out·in/group, 1)`` for groups).
    """
    if spec.granularity not in ("row", "group"):
        raise QuantError(f"GPTQ quantizes weights per row or per group, not {spec.granularity!r}")
    W = W.detach().double().clone()
    rows, cols = W.shape
    if H.shape != (cols, cols):
        raise QuantError(f"Hessian of shape {tuple(H.shape)} does not match weight of shape {tuple(W.shape)}")
    gs = spec.group_width(cols)
    H = H.double().clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    row_spec = QuantSpec(spec.bits, spec.symmetric, "row")

    # Per-group (scale, zero) columns, shape (rows, n_groups); static ones are fixed now.
    n_groups = cols // gs
    scales = torch.zeros(rows, n_groups, dtype=torch.float64)
    zeros = torch.zeros(rows, n_groups, dtype=torch.float64)
    static = act_order or gs == cols
    if static:
        for g in range(n_groups):
            s, z = qparams(W[:, g * gs:(g + 1) * gs].float(), row_spec)
            scales[:, g], zeros[:, g] = s[:, 0].double(), z[:, 0].double()

    perm = torch.argsort(torch.diag(H), descending=True) if act_order else torch.arange(cols)
    W, H = W[:, perm], H[perm][:, perm]
    damp = percdamp * torch.mean(torch.diag(H))
    H += damp * torch.eye(cols, dtype=torch.float64)
    try:
        U = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    except torch.linalg.LinAlgError:
        raise QuantError("Hessian is not positive definite even after damping; raise percdamp") from None

    Q = torch.zeros(rows, cols, dtype=torch.int32)
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        W1, U1 = W[:, i1:i2].clone(), U[i1:i2, i1:i2]
        Err1 = torch.zeros_like(W1)
        for i in range(i2 - i1):
            col = int(perm[i1 + i])                    # original column index
            g = col // gs
            if not static and col % gs == 0:           # entering a new group: scales from updated weights
                block = torch.cat([W1[:, i:], W[:, i2:]], dim=1)[:, :gs]
                s, z = qparams(block.float(), row_spec)
                scales[:, g], zeros[:, g] = s[:, 0].double(), z[:, 0].double()
            s, z = scales[:, g:g + 1].float(), zeros[:, g:g + 1].float()
            w = W1[:, i]
            q = quantize(w[:, None].float(), row_spec, s, z)[:, 0]
            Q[:, col] = q
            deq = (q.double() - zeros[:, g]) * scales[:, g]
            err = (w - deq) / U1[i, i]
            W1[:, i:] -= err[:, None] * U1[i, i:][None, :]
            Err1[:, i] = err
        W[:, i2:] -= Err1 @ U[i1:i2, i2:]
    return Q, scales.reshape(-1, 1).float(), zeros.reshape(-1, 1).float()


class _StopForward(Exception):
    pass


def _first_block_inputs(model: nn.Module, blocks: nn.ModuleList, windows: torch.Tensor):
    """Hidden states and keyword arguments each calibration window brings to block 0."""
    captured = []

    def grab(module, args, kwargs):
        captured.append((args[0].detach(), dict(kwargs)))
        raise _StopForward

    handle = blocks[0].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        for w in windows:
            try:
                model(w[None], use_cache=False)
            except _StopForward:
                pass
    finally:
        handle.remove()
    return captured


@torch.no_grad()
def gptq_quantize_model(model: nn.Module, config, calib_ids: torch.Tensor, *, n_windows: int = 16,
                        seq_len: int = 512, act_order: bool = True, percdamp: float = 0.01,
                        progress: bool = True) -> nn.Module:
    """Quantize ``model``'s linears with GPTQ, block by block, from calibration tokens.

    Each block's Hessians come from the inputs it receives from the blocks
    before it *after* their quantization (the sequential scheme of the paper),
    with the block itself still in float.  Activations are then quantized as
    ``config`` says.  ``calib_ids`` is 1-D; it is cut into ``n_windows`` windows.
    """
    from .models import arch_of, blocks as model_blocks
    from .qmodel import QuantLinear

    need = n_windows * seq_len
    if calib_ids.numel() < need:
        raise QuantError(f"GPTQ needs {need} calibration tokens ({n_windows}×{seq_len}), got {calib_ids.numel()}")
    windows = calib_ids[:need].reshape(n_windows, seq_len)
    arch, layers = arch_of(model), model_blocks(model)
    inputs = _first_block_inputs(model, layers, windows)
    prefix = arch.blocks
    for b, block in enumerate(tqdm(layers, desc="GPTQ", unit="block", disable=not progress)):
        linears = {name: block.get_submodule(name) for name in arch.linears}
        acc = {name: HessianAccumulator(lin.in_features) for name, lin in linears.items()}
        hooks = [lin.register_forward_pre_hook(lambda m, a, name=name: acc[name].add(a[0]))
                 for name, lin in linears.items()]
        try:
            for hidden, kwargs in inputs:
                block(hidden, **kwargs)
        finally:
            for h in hooks:
                h.remove()
        for name, lin in linears.items():
            full = f"{prefix}.{b}.{name}"
            w_spec = config.weight_spec(lin.in_features)
            q_layer = QuantLinear(lin, full, w_spec, config.act_spec(full))
            if w_spec is not None:
                q_layer.set_integer_weight(*gptq_quantize_weight(lin.weight, acc[name].H, w_spec,
                                                                 act_order=act_order, percdamp=percdamp))
            parent, _, child = name.rpartition(".")
            setattr(block.get_submodule(parent) if parent else block, child, q_layer)
        outs = []
        for hidden, kwargs in inputs:
            out = block(hidden, **kwargs)
            outs.append(((out[0] if isinstance(out, tuple) else out).detach(), kwargs))
        inputs = outs
    return model
