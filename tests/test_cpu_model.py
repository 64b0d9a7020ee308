"""The whole quantized model on the CPU kernels: the fake-quant model's logits, bit for bit."""
import copy

import numpy as np
import pytest
import torch

import cpu
from conftest import tiny_model
from cpu.model import CpuLinear, to_cpu_fallback
from golden.export import export_model, load_export
from golden.qmodel import QuantConfig, QuantLinear, quant_layers, quantize_model


def _with_biases(model):
    """transformers starts biases at zero; give them values so that a lost bias shows."""
    g = torch.Generator().manual_seed(7)
    for m in model.modules():
        if isinstance(m, torch.nn.Linear) and m.bias is not None:
            m.bias.data = torch.randn(m.bias.shape, generator=g) * 0.5
    return model


@pytest.mark.parametrize("w_bits, a_bits, group", [(4, 8, 64), (4, 4, 32), (4, 8, None), (8, 8, None), (8, 4, 32)])
def test_fallback_model_equals_the_fake_quant_model(family, w_bits, a_bits, group, tmp_path):
    fake = quantize_model(_with_biases(tiny_model(family)),
                          QuantConfig("t", w_bits=w_bits, a_bits=a_bits, group_size=group))
    on_cpu = copy.deepcopy(fake)
    assert to_cpu_fallback(on_cpu) == {}
    assert not quant_layers(on_cpu) and any(isinstance(m, CpuLinear) for m in on_cpu.modules())
    # x86 with AVX2 (CI's machines) keeps weights tiled: the identity below then covers those forms.
    tiled = [m.tiled for m in on_cpu.modules() if isinstance(m, CpuLinear)]
    assert any(tiled) == (cpu.best_path() in ("avx2", "vnni", "amx")), tiled
    ids = torch.randint(0, 128, (2, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = fake(ids).logits, on_cpu(ids).logits
    # Every quantized linear computes golden.linear.scaled_linear's float32 operations in its order, and
    # everything else is the same torch module: the logits are identical, not merely close.
    assert torch.equal(got, want), float((got - want).abs().max())

    # Layer by layer: equal to the fake-quant layer, and to the export's float64 oracle up to float32 rounding.
    export_model(fake, tmp_path / "m.safetensors")
    _, layers = load_export(tmp_path / "m.safetensors")
    x = torch.randn(5, 64)
    for name, layer in quant_layers(fake).items():
        if layer.in_features != 64:
            continue
        oracle = layers[name].forward(x)
        mine = CpuLinear.from_quant_linear(layer)(x)
        assert torch.equal(mine, layer(x)), name
        mine = mine.numpy()
        assert np.allclose(mine, oracle, rtol=1e-5, atol=1e-5 * float(np.abs(oracle).max())), name


def test_layers_the_kernels_cannot_run_stay_and_are_named():
    model = quantize_model(tiny_model("llama"), QuantConfig("t", w_bits=4, a_bits=8, group_size=64,
                                                            a_symmetric=False))
    kept = to_cpu_fallback(model)
    assert kept and all("symmetric activations only" in why for why in kept.values())
    assert all(isinstance(m, QuantLinear) for m in quant_layers(model).values())
    with pytest.raises(ValueError, match="symmetric activations only"):
        CpuLinear.from_quant_linear(next(iter(quant_layers(model).values())))


@pytest.mark.parametrize("argv, message", [
    (["--eval-tokens", "1"], "at least 2"),
    (["--decode-tokens", "0"], "at least 1"),
    (["--model", "/nonexistent/model"], "/nonexistent/model"),
])
def test_run_command_refuses_bad_input_in_one_line(argv, message, capsys):
    from cpu.run import main
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


@pytest.mark.parametrize("w_bits", (4, 8))
def test_run_command_scores_both_models_identically(w_bits, monkeypatch, capsys):
    """The success path end to end on a tiny LLaMA (the real command loads SmolLM2 and WikiText-2):
    both models scored, per-token log-likelihoods bit-identical, both timed, exit 0."""
    import golden.cli
    from cpu.run import main
    ids = torch.randint(0, 128, (300,), generator=torch.Generator().manual_seed(3))
    monkeypatch.setattr(golden.cli, "load_source", lambda args: (tiny_model("llama"), None, ids))
    argv = ["--w-bits", str(w_bits), "--eval-tokens", "200", "--seq-len", "64", "--prefill-tokens", "16",
            "--decode-tokens", "3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"W{w_bits}A8 RTN" in out and "log-likelihoods bit-identical" in out and "largest |Δ| 0.00e+00" in out
    assert "float32: prefill" in out and f"W{w_bits}A8 cpu kernels: prefill" in out


def test_layer_takes_any_float_layout_and_names_a_wrong_width():
    """The fused call wants float32 rows in order; other dtypes and strides are converted (same numbers),
    and a wrong input width is one clear error, not a crash in the extension."""
    fake = quantize_model(_with_biases(tiny_model("llama")), QuantConfig("t", w_bits=4, a_bits=8, group_size=32))
    layer = next(m for m in quant_layers(fake).values() if m.in_features == 64)
    mine = CpuLinear.from_quant_linear(layer)
    x = torch.randn(3, 4, 64)
    want = mine(x)
    assert want.shape == (3, 4, layer.out_features) and torch.equal(want, layer(x))
    strided = x.transpose(0, 1).contiguous().transpose(0, 1)
    assert not strided.is_contiguous() and torch.equal(mine(strided), want)
    assert mine(x.double()).dtype == torch.float64 and torch.equal(mine(x.double()), want.double())
    with pytest.raises(ValueError, match="shape mismatch"):
        mine(torch.randn(2, 48))


def test_layer_follows_new_weights_however_they_arrive():
    """forward() keeps its operands in a cache; new buffers (assigned, loaded with assign=True, or
    converted by .to()) must reach the kernel, not the old ones."""
    fake = quantize_model(_with_biases(tiny_model("llama")), QuantConfig("t", w_bits=4, a_bits=8, group_size=32))
    a, b = [CpuLinear.from_quant_linear(m) for m in quant_layers(fake).values()
            if m.in_features == 64 and m.out_features == 64][:2]
    x = torch.randn(2, 64)
    ya, yb = a(x), b(x)
    assert not torch.equal(ya, yb)
    a.load_state_dict(b.state_dict(), assign=True)
    assert torch.equal(a(x), yb)
    a.packed = b.packed.clone()
    a.w_scale = torch.ones_like(b.w_scale)
    assert not torch.equal(a(x), yb)
    a.load_state_dict({k: v.clone() for k, v in b.state_dict().items()}, assign=True)
    a.to(torch.float64)
    with pytest.raises(ValueError, match="w_scale must be a contiguous float32"):
        a(x)
