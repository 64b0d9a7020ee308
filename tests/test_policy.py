"""The activation-guided A4/A8 policy on tiny random models: groups, sensitivity, plan, artefact."""
import copy
import json

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_model
from golden.policy import (ActivationGroup, BitPlan, MacCountCost, PolicyError, activation_groups,
                           choose_plan, measure_sensitivity)
from golden.qmodel import QuantConfig, quantize_model, set_act_bits

EXPECTED_GROUPS = {"llama": ["q_proj+k_proj+v_proj", "o_proj", "gate_proj+up_proj", "down_proj"],
                   "opt": ["q_proj+k_proj+v_proj", "out_proj", "fc1", "fc2"],
                   "bloom": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"]}


def _quantized(family):
    return quantize_model(tiny_model(family), QuantConfig("w4a8", 4, 8, 32))


def test_groups_are_linears_that_read_one_tensor(family):
    groups = activation_groups(_quantized(family))
    assert [g.block for g in groups] == [0] * 4 + [1] * 4
    assert [g.name.split(".")[-1] for g in groups[:4]] == EXPECTED_GROUPS[family]


def test_sensitivity_equals_a_full_forward_probe(family):
    """The cached-prefix shortcut must give the loss a full forward gives, for every group."""
    model = _quantized(family)
    windows = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(0))
    groups = activation_groups(model)
    fast = measure_sensitivity(model, windows, groups, progress=False)

    @torch.no_grad()
    def loss():
        return sum(float(F.cross_entropy(model(w[None], use_cache=False).logits[0, :-1], w[1:]))
                   for w in windows) / len(windows)

    base = loss()
    for g in groups:
        set_act_bits(model, {n: 4 for n in g.layers})
        probe = loss()
        set_act_bits(model, {n: 8 for n in g.layers})
        assert fast[g.name] == pytest.approx(probe - base, abs=1e-5), g.name
    assert any(abs(v) > 1e-4 for v in fast.values())       # the probes changed something
    assert all(m.a_spec.bits == 8 for n, m in model.named_modules() if hasattr(m, "a_spec"))


def _toy_groups():
    # Same width, different sizes: "big" saves the most cycles per unit of loss.
    return [ActivationGroup(0, ("a",), 8, (8,)), ActivationGroup(0, ("b", "c"), 8, (8, 8)),
            ActivationGroup(1, ("big",), 8, (32,))]


def test_plan_takes_cheapest_loss_per_saved_cycle_first():
    groups = _toy_groups()
    sens = {"a": 0.1, "b+c": 0.3, "big": 0.2}    # per saved MAC: a 0.1/64, b+c 0.3/128, big 0.2/256
    plan = choose_plan(groups, sens, budget=0.5, tokens=1)
    assert plan.order == ["big"] and plan.bits == {"a": 8, "b": 8, "c": 8, "big": 4}
    assert plan.a4_mac_share == pytest.approx(32 / 56)
    assert plan.cycles_vs_a8 == pytest.approx((2 * 24 + 32) / (2 * 56))
    assert choose_plan(groups, sens, 0.0, tokens=1).bits == dict.fromkeys(["a", "b", "c", "big"], 8)
    full = choose_plan(groups, sens, 1.0, tokens=1)
    assert set(full.bits.values()) == {4} and full.cycles_vs_a8 == pytest.approx(0.5)
    assert full.order == ["big", "a", "b+c"]


def test_a_cost_model_changes_the_plan():
    class FlatCost:
        """A datapath where A8 costs the same as A4 for 'big' (say, a dedicated unit)."""
        name = "flat"

        def cycles(self, tokens, k, n, a_bits):
            return MacCountCost().cycles(tokens, k, n, 8 if n == 32 else a_bits)

    plan = choose_plan(_toy_groups(), {"a": 0.1, "b+c": 0.3, "big": 0.2}, 0.1, FlatCost(), tokens=1)
    assert plan.order == ["a"] and plan.cost_model == "flat"


def test_plan_is_a_plain_file_that_round_trips(tmp_path):
    plan = choose_plan(_toy_groups(), {"a": 0.1, "b+c": 0.3, "big": 0.2}, 0.5, tokens=1)
    path = plan.save(tmp_path / "plans" / "plan.json")
    assert json.loads(path.read_text())["bits"]["big"] == 4
    assert BitPlan.load(path) == plan
    assert list(tmp_path.joinpath("plans").iterdir()) == [path]        # no temporary file left


