"""Export of a quantized model, and the integer oracle of one exported linear layer.

File format (safetensors, ``format = "agile-quant-v1"`` in the metadata), per
quantized linear ``NAME``:

``NAME.qweight``  uint8 ``(out, in/2)``: int4 weights packed by :func:`golden.intref.pack_int4`
                  (element ``2k`` in the low nibble), or int8 ``(out, in)`` for 8-bit weights
``NAME.scales``   float32 ``(out, in/group)``: weight scale per output channel and group
``NAME.zeros``    int8 ``(out, in/group)``: weight zero points (all 0 for symmetric weights)
``NAME.bias``     float32 ``(out,)``, when the layer has one

The metadata's ``"model"`` entry is JSON: per layer its widths, ``w_bits``,
``a_bits`` (the bit plan; ``null`` = float activations), ``a_symmetric`` and
``group_size``; plus the bit plan and the pruning plan.  Files are written to a
temporary name and renamed, so a failed export leaves nothing behind.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from safetensors import safe_open
from torch import nn

from .cli import atomic_path
from .intref import group_accumulators, pack_int4, unpack_int4
from .quant import QuantSpec, qparams, quantize

__all__ = ["FORMAT", "ExportedLinear", "export_model", "load_export"]

FORMAT = "agile-quant-v1"


def export_model(model: nn.Module, path: str | os.PathLike, *, prune_plan: dict | None = None) -> Path:
    """Write every :class:`golden.qmodel.QuantLinear` of ``model`` to ``path`` (safetensors)."""
    from .qmodel import quant_layers

    path = Path(path)
    tensors, layers = {}, {}
    for name, m in quant_layers(model).items():
        if m.w_spec is None:
            raise ValueError(f"{name} has float weights; only quantized weights can be exported")
        q = m.weight_q.numpy().astype(np.int64)
        group = m.w_spec.group_width(m.in_features)
        tensors[f"{name}.qweight"] = pack_int4(q) if m.w_spec.bits == 4 else q.astype(np.int8)
        tensors[f"{name}.scales"] = m.weight_scale.reshape(m.out_features, -1).numpy().astype(np.float32)
        tensors[f"{name}.zeros"] = m.weight_zero.reshape(m.out_features, -1).numpy().astype(np.int8)
        if m.bias is not None:
            tensors[f"{name}.bias"] = m.bias.detach().numpy().astype(np.float32)
        layers[name] = {"in": m.in_features, "out": m.out_features, "w_bits": m.w_spec.bits,
                        "w_symmetric": m.w_spec.symmetric, "group_size": group,
                        "a_bits": None if m.a_spec is None else m.a_spec.bits,
                        "a_symmetric": True if m.a_spec is None else m.a_spec.symmetric}
    if not layers:
        raise ValueError("the model has no quantized layers to export; quantize it first")
    meta = {"layers": layers, "bit_plan": {n: l["a_bits"] for n, l in layers.items()},
            "prune_plan": prune_plan or {}}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "model": json.dumps(meta)})
    return path


@dataclass(frozen=True)
class ExportedLinear:
    """One exported layer: its integers and how to compute its exact output integers."""
    name: str
    weight: np.ndarray          # int8 (out, in): unpacked int4 or int8 values
    scales: np.ndarray          # float32 (out, groups)
    zeros: np.ndarray           # int8 (out, groups)
    bias: np.ndarray | None
    w_bits: int
    a_bits: int | None
    a_symmetric: bool
    group_size: int

    def quantize_input(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-token integers of float input ``x`` (M, in): ``(xq, scale (M,1), zero (M,1))``."""
        if self.a_bits is None:
            raise ValueError(f"{self.name} keeps float activations: it has no integer input")
        if x.dim() != 2 or x.shape[1] != self.weight.shape[1]:
            raise ValueError(f"{self.name}: input must be (M, {self.weight.shape[1]}), got {tuple(x.shape)}")
        spec = QuantSpec(self.a_bits, symmetric=self.a_symmetric, granularity="row")
        scale, zero = qparams(x.float(), spec)
        return quantize(x.float(), spec, scale, zero).numpy(), scale.numpy(), zero.numpy()

    def accumulators(self, xq: np.ndarray) -> np.ndarray:
        """The exact int32 per-group sums Σ xq·wq, shape (M, out, groups): what hardware computes."""
        return group_accumulators(xq, self.weight, self.group_size, x_bits=self.a_bits,
                                  w_bits=self.w_bits, x_signed=self.a_symmetric)

    def forward(self, x: torch.Tensor) -> np.ndarray:
        """Float output from the integers: Σ_g x_s·w_s·(acc - x_z·Σw - w_z·Σx + K_g·x_z·w_z) + bias."""
        xq, xs, xz = self.quantize_input(x)
        acc = self.accumulators(xq).astype(np.float64)
        g = self.group_size
        xq64, w64 = xq.astype(np.int64), self.weight.astype(np.int64)
        wsum = w64.reshape(w64.shape[0], -1, g).sum(-1)                 # (out, groups)
        xsum = xq64.reshape(xq64.shape[0], -1, g).sum(-1)               # (M, groups)
        zw = self.zeros.astype(np.float64)
        exact = acc - xz[:, :, None] * wsum[None] - zw[None] * xsum[:, None, :] \
            + g * xz[:, :, None] * zw[None]
        y = (exact * self.scales[None].astype(np.float64)).sum(-1) * xs.astype(np.float64)
        return (y if self.bias is None else y + self.bias).astype(np.float32)


def load_export(path: str | os.PathLike) -> tuple[dict, dict[str, ExportedLinear]]:
    """``(metadata, layers)`` of an export written by :func:`export_model`."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"export {str(path)!r} does not exist")
    with safe_open(str(path), framework="numpy") as f:
        header = f.metadata() or {}
    if header.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not an {FORMAT} export (format {header.get('format')!r})")
    meta, t = json.loads(header["model"]), load_file(str(path))
    layers = {}
    for name, info in meta["layers"].items():
        q = t[f"{name}.qweight"]
        weight = unpack_int4(q) if info["w_bits"] == 4 else q.astype(np.int8)
        layers[name] = ExportedLinear(name, weight, t[f"{name}.scales"], t[f"{name}.zeros"],
                                      t.get(f"{name}.bias"), info["w_bits"], info["a_bits"],
                                      info["a_symmetric"], info["group_size"])
    return meta, layers
