"""Quantizers: every mode, their integers and the integer oracle agree."""
import itertools

import numpy as np
import pytest
import torch

import golden
from golden.quant import GRANULARITIES, QuantError, QuantSpec, StaticObserver, dequantize, \
    fake_quant, qparams, quantize

SPECS = [QuantSpec(bits, sym, gran, group_size=16)
         for bits, sym, gran in itertools.product((4, 8), (True, False), GRANULARITIES)]


def heavy_tailed(n=24, k=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, k, generator=g)
    x[3, 5] = 40.0          # an outlier channel value, as real LLM activations have
    return x


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_integers_are_in_range_and_error_is_at_most_half_a_step(spec):
    x = heavy_tailed()
    scale, zero = qparams(x, spec)
    q = quantize(x, spec, scale, zero)
    golden.check_int(q.numpy(), spec.bits, signed=spec.symmetric)       # the golden range check
    err = (dequantize(q, spec, scale, zero) - x).abs()
    step = dequantize(torch.ones_like(q) + q, spec, scale, zero) - dequantize(q, spec, scale, zero)
    assert (err <= step.abs() / 2 + 1e-6).all()
    assert torch.equal(fake_quant(x, spec), dequantize(q, spec, scale, zero))


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_zero_is_exact_and_symmetric_means_zero_point_zero(spec):
    x = heavy_tailed()
    x[:, :16] = 0.0
    _, zero = qparams(x, spec)
    assert torch.equal(fake_quant(x, spec)[:, :16], x[:, :16])
    if spec.symmetric:
        assert (zero == 0).all()


def test_rounding_is_half_to_even_like_numpy():
    spec = QuantSpec(8, granularity="tensor")
    x = torch.tensor([[0.5, 1.5, 2.5, -0.5, -2.5, 127.0]])
    scale, zero = torch.ones(1, 1), torch.zeros(1, 1)
    assert quantize(x, spec, scale, zero).tolist() == [np.rint(x.numpy()).astype(int).tolist()[0]]


def test_granularity_decides_who_shares_a_scale():
    x = heavy_tailed()
    assert qparams(x, QuantSpec(4, granularity="tensor"))[0].numel() == 1
    assert qparams(x, QuantSpec(4, granularity="row"))[0].numel() == 24
    assert qparams(x, QuantSpec(4, granularity="column"))[0].numel() == 64
    assert qparams(x, QuantSpec(4, granularity="group", group_size=16))[0].numel() == 24 * 4
    # the outlier only coarsens its own row / group / column
    row = qparams(x, QuantSpec(4, granularity="row"))[0].ravel()
    assert row[3] > 5 * row[[0, 1, 2]].max()


@pytest.mark.parametrize("spec", [QuantSpec(8), QuantSpec(4), QuantSpec(8, symmetric=False)], ids=str)
def test_integer_oracle_reproduces_the_fake_quant_matmul(spec):
    x, w = heavy_tailed(8, 64, 1), heavy_tailed(12, 64, 2) / 10
    wspec = QuantSpec(4, granularity="row")
    xs, xz = qparams(x, spec)
    ws, wz = qparams(w, wspec)
    xq, wq = quantize(x, spec, xs, xz), quantize(w, wspec, ws, wz)
    acc = golden.matmul_int(xq.numpy(), wq.numpy(), x_bits=spec.bits, x_signed=spec.symmetric)
    # y = Σ (xq - xz)·sx · wq·sw  =  sx·sw·(acc - xz·Σ wq)
    row_sums = wq.numpy().astype(np.int64).sum(axis=1)
    y_int = (acc - xz.numpy() * row_sums[None, :]) * xs.numpy() * ws.numpy().T
    y_fake = fake_quant(x, spec) @ fake_quant(w, wspec).T
    np.testing.assert_allclose(y_int, y_fake.numpy(), rtol=1e-5, atol=1e-5)


def test_static_observer_calibrates_then_freezes():
    spec = QuantSpec(8, granularity="column")
    obs = StaticObserver(spec)
    with pytest.raises(QuantError, match="never calibrated"):
        obs.params()
    obs.observe(heavy_tailed(seed=3))
    obs.observe(heavy_tailed(seed=4) * 2)
    scale, zero = obs.params()
    assert scale.shape == (64, 1)
    y = fake_quant(heavy_tailed(5, 64, 9), spec, scale, zero)     # other tokens, same scales
    assert y.shape == (5, 64)
    with pytest.raises(QuantError, match="tensor or column"):
        StaticObserver(QuantSpec(8, granularity="row"))


@pytest.mark.parametrize("make, message", [
    (lambda: QuantSpec(3), "bits must be one of"),
    (lambda: QuantSpec(4, granularity="channel"), "granularity must be one of"),
    (lambda: qparams(torch.zeros(4, 24), QuantSpec(4, granularity="group", group_size=16)),
     "group size 16 does not divide the dimension 24"),
    (lambda: fake_quant(torch.tensor([[1.0, float("nan")]]), QuantSpec(8)), "NaN/Inf"),
    (lambda: qparams(torch.zeros(2, 2, 2), QuantSpec(8)), "2-D"),
])
def test_bad_input_is_a_clear_quant_error(make, message):
    with pytest.raises(QuantError, match=message):
        make()
