"""Activation-aware token pruning: drop the least-attended tokens for the rest of the network.

In each block listed in a :class:`PrunePlan`, every token gets an importance
score: the attention probability it receives, averaged over heads and over the
queries that can see it (under causal attention token ``k`` is seen by queries
``k..S-1``; dividing by that count keeps late tokens from losing just because
fewer queries exist).  After that block, only the ``keep_ratio`` most important
tokens (of those still present) go on; later blocks, the final norm and the LM
head never see the others.  Kept tokens stay in their original order and keep
their original positions (RoPE angles, ALiBi distances, causal mask), so the
network sees a shorter sequence, not a re-numbered one.

Bookkeeping for perplexity (:mod:`golden.eval`): only tokens that reach the LM
head make a prediction, so a pruned model is scored on the next-token
predictions of its kept positions; the reference model is scored on exactly
the same positions when the two are compared.  The decision uses the attention
of the whole window, as a prefill would, so a later token can influence which
earlier context is kept; that is the method's behaviour and is stated, not hidden.

The mechanism is hooks on the blocks (no copy of any model's forward): a
pre-hook slices each block's per-position arguments to the kept positions, and
a hook after a pruning block drops the tokens.  Attention is switched to the
eager implementation while pruning, because only it exposes the probabilities.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from .models import arch_of, blocks

__all__ = ["PruneError", "PrunePlan", "PruneTrace", "token_pruning", "attention_importance"]


class PruneError(ValueError):
    """A pruning plan that cannot apply to this model or input."""


@dataclass(frozen=True)
class PrunePlan:
    """Prune after each block in ``layers`` (0-based), keeping ``keep_ratio`` of the tokens present."""
    layers: tuple[int, ...]
    keep_ratio: float

    def __post_init__(self):
        if not 0.0 < self.keep_ratio <= 1.0:
            raise PruneError(f"keep_ratio must be in (0, 1], not {self.keep_ratio!r}")
        if any(not isinstance(i, int) or i < 0 for i in self.layers):
            raise PruneError(f"layers must be non-negative block indices, not {self.layers!r}")
        object.__setattr__(self, "layers", tuple(sorted(set(self.layers))))

    def kept_count(self, present: int) -> int:
        """Tokens that survive one pruning step with ``present`` tokens (at least one)."""
        return max(1, math.ceil(self.keep_ratio * present - 1e-9))

    def to_dict(self) -> dict:
        return {"layers": list(self.layers), "keep_ratio": self.keep_ratio,
                "importance": "attention received, mean over heads and causal queries"}

    @classmethod
    def from_dict(cls, d: dict) -> "PrunePlan":
        return cls(tuple(int(i) for i in d["layers"]), float(d["keep_ratio"]))


@dataclass
class PruneTrace:
    """What one forward pass kept: ``kept`` are original positions reaching the LM head;
    ``tokens_in[b]`` is how many tokens block ``b`` processed (its matmuls' M)."""
    seq_len: int = 0
    kept: torch.Tensor | None = None
    tokens_in: list[int] = field(default_factory=list)

    @property
    def token_share(self) -> float:
        """Mean share of the tokens each block processed: the fraction of linear-layer MACs left."""
        return sum(self.tokens_in) / (len(self.tokens_in) * self.seq_len) if self.tokens_in else 1.0


def attention_importance(probs: torch.Tensor) -> torch.Tensor:
    """Importance of each key token from attention probabilities ``(1, heads, queries, keys)``.

    Mean over heads of the probability received, divided by the number of queries at or after the key
    (the ones a causal mask lets see it).
    """
    q, k = probs.shape[-2:]
    received = probs[0].float().mean(0).sum(0)                       # (keys,)
    seen_by = torch.arange(k, 0, -1, dtype=torch.float32) if q == k else torch.full((k,), float(q))
    return received / seen_by


# Per-position arguments a block may receive, and the dimension(s) that index positions.
_SEQ_ARGS = {"attention_mask": (-2, -1), "position_ids": (-1,), "cache_position": (0,),
             "alibi": (-1,), "position_embeddings": (1,)}


def _slice(value, dims: tuple[int, ...], idx: torch.Tensor, full: int):
    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(_slice(v, dims, idx, full) for v in value)
    for d in dims:
        if value.shape[d] == full:                # a broadcast dimension of size 1 stays as it is
            value = value.index_select(d % value.dim(), idx)
    return value


@contextmanager
def token_pruning(model: nn.Module, plan: PrunePlan):
    """Run ``model`` with ``plan`` inside the ``with``; yields the :class:`PruneTrace` of the last pass.

    Batch size must be 1 (each sequence keeps its own tokens) and there is no KV cache.
    """
    arch, layer_list = arch_of(model), blocks(model)
    if plan.layers and plan.layers[-1] >= len(layer_list):
        raise PruneError(f"pruning layer {plan.layers[-1]} does not exist: the model has "
                         f"{len(layer_list)} blocks (0..{len(layer_list) - 1})")
    trace = PruneTrace()
    state = {"idx": None, "probs": None}
    handles = []

    def before_block(i):
        def hook(module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            if hidden.shape[0] != 1:
                raise PruneError(f"token pruning runs one sequence at a time, got a batch of {hidden.shape[0]}")
            if i == 0:
                trace.seq_len, trace.kept, trace.tokens_in[:] = hidden.shape[1], None, []
                state["idx"] = None
            if kwargs.get("past_key_values") is not None or kwargs.get("layer_past") is not None:
                raise PruneError("token pruning does not support a KV cache: call the model with use_cache=False")
            trace.tokens_in.append(hidden.shape[1])
            if state["idx"] is not None:
                for name, value in kwargs.items():
                    if name in _SEQ_ARGS:
                        kwargs[name] = _slice(value, _SEQ_ARGS[name], state["idx"], trace.seq_len)
                    elif isinstance(value, torch.Tensor) and trace.seq_len in value.shape[1:]:
                        raise PruneError(f"block argument {name!r} looks per-position and is not handled")
            return args, kwargs
        return hook

    def after_block(i):
        def hook(module, args, output):
            probs, state["probs"] = state["probs"], None
            hidden = output[0] if isinstance(output, tuple) else output
            if probs is None:
                raise PruneError(f"block {i} exposed no attention probabilities")
            n_keep = plan.kept_count(hidden.shape[1])
            local = torch.topk(attention_importance(probs), n_keep).indices.sort().values
            base = torch.arange(trace.seq_len) if state["idx"] is None else state["idx"]
            state["idx"] = base[local]
            hidden = hidden.index_select(1, local)
            return (hidden, *output[1:]) if isinstance(output, tuple) else hidden
        return hook

    def grab_probs(module, args, output):
        probs = output[1] if isinstance(output, tuple) and len(output) > 1 else None
        state["probs"] = probs if isinstance(probs, torch.Tensor) and probs.dim() == 4 else None

    config = model.config
    saved_impl = getattr(config, "_attn_implementation", None)
    try:
        if plan.layers:
            config._attn_implementation = "eager"
        for i, block in enumerate(layer_list):
            handles.append(block.register_forward_pre_hook(before_block(i), with_kwargs=True))
            if i in plan.layers:
                handles.append(block.get_submodule(arch.attention).register_forward_hook(grab_probs))
                handles.append(block.register_forward_hook(after_block(i)))
        # The last block's hook finalises the trace: kept positions are whatever reaches the head.
        def finish(module, args, output):
            trace.kept = torch.arange(trace.seq_len) if state["idx"] is None else state["idx"].clone()
        handles.append(layer_list[len(layer_list) - 1].register_forward_hook(finish))
        yield trace
    finally:
        for h in handles:
            h.remove()
        if plan.layers:
            config._attn_implementation = saved_impl
