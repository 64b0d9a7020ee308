"""The float32 output of a quantized linear layer, defined bit for bit from its integers.

A layer with integer activations ``xq (M, K)`` (one step ``xs[m]`` per token)
and integer weights ``wq (N, K)`` (one step ``ws[n, g]`` per output channel
and group of ``group`` inputs) outputs::

    acc[m, n, g] = Σ_{k in group g} xq[m, k] · wq[n, k]           (exact integers)
    y[m, n]      = 0
    y[m, n]      = y[m, n] + float32(acc[m, n, g]) · ws[n, g]     for g = 0, 1, ..., G-1
    y[m, n]      = y[m, n] · xs[m]

where every ``·`` and ``+`` is one float32 operation rounded to nearest even
(no fused multiply-add).  Fixing the order is what lets another
implementation — the CPU fallback's compiled kernels — reproduce the
fake-quant model exactly: multiplying dequantized floats (``F.linear``) rounds
in whatever order the BLAS library picks, and on an LLM whose attention-sink
token has a huge activation step one such rounding flips a requantized
integer and moves the perplexity by percents.

The exact sums come from float matmuls: products and partial sums of small
integers are exact in float32 while ``max|xq| · max|wq| · group < 2**24``
(float64 is used beyond that, up to ``2**53``), so the BLAS order cannot
change them.
"""
from __future__ import annotations

import torch

__all__ = ["EXACT_FLOAT32", "scaled_linear"]

#: Integers up to this magnitude, and every sum of them that stays below it, are exact in float32.
EXACT_FLOAT32 = 1 << 24
_EXACT_FLOAT64 = 1 << 53


def _exact_dtype(bound: int) -> torch.dtype:
    if bound < EXACT_FLOAT32:
        return torch.float32
    if bound < _EXACT_FLOAT64:
        return torch.float64
    raise OverflowError(f"group sums may reach {bound}, beyond what float64 holds exactly")


def scaled_linear(xq: torch.Tensor, x_scale: torch.Tensor, wq: torch.Tensor, w_scale: torch.Tensor,
                  group: int, x_max: int, w_max: int) -> torch.Tensor:
    """``y (M, N)`` float32, as the module docstring defines it.

    ``xq (M, K)`` and ``wq (N, K)`` hold integers (any dtype; zero points already
    subtracted) with ``|xq| ≤ x_max`` and ``|wq| ≤ w_max``; ``x_scale`` has M
    entries, ``w_scale`` is ``(N, K // group)``.  ``x_max``/``w_max`` choose the
    float type that keeps the group sums exact; they are bounds the caller's
    quantizers guarantee, not checked element by element.
    """
    if xq.dim() != 2 or wq.dim() != 2 or xq.shape[1] != wq.shape[1]:
        raise ValueError(f"scaled_linear needs xq (M, K) and wq (N, K), got {tuple(xq.shape)} and {tuple(wq.shape)}")
    (m, k), n = xq.shape, wq.shape[0]
    if not isinstance(group, int) or group < 1 or k % group:
        raise ValueError(f"group size {group!r} does not divide K = {k}")
    groups = k // group
    ws = w_scale.float().reshape(n, -1)
    xs = x_scale.float().reshape(-1)
    if ws.shape[1] != groups or xs.shape[0] != m:
        raise ValueError(f"scales do not match: w_scale {tuple(w_scale.shape)} for (N, G) = ({n}, {groups}), "
                         f"x_scale {tuple(x_scale.shape)} for M = {m}")
    dtype = _exact_dtype(x_max * w_max * group)
    x, w = xq.to(dtype), wq.to(dtype)
    y = torch.zeros(m, n, dtype=torch.float32)
    for g in range(groups):
        cols = slice(g * group, (g + 1) * group)
        acc = (x[:, cols] @ w[:, cols].T).float()          # exact integers, then float32(acc) as defined
        y = y + acc * ws[:, g]
    return y * xs[:, None]
