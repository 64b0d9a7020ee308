"""GPTQ: lower output error than RTN on a synthetic layer, and the sequential model pass."""
import pytest
import torch
from conftest import tiny_model

import golden
from golden.gptq import HessianAccumulator, gptq_quantize_model, gptq_quantize_weight
from golden.models import quantizable_linears
from golden.qmodel import QuantConfig, QuantLinear, quantize_model
from golden.quant import QuantError, QuantSpec, dequantize, fake_quant


def correlated_layer(seed=0, out=96, k=256, tokens=2048):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(k, k, generator=g) / k ** 0.5 + torch.eye(k)
    x = torch.randn(tokens, k, generator=g) @ mix
    x[:, 7] *= 20                                     # one outlier input channel
    w = torch.randn(out, k, generator=g) / k ** 0.5
    return x, w


@pytest.mark.parametrize("spec, act_order", [
    (QuantSpec(4, granularity="row"), False),
    (QuantSpec(4, granularity="group", group_size=64), False),
    (QuantSpec(4, granularity="group", group_size=64), True),
    (QuantSpec(4, symmetric=False, granularity="group", group_size=64), False),
])
def test_gptq_beats_rtn_on_output_error(spec, act_order):
    x, w = correlated_layer()
    acc = HessianAccumulator(w.shape[1])
    for chunk in x.split(500):
        acc.add(chunk)
    torch.testing.assert_close(acc.H, 2 * x.double().t() @ x.double() / len(x))
    q, scale, zero = gptq_quantize_weight(w, acc.H, spec, act_order=act_order)
    golden.check_int(q.numpy(), 4, signed=spec.symmetric)
    w_gptq = dequantize(q, spec, scale, zero)
    err_gptq = (x @ (w - w_gptq).t()).pow(2).mean()
    err_rtn = (x @ (w - fake_quant(w, spec)).t()).pow(2).mean()
    assert err_gptq < 0.7 * err_rtn, (float(err_gptq), float(err_rtn))


def test_gptq_errors():
    x, w = correlated_layer(k=64, tokens=200)
    with pytest.raises(QuantError, match="does not match"):
        gptq_quantize_weight(w, torch.eye(32), QuantSpec(4))
    with pytest.raises(QuantError, match="per row or per group"):
        gptq_quantize_weight(w, torch.eye(64), QuantSpec(4, granularity="tensor"))
    with pytest.raises(QuantError, match="NaN/Inf"):
        HessianAccumulator(4).add(torch.tensor([[1.0, float("inf"), 0.0, 0.0]]))


def test_gptq_model_pass_on_every_family(family):
    model = tiny_model(family)
    calib = torch.randint(0, 128, (4 * 32,), generator=torch.Generator().manual_seed(1))
    ids = torch.randint(0, 128, (1, 32), generator=torch.Generator().manual_seed(2))
    ref = model(ids).logits.detach()
    cfg = QuantConfig("w4a16-gptq", 4, None, 32, weight_method="gptq")
    gptq_quantize_model(model, cfg, calib, n_windows=4, seq_len=32, progress=False)
    layers = quantizable_linears(model)
    assert all(isinstance(m, QuantLinear) for m in layers.values())
    for m in layers.values():
        golden.check_int(m.weight_q.numpy(), 4)
        torch.testing.assert_close(m.weight, dequantize(m.weight_q.int(), m.w_spec, m.weight_scale, m.weight_zero))
    out = model(ids).logits.detach()
    assert torch.isfinite(out).all() and not torch.equal(out, ref)
    with pytest.raises(QuantError, match="calibration tokens"):
        gptq_quantize_model(tiny_model(family), cfg, calib[:10], n_windows=4, seq_len=32, progress=False)
