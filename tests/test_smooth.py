"""SmoothQuant-style smoothing: an identity in float, and it flattens the activations it touches."""
import copy

import pytest
import torch

from conftest import tiny_model
from golden.policy import activation_groups
from golden.qmodel import QuantConfig, quantize_model
from golden.quant import QuantError
from golden.smooth import norm_feeding, smooth_model

SMOOTHED = {"llama": {"q_proj+k_proj+v_proj", "gate_proj+up_proj"},
            "opt": {"q_proj+k_proj+v_proj", "fc1"},
            "bloom": {"query_key_value", "dense_h_to_4h"}}


def _windows(n=2, seq=16, seed=0):
    return torch.randint(0, 128, (n, seq), generator=torch.Generator().manual_seed(seed))


def _with_outlier_channel(family):
    """A tiny model whose norms blow up one channel, as real LLMs' norms do."""
    model = tiny_model(family)
    with torch.no_grad():
        for name, m in model.named_modules():
            if "norm" in name.lower() and hasattr(m, "weight") and m.weight is not None:
                m.weight[5] *= 40
    return model


def test_the_norm_feeding_each_group_is_found(family):
    model = tiny_model(family)
    feeders = norm_feeding(model, activation_groups(model))
    assert {n.split(".")[-1] for n in feeders} == SMOOTHED[family]
    assert len(feeders) == 4       # two groups in each of the two blocks


def test_smoothing_leaves_the_float_model_unchanged(family):
    model = _with_outlier_channel(family)
    ids = _windows(1, 20, seed=4)
    ref = model(ids, use_cache=False).logits
    factors = smooth_model(model, _windows(), alpha=0.5, progress=False)
    assert len(factors) == 4 and all((s > 0).all() for s in factors.values())
    assert torch.allclose(model(ids, use_cache=False).logits, ref, atol=1e-4, rtol=1e-4)


def test_smoothing_cuts_activation_error_on_outlier_channels(family):
    """Per-token A8 loses the small channels of a token with one huge channel; smoothing helps.
    Only the smoothed groups are quantized (float weights), so the comparison sees their error alone."""
    base = _with_outlier_channel(family)
    ids = _windows(1, 20, seed=5)
    ref = base(ids, use_cache=False).logits
    groups = activation_groups(base)
    feeders = norm_feeding(base, groups)
    cfg = QuantConfig("a8", None, None, None, bit_plan={n: 8 for g in groups if g.name in feeders for n in g.layers})
    plain = quantize_model(copy.deepcopy(base), cfg)(ids, use_cache=False).logits
    smoothed_float = copy.deepcopy(base)
    smooth_model(smoothed_float, _windows(), alpha=0.5, progress=False)
    smoothed = quantize_model(smoothed_float, cfg)(ids, use_cache=False).logits
    assert (smoothed - ref).pow(2).mean() < 0.25 * (plain - ref).pow(2).mean()


def test_bad_inputs():
    model = tiny_model("llama")
    with pytest.raises(QuantError, match="alpha"):
        smooth_model(model, _windows(), alpha=1.5)
    with pytest.raises(QuantError, match="calibration windows"):
        smooth_model(model, torch.zeros(5, dtype=torch.long))
    quantize_model(model, QuantConfig("w4a8", 4, 8, 32))
    with pytest.raises(QuantError, match="before quantizing"):
        smooth_model(model, _windows())
