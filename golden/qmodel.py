"""The fake-quant model: every quantizable linear becomes a :class:`QuantLinear`.

Weights are quantized once (RTN here, GPTQ in :mod:`golden.gptq`) and kept
as integers plus scales, the form the export and the integer oracle use.
Inputs of each linear are quantized to the bits of the layer's entry in the
bit plan (per token, dynamic).  A layer with integer weights and integer
inputs computes its output from the integers, exactly as
:func:`golden.linear.scaled_linear` defines it (exact group sums, float32
scaling in a fixed order), so the CPU fallback can reproduce the model bit for
bit; a layer that keeps float weights or float inputs multiplies floats.
Softmax, norms, embeddings and the LM head stay in floating point.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from .models import quantizable_linears
from .linear import scaled_linear
from .quant import QuantError, QuantSpec, centered, dequantize, fake_quant, qparams, quantize

__all__ = ["QuantConfig", "QuantLinear", "auto_group_size", "quantize_model", "quant_layers", "set_act_bits"]


@dataclass(frozen=True)
class QuantConfig:
    """One configuration of the comparison table.

    ``w_bits``/``a_bits`` of ``None`` keep float weights / activations.
    ``group_size`` of ``None`` means one weight scale per output channel.
    ``bit_plan`` maps linear names to activation bits, overriding ``a_bits``.
    """
    name: str
    w_bits: int | None = 4
    a_bits: int | None = 8
    group_size: int | None = 128
    weight_method: str = "rtn"          # "rtn" or "gptq"
    a_symmetric: bool = True
    bit_plan: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        for what, bits in (("w_bits", self.w_bits), ("a_bits", self.a_bits), *self.bit_plan.items()):
            if bits not in (None, 4, 8):
                raise QuantError(f"{what}: bits must be 4 or 8 (or None for float), not {bits!r}")
        if self.weight_method not in ("rtn", "gptq"):
            raise QuantError(f"weight_method must be 'rtn' or 'gptq', not {self.weight_method!r}")

    def weight_spec(self, in_features: int) -> QuantSpec | None:
        if self.w_bits is None:
            return None
        if self.group_size is None or self.group_size >= in_features:
            return QuantSpec(self.w_bits, granularity="row")
        return QuantSpec(self.w_bits, granularity="group", group_size=self.group_size)

    def act_spec(self, layer: str) -> QuantSpec | None:
        bits = self.bit_plan.get(layer, self.a_bits)
        return None if bits is None else QuantSpec(bits, symmetric=self.a_symmetric, granularity="row")


class QuantLinear(nn.Module):
    """A linear layer with integer weights and fake-quantized inputs.

    ``weight_q`` (int8 storage of int4/int8 values), ``weight_scale`` and
    ``weight_zero`` are what the export writes; ``weight`` is their float value.
    """

    def __init__(self, linear: nn.Linear, name: str, w_spec: QuantSpec | None,
                 a_spec: QuantSpec | None):
        super().__init__()
        self.name, self.w_spec, self.a_spec = name, w_spec, a_spec
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach().float()
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().float(), requires_grad=False)
        if w_spec is None:
            self.register_buffer("weight", w.clone())
            self.weight_q = self.weight_scale = self.weight_zero = None
        else:
            scale, zero = qparams(w, w_spec)
            q = quantize(w, w_spec, scale, zero)
            self.register_buffer("weight_q", q.to(torch.int8))
            self.register_buffer("weight_scale", scale)
            self.register_buffer("weight_zero", zero)
            self.register_buffer("weight", dequantize(q, w_spec, scale, zero))

    def set_integer_weight(self, q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> None:
        """Install integers computed elsewhere (GPTQ) for this layer's ``w_spec``."""
        self.weight_q, self.weight_scale, self.weight_zero = q.to(torch.int8), scale, zero
        self.weight = dequantize(q, self.w_spec, scale, zero)

    @contextmanager
    def _named_errors(self):
        """A quantizer's refusal (NaN/Inf input, ...) says which layer it came from."""
        try:
            yield
        except QuantError as exc:
            raise QuantError(f"{self.name}: {exc}") from None

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.a_spec is None:
            return x
        with self._named_errors():
            return fake_quant(x.float(), self.a_spec).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.w_spec is None or self.a_spec is None or self.a_spec.granularity != "row":
            return F.linear(self.quantize_input(x), self.weight, self.bias)
        rows = x.reshape(-1, self.in_features).float()
        with self._named_errors():
            x_scale, x_zero = qparams(rows, self.a_spec)
        xq = centered(quantize(rows, self.a_spec, x_scale, x_zero), self.a_spec, x_zero)
        wq = centered(self.weight_q, self.w_spec, self.weight_zero)
        y = scaled_linear(xq, x_scale, wq, self.weight_scale, self.w_spec.group_width(self.in_features),
                          self.a_spec.centered_max, self.w_spec.centered_max)
        if self.bias is not None:
            y += self.bias
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.in_features}->{self.out_features}, W={self.w_spec or 'float'}, A={self.a_spec or 'float'}"


def auto_group_size(model: nn.Module, preferred: int = 128) -> int:
    """``preferred`` if it divides every quantized layer's input width, else the largest power of
    two below it that does (SmolLM2's 576 = 4.5 × 128 gets 64)."""
    widths = {m.in_features for m in quantizable_linears(model).values()}
    g = preferred
    while g > 1 and any(w % g for w in widths):
        g //= 2
    return g


def quantize_model(model: nn.Module, config: QuantConfig) -> nn.Module:
    """Replace every quantizable linear of ``model`` in place (RTN weights); returns ``model``."""
    for name, linear in quantizable_linears(model).items():
        if isinstance(linear, QuantLinear):
            raise QuantError(f"{name} is already quantized; start from a float model")
        q = QuantLinear(linear, name, config.weight_spec(linear.in_features), config.act_spec(name))
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, q)
    return model


def quant_layers(model: nn.Module) -> dict[str, QuantLinear]:
    """The model's quantized layers by full module name (empty for a float model)."""
    return {n: m for n, m in model.named_modules() if isinstance(m, QuantLinear)}


def set_act_bits(model: nn.Module, plan: dict[str, int | None]) -> None:
    """Change the activation bits of already-quantized layers (the policy's sensitivity probes)."""
    layers = quant_layers(model)
    for name, bits in plan.items():
        if name not in layers:
            raise QuantError(f"no quantized layer named {name!r}")
        spec = layers[name].a_spec or QuantSpec(8, granularity="row")
        layers[name].a_spec = None if bits is None else replace(spec, bits=bits)
