"""Python face of the compiled kernels (``cpu._w4``): checks, dispatch, and the one warning.

Weights come in four forms, told apart by dtype and rank: ``uint8 (N, K/2)``
is packed int4 (:func:`pack_weights`, the export's layout), ``int8 (N, K)``
int8 weights (W8A8 and W8A4); ``uint8 (N/8, K/8, 32)`` and ``int8 (N/8, K/4,
32)`` are the same values tiled for SIMD lanes (:func:`tile_weights`; the fast
form on x86, made once per layer).  :func:`group_sums` returns exactly
:func:`golden.group_accumulators` of the weights, on every path; the tests hold
each path to that.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

import golden
import golden.quant as golden_quant

from . import _w4

__all__ = ["PATHS", "available_paths", "best_path", "group_sums", "last_loop", "pack_weights", "quantize_rows",
           "requantized_matmul", "scaled_matmul", "tile_weights", "weight_bits"]

#: Every path the source has; :func:`available_paths` says which this build and CPU can run.
PATHS = ("scalar", "avx2", "vnni", "amx", "neon")
_warned = False


#: What this build and CPU can run, slowest first; CPU flags do not change, so it is read once.
_AVAILABLE = tuple(_w4.available_paths())


def available_paths() -> list[str]:
    return list(_AVAILABLE)


def last_loop() -> str:
    """The loop this thread's last kernel call ran: ``"amx tiles"`` (AMX prefill), or the path's name and
    the weight form, e.g. ``"vnni tiled"``, ``"avx2 rows"`` or ``"scalar rows"`` (what a path falls back
    to where its loops do not apply, such as group sizes they do not take)."""
    return _w4.last_loop()


def best_path() -> str:
    """The fastest available path (what ``impl="auto"`` takes); warns once when only the portable scalar
    loop is left."""
    global _warned
    paths = available_paths()
    if paths == ["scalar"] and not _warned:
        warnings.warn("this CPU has none of AVX2, AVX-512 VNNI or Arm dot product: the W4 kernels run their "
                      "portable scalar loop (exact, but slow)", RuntimeWarning, stacklevel=3)
        _warned = True
    return paths[-1]


def pack_weights(w: np.ndarray) -> torch.Tensor:
    """int4 weights (N, K) as the kernels and the export store them: (N, K/2) uint8, two per byte."""
    return torch.from_numpy(golden.pack_int4(w))


def tile_weights(w: torch.Tensor) -> torch.Tensor:
    """Packed int4 ``uint8 (N, K/2)`` or int8 ``(N, K)`` weights rearranged into their tiled form.

    * int4 → ``uint8 (N/8, K/8, 32)``: block ``(b, c)`` holds rows ``8b..8b+7`` × columns
      ``8c..8c+7``; its byte ``4r + i`` carries ``w[8b + r, 8c + i]`` in the low nibble and
      ``w[8b + r, 8c + 4 + i]`` in the high one.
    * int8 → ``int8 (N/8, K/4, 32)``: byte ``4r + i`` of block ``(b, c)`` is ``w[8b + r, 4c + i]``.

    The AVX2 loop then keeps one output row per 32-bit lane (no horizontal sums per group) and
    reads a thread's weights as one stream.  Same values, same results: every path is exact on
    every form.  On Arm keep the plain forms: the NEON loops read those, tiled weights take the
    scalar loop there."""
    if not isinstance(w, torch.Tensor) or w.dtype not in (torch.uint8, torch.int8) or w.dim() != 2:
        raise TypeError(f"tile_weights takes packed int4 weights, a uint8 tensor (N, K/2), or int8 weights (N, K); "
                        f"got {getattr(w, 'dtype', type(w))} {tuple(getattr(w, 'shape', ()))}")
    n, width = w.shape
    if w.dtype == torch.int8:
        if n % 8 or width % 4:
            raise ValueError(f"tiling int8 weights needs N a multiple of 8 and K of 4; got N = {n}, K = {width}")
        return w.reshape(n // 8, 8, width // 4, 4).permute(0, 2, 1, 3).reshape(n // 8, width // 4, 32).contiguous()
    if n % 8 or width % 4:
        raise ValueError(f"tiling int4 weights needs N and K to be multiples of 8; got N = {n}, K = {2 * width}")
    codes = torch.stack((w & 0xF, w >> 4), dim=-1).reshape(n // 8, 8, width // 4, 2, 4)
    codes = codes.permute(0, 2, 1, 4, 3)                      # (b, c, r, i, low/high)
    return (codes[..., 0] | (codes[..., 1] << 4)).reshape(n // 8, width // 4, 32).contiguous()


def weight_bits(w: torch.Tensor) -> int:
    """4 for packed or tiled int4 weights (uint8), 8 for plain or tiled int8 weights: the one dtype rule."""
    return 4 if w.dtype == torch.uint8 else 8


def _checked_path(x: torch.Tensor, w_packed: torch.Tensor, group: int, a_bits: int, impl: str,
                  check_range: bool) -> str:
    if a_bits not in (4, 8):
        raise ValueError(f"activation bits must be 4 or 8, not {a_bits!r}")
    if not isinstance(x, torch.Tensor) or not isinstance(w_packed, torch.Tensor):
        raise TypeError("x and w_packed must be torch tensors")
    if x.dtype != torch.int8:
        raise TypeError(f"activations must be an int8 tensor (int4 values live in int8), not {x.dtype}")
    if w_packed.dtype not in (torch.uint8, torch.int8):
        raise TypeError(f"weights must be uint8 (packed int4, two per byte) or int8 (int8 weights), "
                        f"not {w_packed.dtype}")
    bits, tiled = weight_bits(w_packed), w_packed.dim() == 3
    per_row = (32 // bits if tiled else 8 // bits) * w_packed.shape[1] if w_packed.dim() >= 2 else -1
    if (x.dim() != 2 or w_packed.dim() not in (2, 3) or x.shape[1] != per_row
            or (tiled and w_packed.shape[2] != 32)):
        want = {(4, False): "packed int4 weights (N, K/2)", (8, False): "int8 weights (N, K)",
                (4, True): "tiled int4 weights (N/8, K/8, 32)", (8, True): "tiled int8 weights (N/8, K/4, 32)"}[bits, tiled]
        raise ValueError(f"shape mismatch: need x (M, K) and {want}; got {tuple(x.shape)} "
                         f"and {tuple(w_packed.shape)}")
    if not x.is_contiguous() or not w_packed.is_contiguous():
        raise ValueError("x and w_packed must be contiguous (call .contiguous() once, outside the hot loop)")
    if not isinstance(group, int) or group < 1 or x.shape[1] % group:
        raise ValueError(f"group size {group!r} does not divide K = {x.shape[1]}")
    if check_range and a_bits == 4 and x.numel() and (int(x.min()) < -8 or int(x.max()) > 7):
        raise OverflowError(f"int4 activations must lie in [-8, 7]; got [{int(x.min())}, {int(x.max())}]")
    if impl not in ("auto", *PATHS):
        raise ValueError(f"unknown kernel path {impl!r}; choose auto or one of {PATHS}")
    return best_path() if impl == "auto" else impl


def _run(fn, *args):
    try:
        return fn(*args)
    except RuntimeError as err:       # the extension's own checks (path, tables, out buffer): one line
        raise ValueError(str(err).splitlines()[0]) from None


def quantize_rows(x: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token symmetric int8/int4 activations of float ``x (M, K)`` and their float32 steps ``(M,)``:
    the integers and scales of :func:`golden.quant.qparams` / :func:`golden.quant.quantize` with a
    symmetric per-row spec, bit for bit, without their tensor temporaries (decode calls it per token)."""
    if bits not in (4, 8):
        raise ValueError(f"activation bits must be 4 or 8, not {bits!r}")
    if not isinstance(x, torch.Tensor) or x.dtype != torch.float32 or x.dim() != 2:
        raise TypeError(f"x must be a float32 tensor (M, K), not {getattr(x, 'dtype', type(x))} "
                        f"{tuple(getattr(x, 'shape', ()))}")
    if not x.is_contiguous():
        raise ValueError("x must be contiguous")
    q, scale = _run(_w4.quantize_rows, x, bits, golden_quant.MIN_SCALE)
    return q, scale