def test_plan_drives_the_quantized_model(family):
    model = _quantized(family)
    groups = activation_groups(model)
    plan = choose_plan(groups, {g.name: float(i) for i, g in enumerate(groups)}, 0.3)
    q = quantize_model(tiny_model(family), QuantConfig("plan", 4, 8, 32, bit_plan=plan.bits))
    bits = {n: m.a_spec.bits for n, m in q.named_modules() if hasattr(m, "a_spec")}
    assert bits == plan.bits and 4 in bits.values() and 8 in bits.values()


def test_bad_inputs_say_what_is_wrong(tmp_path):
    groups = _toy_groups()
    with pytest.raises(PolicyError, match="budget"):
        choose_plan(groups, {"a": 0, "b+c": 0, "big": 0}, 1.5)
    with pytest.raises(PolicyError, match="no sensitivity for big"):
        choose_plan(groups, {"a": 0, "b+c": 0}, 0.5)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PolicyError, match="cannot read bit plan"):
        BitPlan.load(bad)
    plan = choose_plan(groups, {"a": 0, "b+c": 0, "big": 0}, 0.5, tokens=1)
    data = json.loads(plan.save(tmp_path / "p.json").read_text())
    data["bits"]["a"] = 6
    bad.write_text(json.dumps(data))
    with pytest.raises(PolicyError, match="must be 4 or 8"):
        BitPlan.load(bad)
    with pytest.raises(PolicyError, match="not quantized"):
        measure_sensitivity(tiny_model("llama"), torch.zeros(1, 8, dtype=torch.long), progress=False)
    with pytest.raises(PolicyError, match="calibration windows"):
        measure_sensitivity(_quantized("llama"), torch.zeros(8, dtype=torch.long), progress=False)


def test_latency_profile_from_the_cycle_model_drives_the_policy(tmp_path):
    from golden.policy import PROFILE_FORMAT, ProfileCost
    from sim.cycle_model import core_cycles, core_latency, latency_profile
    from golden.models import quantizable_linears
    model = quantize_model(tiny_model("llama"), QuantConfig("p", 4, 8, 32))
    shapes = {(m.in_features, m.out_features) for m in quantizable_linears(model).values()}
    profile = latency_profile(shapes, device="ice40up5k", tokens=16, group=32)
    assert profile["format"] == PROFILE_FORMAT and len(profile["cycles"]) == 2 * len(shapes) == 8
    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile))
    cost = ProfileCost.load(path)
    p = profile["core"]
    assert cost.cycles(16, 64, 128, 8) == core_cycles(m_kept=16, k=64, n=128, group=32, a_bits=8,
                                                      tokens=p["rows"] * p["a_lanes"],
                                                      channels=p["cols"] * p["w_lanes"],
                                                      latency=core_latency(p))
    assert 1.8 < cost.cycles(16, 64, 64, 8) / cost.cycles(16, 64, 64, 4) < 2.0
    groups = activation_groups(model)
    plan = choose_plan(groups, {g.name: 1.0 for g in groups}, 0.5, cost, tokens=16)
    assert plan.cost_model == profile["name"] and 0.5 <= plan.a4_mac_share
    with pytest.raises(PolicyError, match="made for 16 tokens, not 32"):
        cost.cycles(32, 64, 64, 4)
    with pytest.raises(PolicyError, match="no 64→7 layer at A4"):
        cost.cycles(16, 64, 7, 4)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(PolicyError, match="not a latency profile"):
        ProfileCost.load(tmp_path / "bad.json")


def test_policy_cli_refuses_a_profile_for_other_tokens_before_measuring(tmp_path, capsys):
    from golden.policy import DEFAULT_PROFILE, main
    assert main(["--cost", str(DEFAULT_PROFILE), "--tokens", "128", "--out", str(tmp_path / "p.json")]) == 2
    assert "made for 512 tokens, not 128" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_shipped_latency_profile_is_the_current_cycle_model():
    """The stored ECP5-85F profile is what `python -m sim.cycle_model` writes for today's core: a change to
    the core's sizes or pipeline (the cycle model follows the RTL's CYCLES register) must regenerate it."""
    from golden.policy import DEFAULT_PROFILE
    from sim.cycle_model import latency_profile
    stored = json.loads(DEFAULT_PROFILE.read_text())
    shapes = {tuple(int(d) for d in key.split("x")[:2]) for key in stored["cycles"]}
    assert latency_profile(shapes, device="ecp5-85f", tokens=stored["tokens"]) == stored, \
        "regenerate it: python -m sim.cycle_model --out golden/plans/smollm2-135m-ecp5-85f-latency.json"
