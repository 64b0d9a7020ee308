"""Quantizers: float tensors to the integers of :mod:`golden.intref` and back.

Every quantizer works on a 2-D view ``(N, K)`` where ``K`` is the reduction
axis of the matmul the tensor feeds (input features).  Granularity says which
elements share one scale (and zero point):

``tensor``  one for the whole tensor (static activation quantization)
``row``     one per row: per token for activations, per output channel for weights
``group``   one per row and per run of ``group_size`` consecutive K entries
``column``  one per K column: per input channel (static, calibrated activations)

Integers are ``q = clamp(round_half_even(x / scale) + zero, qmin, qmax)`` with
``(qmin, qmax)`` from :func:`golden.intref.int_range`: signed for symmetric
specs (``zero = 0``), unsigned with a zero point for asymmetric ones.  The
fake-quant value is ``(q - zero) * scale``; :mod:`golden.intref` computes the
same integers' matmul exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .intref import int_range

__all__ = ["GRANULARITIES", "QuantError", "QuantSpec", "qparams", "quantize", "centered", "dequantize",
           "fake_quant", "StaticObserver"]

GRANULARITIES = ("tensor", "row", "group", "column")
SUPPORTED_BITS = (4, 8)
MIN_SCALE = 1e-8   # an all-zero slice still gets a finite scale


class QuantError(ValueError):
    """Input a quantizer cannot honestly handle (bad width, shape, NaN/Inf)."""


@dataclass(frozen=True)
class QuantSpec:
    """How one tensor is quantized.

    Parameters
    ----------
    bits : 4 or 8.
    symmetric : signed integers with zero point 0 (True) or unsigned with a zero point.
    granularity : one of :data:`GRANULARITIES`.
    group_size : K entries per group, for ``granularity="group"``.
    """
    bits: int
    symmetric: bool = True
    granularity: str = "row"
    group_size: int = 128

    def __post_init__(self):
        if self.bits not in SUPPORTED_BITS:
            raise QuantError(f"bits must be one of {SUPPORTED_BITS}, not {self.bits!r}")
        if self.granularity not in GRANULARITIES:
            raise QuantError(f"granularity must be one of {GRANULARITIES}, not {self.granularity!r}")
        if not isinstance(self.group_size, int) or self.group_size < 1:
            raise QuantError(f"group_size must be a positive integer, not {self.group_size!r}")

    def group_width(self, k: int) -> int:
        """K entries that share one scale along a row of width ``k``: ``group_size`` for group
        granularity, the whole row otherwise.  Raises if groups do not tile the row."""
        if self.granularity != "group":
            return k
        if k % self.group_size:
            raise QuantError(f"group size {self.group_size} does not divide the dimension {k}")
        return self.group_size

    @property
    def qrange(self) -> tuple[int, int]:
        return int_range(self.bits, signed=self.symmetric)

    @property
    def centered_max(self) -> int:
        """The largest ``|q - zero|`` this spec's integers can have (what bounds an exact matmul)."""
        qmin, qmax = self.qrange
        return max(-qmin, qmax) if self.symmetric else qmax - qmin

    def __str__(self) -> str:
        kind = "sym" if self.symmetric else "asym"
        gran = f"group{self.group_size}" if self.granularity == "group" else self.granularity
        return f"int{self.bits}-{kind}-{gran}"


