"""Activation-guided policy: which linear layers take 4-bit activations, and which keep 8.

Unit of decision: an *activation group*, the linears of one block that read
the same input tensor (LLaMA's q/k/v, gate/up; OPT's q/k/v), because the
hardware quantizes that tensor once for all of them.

1. Sensitivity: with the whole model at W4A8, each group alone goes to A4 and
   the increase of mean next-token loss (nats) on calibration windows is
   recorded.  Blocks before the group's are not re-run: their outputs are
   cached once per window, which halves the work on average.
2. Cost: a :class:`CostModel` gives each layer's cycles at A4 and A8.
   :class:`ProfileCost` reads a latency profile that ``python -m sim.cycle_model``
   writes from the TRIP core's cycle model (the shipped one: SmolLM2 on the
   ECP5-85F-sized core); :class:`MacCountCost` (MACs × 4-bit passes) is the
   fallback for models without a profile.
3. Plan: groups go to A4 in increasing order of loss per cycle saved until the
   share of MACs at A4 reaches the budget.  The :class:`BitPlan` is plain JSON
   (``save``/``load``) holding every number it was chosen from.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .cli import atomic_path
from .models import arch_of, blocks, linear_blocks, quantizable_linears
from .qmodel import quant_layers, set_act_bits

__all__ = ["CostModel", "MacCountCost", "ProfileCost", "PROFILE_FORMAT", "DEFAULT_PLAN", "DEFAULT_PROFILE",
           "ActivationGroup", "activation_groups", "measure_sensitivity", "BitPlan", "choose_plan", "PolicyError"]


class PolicyError(ValueError):
    """A budget, plan file or model the policy cannot work with."""


class CostModel(Protocol):
    """Latency of one linear layer: ``tokens`` rows of ``in_features`` into ``out_features``."""
    name: str

    def cycles(self, tokens: int, in_features: int, out_features: int, a_bits: int) -> float: ...


@dataclass(frozen=True)
class MacCountCost:
    """Cycles proportional to MACs × 4-bit passes: A4 one pass, A8 two (x = 16·hi + lo)."""
    name: str = "mac-count"

    def cycles(self, tokens: int, in_features: int, out_features: int, a_bits: int) -> float:
        return float(tokens * in_features * out_features * (a_bits // 4))


@dataclass(frozen=True)
class ProfileCost:
    """Cycles looked up in a hardware latency profile: a JSON table that the hardware side writes.

    ``python -m sim.cycle_model`` writes one from the TRIP core's cycle model (the
    model the RTL's cycle counter is checked against), for every linear shape
    of a model at one token count, as the paper profiled its target device.
    golden reads the numbers and never imports the hardware code.
    """
    name: str
    tokens: int
    table: dict[str, float]

    @staticmethod
    def key(in_features: int, out_features: int, a_bits: int) -> str:
        return f"{in_features}x{out_features}xA{a_bits}"

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ProfileCost":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise PolicyError(f"cannot read latency profile {str(path)!r}: {exc}") from None
        if data.get("format") != PROFILE_FORMAT:
            raise PolicyError(f"{str(path)!r} is not a latency profile ({PROFILE_FORMAT})")
        return cls(data["name"], int(data["tokens"]), {k: float(v) for k, v in data["cycles"].items()})

    def cycles(self, tokens: int, in_features: int, out_features: int, a_bits: int) -> float:
        if tokens != self.tokens:
            raise PolicyError(f"latency profile {self.name!r} was made for {self.tokens} tokens, not {tokens}; "
                              f"make one with `python -m sim.cycle_model --tokens {tokens}` or pass --tokens "
                              f"{self.tokens}")
        try:
            return self.table[self.key(in_features, out_features, a_bits)]
        except KeyError:
            raise PolicyError(f"latency profile {self.name!r} has no {in_features}→{out_features} layer at "
                              f"A{a_bits}; make one for this model with `python -m sim.cycle_model --model PATH`"
                              ) from None


PROFILE_FORMAT = "agile-quant-latency-profile-v1"


@dataclass(frozen=True)
class ActivationGroup:
    block: int
    layers: tuple[str, ...]                 # full linear names sharing one input
    in_features: int
    out_features: tuple[int, ...]

    @property
    def name(self) -> str:
        first = self.layers[0]
        return first if len(self.layers) == 1 else first + "+" + "+".join(n.rsplit(".", 1)[-1] for n in self.layers[1:])

    def cycles(self, cost: CostModel, tokens: int, a_bits: int) -> float:
        return sum(cost.cycles(tokens, self.in_features, n, a_bits) for n in self.out_features)

    def macs(self, tokens: int) -> int:
        return tokens * self.in_features * sum(self.out_features)


@torch.no_grad()
def activation_groups(model: nn.Module) -> list[ActivationGroup]:
    """Group quantizable linears by the input tensor they read, found by running two tokens through."""
    linears = quantizable_linears(model)
    seen: dict[str, torch.Tensor] = {}      # the tensors themselves, so no id is reused while grouping
    handles = [m.register_forward_pre_hook(lambda m, a, n=n: seen.__setitem__(n, a[0]))
               for n, m in linears.items()]
    try:
        model(torch.zeros(1, 2, dtype=torch.long), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    block_of = linear_blocks(model)
    groups: dict[tuple[int, int], list[str]] = {}
    for name in linears:                       # data-flow order is kept
        groups.setdefault((block_of[name], id(seen[name])), []).append(name)
    return [ActivationGroup(b, tuple(ns), linears[ns[0]].in_features, tuple(linears[n].out_features for n in ns))
            for (b, _), ns in groups.items()]


def _blocks_parent(model: nn.Module) -> tuple[nn.Module, str]:
    parent, _, attr = arch_of(model).blocks.rpartition(".")
    return model.get_submodule(parent), attr


@torch.no_grad()
def _block_inputs(model: nn.Module, window: torch.Tensor) -> list[torch.Tensor]:
    """Hidden state entering each block for one window."""
    inputs: list[torch.Tensor] = []
    handles = [b.register_forward_pre_hook(
        lambda m, a, k: inputs.append((a[0] if a else k["hidden_states"]).clone()), with_kwargs=True)
        for b in blocks(model)]
    try:
        model(window, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return inputs


@torch.no_grad()
def _loss_from_block(model: nn.Module, window: torch.Tensor, start: int, hidden: torch.Tensor) -> float:
    """Mean next-token loss of ``window`` running only blocks ``start..`` on the cached ``hidden``.

    The block list is swapped for its tail for one call; embeddings still run (cheap) but their output is
    replaced by the cached hidden state at the first remaining block.
    """
    parent, attr = _blocks_parent(model)
    full = getattr(parent, attr)
    tail = nn.ModuleList(list(full)[start:])
    handle = tail[0].register_forward_pre_hook(
        lambda m, a, k: ((hidden,) + tuple(a[1:]), k) if a else (a, {**k, "hidden_states": hidden}),
        with_kwargs=True)
    setattr(parent, attr, tail)
    try:
        logits = model(window, use_cache=False).logits[0].float()
    finally:
        setattr(parent, attr, full)
        handle.remove()
    return float(F.cross_entropy(logits[:-1], window[0, 1:]))


@torch.no_grad()
def measure_sensitivity(model: nn.Module, windows: torch.Tensor, groups: list[ActivationGroup] | None = None,
                        *, base_bits: int = 8, probe_bits: int = 4, progress: bool = True) -> dict[str, float]:
    """Loss increase (nats per token) when each group alone goes from ``base_bits`` to ``probe_bits``.

    ``model`` is quantized already (:func:`golden.qmodel.quantize_model`); ``windows`` is ``(n, seq_len)``
    calibration token ids.  Every layer is left at ``base_bits`` on return.
    """
    if windows.dim() != 2 or windows.shape[1] < 2:
        raise PolicyError(f"calibration windows must be (n, seq_len >= 2), got {tuple(windows.shape)}")
    groups = groups or activation_groups(model)
    layers = quant_layers(model)
    missing = [n for g in groups for n in g.layers if n not in layers]
    if missing:
        raise PolicyError(f"{missing[0]} is not quantized: quantize the model before measuring sensitivity")
    set_act_bits(model, {n: base_bits for g in groups for n in g.layers})
    cached = [_block_inputs(model, w.unsqueeze(0)) for w in windows]
    base = [_loss_from_block(model, w.unsqueeze(0), 0, c[0]) for w, c in zip(windows, cached)]
    out = {}
    for g in tqdm(groups, desc=f"sensitivity A{base_bits}->A{probe_bits}", unit="group", disable=not progress,
                  leave=False):
        set_act_bits(model, {n: probe_bits for n in g.layers})
        try:
            probe = [_loss_from_block(model, w.unsqueeze(0), g.block, c[g.block]) for w, c in zip(windows, cached)]
        finally:
            set_act_bits(model, {n: base_bits for n in g.layers})
        out[g.name] = sum(p - b for p, b in zip(probe, base)) / len(base)
    return out


@dataclass
class BitPlan:
    """Activation bits per linear layer, and what they were chosen from."""
    bits: dict[str, int]
    budget: float                       # requested share of MACs at A4
    a4_mac_share: float                 # achieved share
    cycles_vs_a8: float                 # plan's cycles / all-A8 cycles under the cost model
    cost_model: str
    tokens: int                         # the M the costs were computed for
    sensitivity: dict[str, float] = field(default_factory=dict)   # group -> loss increase at A4 (nats)
    order: list[str] = field(default_factory=list)                 # groups in the order they went to A4

    def save(self, path: str | os.PathLike) -> Path:
        """Write JSON atomically: a crash never leaves a half-written plan behind."""
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({"format": "agile-quant-bitplan-v1", **asdict(self)}, indent=1))
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "BitPlan":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise PolicyError(f"cannot read bit plan {str(path)!r}: {exc}") from None
        if data.pop("format", None) != "agile-quant-bitplan-v1":
            raise PolicyError(f"{str(path)!r} is not an agile-quant bit plan")
        plan = cls(**data)
        bad = {n: b for n, b in plan.bits.items() if b not in (4, 8)}
        if bad:
            raise PolicyError(f"{str(path)!r}: activation bits must be 4 or 8, got {bad}")
        return plan


def choose_plan(groups: list[ActivationGroup], sensitivity: dict[str, float], budget: float,
                cost: CostModel | None = None, tokens: int = 512) -> BitPlan:
    """Send groups to A4, cheapest loss per saved cycle first, until ``budget`` of the MACs run at A4."""
    if not 0.0 <= budget <= 1.0:
        raise PolicyError(f"budget is a share of MACs at A4 in [0, 1], not {budget!r}")
    cost = cost or MacCountCost()
    missing = [g.name for g in groups if g.name not in sensitivity]
    if missing:
        raise PolicyError(f"no sensitivity for {missing[0]}")
    total_macs = sum(g.macs(tokens) for g in groups)
    a8_cycles = sum(g.cycles(cost, tokens, 8) for g in groups)

    def loss_per_cycle(g: ActivationGroup) -> float:
        saved = g.cycles(cost, tokens, 8) - g.cycles(cost, tokens, 4)
        return sensitivity[g.name] / saved if saved > 0 else float("inf")

    bits = {n: 8 for g in groups for n in g.layers}
    order, a4_macs = [], 0
    for g in sorted(groups, key=loss_per_cycle):
        if a4_macs >= budget * total_macs - 1e-9:
            break
        bits.update({n: 4 for n in g.layers})
        order.append(g.name)
        a4_macs += g.macs(tokens)
    cycles = sum(g.cycles(cost, tokens, bits[g.layers[0]]) for g in groups)
    return BitPlan(bits, budget, a4_macs / total_macs, cycles / a8_cycles, cost.name, tokens,
                   dict(sensitivity), order)


DEFAULT_PLAN = Path(__file__).resolve().parent / "plans" / "smollm2-135m-w4-a4share50.json"
#: The TRIP core sized for an ECP5-85F, profiled on SmolLM2-135M's layer shapes at 512 tokens.
DEFAULT_PROFILE = Path(__file__).resolve().parent / "plans" / "smollm2-135m-ecp5-85f-latency.json"


def main(argv=None) -> int:
    import argparse

    from .cli import add_source_args, load_source, run
    from .data import split_tokens
    from .qmodel import QuantConfig, auto_group_size, quantize_model

    p = argparse.ArgumentParser(
        prog="python -m golden.policy",
        description="Choose per-layer activation bits (A4 or A8): measure how much the calibration loss "
                    "rises when each shared-input group alone goes to A4 (RTN W4 weights, all else A8), "
                    "weigh it against the cycles it saves under a cost model, and send groups to A4 until "
                    "--budget of the MACs run at A4. Writes the plan as JSON; golden.table and golden.eval "
                    "--plan read it. Calibration tokens come from the end of the text.")
    add_source_args(p)
    p.add_argument("--budget", type=float, default=0.5, help="share of MACs at A4, in [0, 1] (default 0.5)")
    p.add_argument("--group-size", type=int, default=0, help="weight group size; 0 = auto (default)")
    p.add_argument("--calib-windows", type=int, default=2, help="calibration windows (default 2)")
    p.add_argument("--calib-len", type=int, default=256, help="tokens per calibration window (default 256)")
    p.add_argument("--tokens", type=int, default=512, help="M the layer costs are computed for (default 512)")
    p.add_argument("--cost", default="auto",
                   help="latency cost model: a latency profile JSON from `python -m sim.cycle_model` (the TRIP "
                        "core's cycle model), 'mac-count' (MACs × 4-bit passes), or 'auto' (default): the "
                        "shipped ECP5-85F profile for the default model, mac-count for a --model of your own")
    p.add_argument("--out", default="build/plans/plan.json", help="plan file to write (default %(default)s)")
    args = p.parse_args(argv)

    def body() -> int:
        if not 0.0 <= args.budget <= 1.0:
            raise PolicyError(f"--budget is a share of MACs at A4 in [0, 1], not {args.budget}")
        if args.calib_windows < 1 or args.calib_len < 2:
            raise PolicyError("--calib-windows must be >= 1 and --calib-len >= 2")
        if args.cost == "mac-count" or (args.cost == "auto" and args.model):
            cost: CostModel = MacCountCost()
        else:
            cost = ProfileCost.load(DEFAULT_PROFILE if args.cost == "auto" else args.cost)
            if cost.tokens != args.tokens:          # before minutes of sensitivity measurement
                cost.cycles(args.tokens, 1, 1, 4)
        model, _, ids = load_source(args)
        need = args.calib_windows * args.calib_len
        windows = split_tokens(ids, 2, need).calib_ids.reshape(args.calib_windows, args.calib_len)
        group = args.group_size or auto_group_size(model)
        quantize_model(model, QuantConfig("policy", 4, 8, group))
        groups = activation_groups(model)
        sens = measure_sensitivity(model, windows, groups)
        plan = choose_plan(groups, sens, args.budget, cost, args.tokens)
        plan.save(args.out)
        print(f"{len(plan.order)} of {len(groups)} groups at A4: {plan.a4_mac_share:.1%} of MACs, "
              f"{plan.cycles_vs_a8:.3f}× the cycles of all-A8 ({plan.cost_model}); wrote {args.out}")
        worst = sorted(sens.items(), key=lambda kv: -kv[1])[:5]
        print("most sensitive (kept at A8): " + ", ".join(f"{n} +{v:.3f} nats" for n, v in worst))
        return 0

    return run(body)


if __name__ == "__main__":
    raise SystemExit(main())
