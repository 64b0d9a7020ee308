"""The whole quantized model on the CPU fallback: every W4/W8 linear runs on the compiled kernels.

:func:`to_cpu_fallback` swaps each :class:`golden.qmodel.QuantLinear` with 4- or 8-bit symmetric
weights and symmetric int4/int8 activations for a :class:`CpuLinear`, which

1. quantizes the input per token with :func:`cpu.quantize_rows` (golden's quantizer, bit for bit),
2. computes the exact int32 group sums and scales them in the same pass
   (:func:`cpu.scaled_matmul`: ``x_scale · Σ_g sums_g · w_scale_g`` in float32),
3. adds the bias.

The fake-quant layer computes the same integers and the same float32 operations in the same
order (:func:`golden.linear.scaled_linear`), so the fallback's outputs, logits and perplexity
are the fake-quant model's bit for bit.  Layers outside that form (float or asymmetric
activations, asymmetric weights) stay as they are, and :func:`to_cpu_fallback` says which.
"""
from __future__ import annotations

import torch
from torch import nn

from golden.qmodel import QuantLinear, quant_layers
from golden.quant import MIN_SCALE

from . import _w4
from .arena import weight_arena
from .kernels import _run, best_path, pack_weights, tile_weights, weight_bits

__all__ = ["CpuLinear", "to_cpu_fallback"]


class CpuLinear(nn.Module):
    """One W4A4/W4A8/W8A4/W8A8 linear layer on the compiled kernels (float in, float out).

    ``packed`` is uint8 ``(N, K/2)`` packed int4 or int8 ``(N, K)``.  Where the AVX2 loop runs (x86
    with AVX2 or VNNI) and both widths are multiples of 8, the weights are kept tiled
    (:func:`cpu.tile_weights`), the form that loop reads fastest; the values and results are the same.
    Weights and scales are copied into :func:`cpu.arena.weight_arena` (huge pages where Linux gives them)."""

    def __init__(self, name: str, packed: torch.Tensor, w_scale: torch.Tensor, bias: torch.Tensor | None,
                 a_bits: int, group: int):
        super().__init__()
        self.name, self.a_bits, self.group = name, a_bits, group
        self.w_bits = weight_bits(packed)
        self.out_features, self.in_features = packed.shape[0], packed.shape[1] * (8 // self.w_bits)
        self.path = best_path()
        self.tiled = self.path in ("avx2", "vnni", "amx") and self.out_features % 8 == 0 and self.in_features % 8 == 0
        # Weights and scales go to the huge-page arena (cpu.arena): decode streams them from memory on
        # every call, and in 2 MiB pages that stream runs ~25% faster on a small layer.
        arena = weight_arena()
        self.register_buffer("packed", arena.place(tile_weights(packed.contiguous()) if self.tiled else packed))
        self.register_buffer("w_scale", arena.place(w_scale.float().reshape(self.out_features, -1)))
        self.bias = None if bias is None else nn.Parameter(bias.detach().float(), requires_grad=False)
        # Ready before the first call: made there, through nn.Module's attribute machinery, it cost that
        # call ~6 µs (a tenth of a 768→3072 decode layer; every layer's first token pays it).
        self._operands: tuple | None = self._kernel_operands()

    # forward() keeps its extension arguments in one plain tuple: reading three buffers through
    # nn.Module.__getattr__ costs 2.6 µs a call, 5% of a 768→3072 decode layer.  Whatever can put new
    # tensors in their place (assignment, load_state_dict(assign=True), .to()/.float()) drops it.
    def __setattr__(self, name: str, value) -> None:
        if name in ("packed", "w_scale", "bias"):
            self.__dict__["_operands"] = None
        super().__setattr__(name, value)

    def _apply(self, fn, recurse: bool = True):
        self._operands = None
        return super()._apply(fn, recurse)

    @classmethod
    def from_quant_linear(cls, layer: QuantLinear) -> "CpuLinear":
        reason = unsupported(layer)
        if reason:
            raise ValueError(f"{layer.name}: {reason}")
        group = layer.w_spec.group_width(layer.in_features)
        if layer.w_spec.bits == 8:
            packed = layer.weight_q.to(torch.int8)
        else:
            packed = pack_weights(layer.weight_q.numpy().astype("int64"))
        return cls(layer.name, packed, layer.weight_scale, layer.bias, layer.a_spec.bits, group)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32 or not x.is_contiguous():
            return self(x.float().contiguous()).to(x.dtype)
        # One call into the extension: quantizer, kernel, bias and reshape (golden's operations in golden's
        # order).  Four calls from Python cost ~10 µs more, a third of a SmolLM2 decode layer.  The operands
        # were checked when the layer was built; the extension still checks shapes.
        operands = self._operands
        if operands is None:
            operands = self._operands = self._kernel_operands()
        return _run(_w4.linear, x, *operands)

    def _kernel_operands(self) -> tuple:
        """``_w4.linear``'s arguments after x, in order."""
        return self.packed, self.group, self.w_scale, self.bias, self.a_bits, MIN_SCALE, self.path

    def extra_repr(self) -> str:
        tiled = ", tiled" if self.tiled else ""
        return (f"{self.in_features}->{self.out_features}, W{self.w_bits}{tiled} group {self.group}, "
                f"A{self.a_bits} (cpu kernels)")


def unsupported(layer: QuantLinear) -> str | None:
    """Why ``layer`` cannot run on the kernels, or None when it can."""
    if layer.w_spec is None or layer.w_spec.bits not in (4, 8) or not layer.w_spec.symmetric:
        return "the kernels take 4- or 8-bit symmetric weights only"
    if layer.a_spec is None:
        return "float activations (the bit plan keeps this layer in float)"
    if not layer.a_spec.symmetric:
        return "the kernels take symmetric activations only"
    if layer.w_spec.bits == 4 and layer.in_features % 2:
        return "an odd input width cannot be packed two per byte"
    return None


def to_cpu_fallback(model: nn.Module) -> dict[str, str]:
    """Replace (in place) every quantized linear the kernels can run; returns ``{name: why}`` of the rest."""
    kept = {}
    for name, layer in quant_layers(model).items():
        reason = unsupported(layer)
        if reason:
            kept[name] = reason
            continue
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, CpuLinear.from_quant_linear(layer))
    return kept