def _view(x: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """Reshape a 2-D ``(N, K)`` tensor so that one quantization slice is one last-axis run."""
    if x.dim() != 2:
        raise QuantError(f"quantizers take a 2-D (N, K) tensor, got shape {tuple(x.shape)}")
    n, k = x.shape
    if spec.granularity == "tensor":
        return x.reshape(1, n * k)
    if spec.granularity == "row":
        return x
    if spec.granularity == "column":
        return x.t()
    g = spec.group_width(k)
    return x.reshape(n * k // g, g)


def _unview(v: torch.Tensor, spec: QuantSpec, shape: torch.Size) -> torch.Tensor:
    return v.t() if spec.granularity == "column" else v.reshape(shape)


def _check_finite(x: torch.Tensor, what: str) -> None:
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise QuantError(f"{what} holds {bad} NaN/Inf value(s); refusing to quantize")


def _params_from_range(lo: torch.Tensor, hi: torch.Tensor, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
    qmin, qmax = spec.qrange
    if spec.symmetric:
        scale = torch.maximum(lo.abs(), hi.abs()) / qmax
        return scale.clamp_min(MIN_SCALE), torch.zeros_like(scale)
    lo, hi = lo.clamp(max=0), hi.clamp(min=0)   # zero must be representable exactly
    scale = ((hi - lo) / (qmax - qmin)).clamp_min(MIN_SCALE)
    zero = torch.clamp(torch.round(-lo / scale) + qmin, qmin, qmax)
    return scale, zero


def qparams(x: torch.Tensor, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, zero)`` per slice of ``x``, shaped ``(slices, 1)`` in the view of ``spec``."""
    _check_finite(x, "tensor")
    v = _view(x.detach().float(), spec)
    return _params_from_range(v.amin(dim=1, keepdim=True), v.amax(dim=1, keepdim=True), spec)


def quantize(x: torch.Tensor, spec: QuantSpec, scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    """Integers of ``x`` (int32, same shape as ``x``) for the given per-slice parameters."""
    qmin, qmax = spec.qrange
    v = _view(x.float(), spec)
    q = torch.clamp(torch.round(v / scale) + zero, qmin, qmax)
    return _unview(q, spec, x.shape).to(torch.int32)


def centered(q: torch.Tensor, spec: QuantSpec, zero: torch.Tensor) -> torch.Tensor:
    """``q - zero`` (float32 holding integers, same shape as ``q``): what the integer matmul multiplies."""
    return _unview(_view(q.float(), spec) - zero, spec, q.shape)


def dequantize(q: torch.Tensor, spec: QuantSpec, scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    """Float value of integers ``q``: ``(q - zero) * scale``."""
    v = _view(q.float(), spec)
    return _unview((v - zero) * scale, spec, q.shape)


def fake_quant(x: torch.Tensor, spec: QuantSpec, scale: torch.Tensor | None = None,
               zero: torch.Tensor | None = None) -> torch.Tensor:
    """Quantize and dequantize any-rank ``x`` (last axis = K); dynamic unless ``scale`` is given."""
    shape, dtype = x.shape, x.dtype
    x2 = x.reshape(-1, shape[-1])
    if scale is None:
        scale, zero = qparams(x2, spec)
    else:
        _check_finite(x2, "tensor")
    q = quantize(x2, spec, scale, zero)
    return dequantize(q, spec, scale, zero).reshape(shape).to(dtype)


class StaticObserver:
    """Running min/max over calibration batches, frozen into static ``(scale, zero)``.

    Only ``tensor`` and ``column`` granularity can be static: token rows differ
    from batch to batch, so per-row or per-group scales must be dynamic.
    """

    def __init__(self, spec: QuantSpec):
        if spec.granularity not in ("tensor", "column"):
            raise QuantError(f"static quantization needs tensor or column granularity, not {spec.granularity!r}")
        self.spec = spec
        self.lo: torch.Tensor | None = None
        self.hi: torch.Tensor | None = None

    def observe(self, x: torch.Tensor) -> None:
        x2 = x.detach().float().reshape(-1, x.shape[-1])
        _check_finite(x2, "calibration activation")
        v = _view(x2, self.spec)
        lo, hi = v.amin(dim=1, keepdim=True), v.amax(dim=1, keepdim=True)
        self.lo = lo if self.lo is None else torch.minimum(self.lo, lo)
        self.hi = hi if self.hi is None else torch.maximum(self.hi, hi)

    def params(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.lo is None:
            raise QuantError("static quantizer was never calibrated: observe() some activations first")
        return _params_from_range(self.lo, self.hi, self.spec)