def group_sums(x: torch.Tensor, w_packed: torch.Tensor, group: int, *, a_bits: int = 8, impl: str = "auto",
               out: torch.Tensor | None = None, check_range: bool = True) -> torch.Tensor:
    """Exact int32 group sums ``(M, N, K // group)`` of int8/int4 activations ``x (M, K)`` and packed
    int4 weights ``w_packed (N, K/2)`` (or int8 weights ``(N, K)``): :func:`golden.group_accumulators`.

    ``a_bits`` 4 or 8: int4 activations are int8 tensors holding values in ``[-8, 7]``;
    ``check_range`` verifies that (one pass over ``x``; turn it off in a hot loop whose inputs
    come from a quantizer).  ``impl`` forces a path (``"scalar"``, ``"avx2"``, ``"vnni"``,
    ``"amx"``, ``"neon"``); ``out`` reuses a buffer so the call allocates nothing.
    """
    path = _checked_path(x, w_packed, group, a_bits, impl, check_range)
    return _run(_w4.group_sums, x, w_packed, group, path, out)


def scaled_matmul(x: torch.Tensor, w_packed: torch.Tensor, group: int, x_scale: torch.Tensor,
                  w_scale: torch.Tensor, *, a_bits: int = 8, impl: str = "auto", out: torch.Tensor | None = None,
                  check_range: bool = True) -> torch.Tensor:
    """Float32 ``(M, N)``: ``x_scale[m] · Σ_g sums[m, n, g] · w_scale[n, g]`` with the exact sums of
    :func:`group_sums`, fused (the sums never reach memory).  The float arithmetic is
    :func:`golden.linear.scaled_linear`'s, operation for operation (float32, group order, no fused
    multiply-add), so the result is bit-identical to it.  On ``"amx"``, prefill (16 tokens or more, tiled
    weights, N a multiple of 16, groups a multiple of 64) runs on AMX tiles; :func:`last_loop` tells."""
    path = _checked_path(x, w_packed, group, a_bits, impl, check_range)
    return _run(_w4.scaled, x, w_packed, group, x_scale, w_scale, path, out)


