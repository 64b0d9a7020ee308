"""golden.linear.scaled_linear: exact group sums, then float32 scaling in one fixed order."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import golden
from golden.linear import EXACT_FLOAT32, scaled_linear
from golden.qmodel import QuantConfig, QuantLinear
from golden.quant import dequantize, fake_quant


def _by_definition(xq, xs, wq, ws, group):
    """The module docstring's loop, element by element in numpy float32 (exact sums from int64)."""
    acc = golden.group_accumulators(xq, wq, group, x_bits=16, w_bits=16).astype(np.int64)
    y = np.zeros(acc.shape[:2], np.float32)
    for g in range(acc.shape[2]):
        y = (y + (acc[:, :, g].astype(np.float32) * ws[None, :, g]).astype(np.float32)).astype(np.float32)
    return (y * xs[:, None]).astype(np.float32)


@pytest.mark.parametrize("m, k, n, group, x_max, w_max", [
    (3, 256, 5, 64, 127, 8), (1, 96, 7, 32, 8, 8), (4, 128, 3, 128, 255, 8), (2, 64, 4, 16, 127, 127),
    (0, 64, 3, 32, 127, 8),
])
def test_equals_its_definition(m, k, n, group, x_max, w_max):
    rng = np.random.default_rng(k + n)
    xq, wq = rng.integers(-x_max, x_max + 1, (m, k)), rng.integers(-w_max, w_max + 1, (n, k))
    xq[:, :group] = -x_max                                 # a whole group on the rails
    wq[:, :group] = -w_max
    xs = rng.uniform(1e-3, 1, m).astype(np.float32)
    ws = rng.uniform(1e-3, 1, (n, k // group)).astype(np.float32)
    got = scaled_linear(torch.from_numpy(xq), torch.from_numpy(xs), torch.from_numpy(wq), torch.from_numpy(ws),
                        group, x_max, w_max)
    assert got.dtype == torch.float32 and np.array_equal(got.numpy(), _by_definition(xq, xs, wq, ws, group))


def test_sums_beyond_float32_take_float64_and_stay_exact():
    """255 · 127 · 1024 > 2**24: float32 matmuls would round these sums; the float64 path does not."""
    k = 1024
    assert 255 * 127 * k >= EXACT_FLOAT32
    xq = torch.full((1, k), 255)
    xq[0, 1::2] = 253
    wq = torch.full((2, k), 127)
    wq[1, ::3] = -1
    got = scaled_linear(xq, torch.ones(1), wq, torch.ones(2, 1), k, 255, 127)
    exact = (xq.long() @ wq.long().T).float()              # float32(acc) of the exact integer, as defined
    assert torch.equal(got, exact)


def test_bad_shapes_are_refused():
    x, w = torch.zeros(2, 64), torch.zeros(3, 64)
    with pytest.raises(ValueError, match="xq \\(M, K\\) and wq \\(N, K\\)"):
        scaled_linear(x, torch.ones(2), torch.zeros(3, 32), torch.ones(3, 1), 32, 8, 8)
    with pytest.raises(ValueError, match="does not divide"):
        scaled_linear(x, torch.ones(2), w, torch.ones(3, 2), 48, 8, 8)
    with pytest.raises(ValueError, match="scales do not match"):
        scaled_linear(x, torch.ones(2), w, torch.ones(3, 3), 32, 8, 8)
    with pytest.raises(OverflowError, match="float64"):
        scaled_linear(x, torch.ones(2), w, torch.ones(3, 1), 64, 1 << 30, 1 << 30)


@pytest.mark.parametrize("a_bits, group, symmetric", [(8, 32, True), (4, 64, True), (8, None, False)])
def test_quant_linear_is_fake_quant_up_to_float_rounding(a_bits, group, symmetric):
    """The integer form computes what F.linear of the dequantized operands approximates."""
    torch.manual_seed(a_bits)
    lin = torch.nn.Linear(128, 24)
    cfg = QuantConfig("t", w_bits=4, a_bits=a_bits, group_size=group, a_symmetric=symmetric)
    q = QuantLinear(lin, "l", cfg.weight_spec(128), cfg.act_spec("l"))
    x = torch.randn(2, 5, 128) * 3
    want = F.linear(fake_quant(x, q.a_spec), dequantize(q.weight_q, q.w_spec, q.weight_scale, q.weight_zero), q.bias)
    got = q(x)
    assert got.shape == want.shape and torch.allclose(got, want, rtol=1e-5, atol=1e-5)
