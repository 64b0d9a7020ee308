"""Export round trip, and the integer oracle from the export against the fake-quant layers."""
import numpy as np
import pytest
import torch
from conftest import tiny_model

import golden
from golden.export import export_model, load_export
from golden.models import quantizable_linears
from golden.qmodel import QuantConfig, quantize_model


@pytest.mark.parametrize("cfg", [QuantConfig("w4a8", 4, 8, 32), QuantConfig("w4a4", 4, 4, 32),
                                 QuantConfig("w8a8-asym", 8, 8, None, a_symmetric=False)], ids=lambda c: c.name)
def test_round_trip_and_oracle_match_the_fake_quant_model(family, cfg, tmp_path):
    model = quantize_model(tiny_model(family), cfg)
    first = next(iter(quantizable_linears(model)))
    path = export_model(model, tmp_path / "m.safetensors", prune_plan={"layers": [1], "keep": 0.5})
    meta, layers = load_export(path)
    assert meta["prune_plan"] == {"layers": [1], "keep": 0.5}
    assert set(layers) == set(quantizable_linears(model))
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(0)) * 3
    for name, q in quantizable_linears(model).items():
        e = layers[name]
        assert np.array_equal(e.weight, q.weight_q.numpy())
        assert meta["bit_plan"][name] == cfg.a_bits
        if e.weight.shape[1] != 64:
            continue
        with torch.no_grad():
            want = q(x).numpy()
        np.testing.assert_allclose(e.forward(x), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    xq, _, _ = layers[first].quantize_input(x)
    acc = layers[first].accumulators(xq)
    assert acc.dtype == np.int32
    assert np.array_equal(acc.sum(-1), golden.matmul_int(xq, layers[first].weight, x_bits=cfg.a_bits,
                                                         w_bits=cfg.w_bits, x_signed=cfg.a_symmetric))


def test_export_refuses_float_models_and_leaves_nothing_behind(tmp_path):
    with pytest.raises(ValueError, match="no quantized layers"):
        export_model(tiny_model("llama"), tmp_path / "x.safetensors")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="does not exist"):
        load_export(tmp_path / "missing.safetensors")