def requantized_matmul(x: torch.Tensor, w_packed: torch.Tensor, group: int, params: golden.RequantParams, *,
                       a_bits: int = 8, impl: str = "auto", out: torch.Tensor | None = None,
                       check_range: bool = True) -> torch.Tensor:
    """int8 ``(M, N)`` equal to :func:`golden.requantize` of the group sums, fused; ``params`` from
    :func:`golden.requant_params` (multipliers of ``mult_bits`` ≤ 16, checked)."""
    path = _checked_path(x, w_packed, group, a_bits, impl, check_range)
    if params.out_bits not in golden.requant.OUT_BITS:
        raise ValueError(f"output bits must be 4 or 8, not {params.out_bits!r}")
    wmul = torch.as_tensor(golden.check_int(params.wmul, params.mult_bits, signed=False, name="wmul"))
    tmul = torch.as_tensor(golden.check_int(params.tmul, params.mult_bits, signed=False, name="tmul"))
    if params.mult_bits > golden.requant.MULT_BITS:
        raise ValueError(f"multipliers of {params.mult_bits} bits exceed the kernel's {golden.requant.MULT_BITS}")
    return _run(_w4.requantized, x, w_packed, group, wmul.contiguous(), tmul.reshape(-1).contiguous(),
                int(params.shift), int(params.out_bits), path, out)
