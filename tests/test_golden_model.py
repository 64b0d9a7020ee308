"""The fake-quant model on tiny OPT, LLaMA and BLOOM models, loading and its errors."""
import pytest
import torch
from conftest import tiny_model

import golden
from golden.data import DataError, split_tokens
from golden.eval import perplexity
from golden.models import ModelError, arch_of, load_model, quantizable_linears
from golden.qmodel import QuantConfig, QuantLinear, auto_group_size, quantize_model, set_act_bits
from golden.quant import QuantError


def test_every_quantizable_linear_is_replaced_and_holds_int4(family):
    model = tiny_model(family)
    names = list(quantizable_linears(model))
    assert len(names) == 2 * len(arch_of(model).linears)
    quantize_model(model, QuantConfig("w4a8", w_bits=4, a_bits=8, group_size=32))
    for name, layer in quantizable_linears(model).items():
        assert isinstance(layer, QuantLinear)
        golden.check_int(layer.weight_q.numpy(), 4)
        assert layer.weight_scale.shape == (layer.out_features * layer.in_features // 32, 1)
    ids = torch.randint(0, 128, (1, 20))
    assert torch.isfinite(model(ids).logits).all()


def test_quantization_error_grows_as_bits_shrink(family):
    ids = torch.randint(0, 128, (1, 64), generator=torch.Generator().manual_seed(0))
    ref = tiny_model(family)(ids).logits
    errs = {}
    for cfg in (QuantConfig("w8a8", 8, 8, None), QuantConfig("w4a8", 4, 8, 32), QuantConfig("w4a4", 4, 4, 32)):
        q = quantize_model(tiny_model(family), cfg)
        errs[cfg.name] = float((q(ids).logits - ref).detach().pow(2).mean())
    assert 0 < errs["w8a8"] < errs["w4a8"] < errs["w4a4"]


def test_bit_plan_overrides_activation_bits_per_layer():
    model = tiny_model("llama")
    first = next(iter(quantizable_linears(model)))
    quantize_model(model, QuantConfig("plan", 4, 8, 32, bit_plan={first: 4}))
    layers = quantizable_linears(model)
    assert layers[first].a_spec.bits == 4
    assert all(m.a_spec.bits == 8 for n, m in layers.items() if n != first)
    set_act_bits(model, {first: None})
    assert layers[first].a_spec is None
    with pytest.raises(QuantError, match="no quantized layer"):
        set_act_bits(model, {"nope": 4})


def test_nan_activation_is_a_clear_error_naming_the_layer():
    model = quantize_model(tiny_model("opt"), QuantConfig("w4a8", 4, 8, 32))
    layer = next(iter(quantizable_linears(model).values()))
    with pytest.raises(QuantError, match=r"model\.decoder\.layers\.0\.self_attn\.q_proj: .*NaN/Inf"):
        layer(torch.full((1, 3, 64), float("nan")))


@pytest.mark.parametrize("kwargs", [dict(w_bits=3), dict(a_bits=16), dict(bit_plan={"x": 2}),
                                    dict(weight_method="awq")])
def test_bad_configs_are_rejected(kwargs):
    with pytest.raises(QuantError):
        QuantConfig("bad", **kwargs)


def test_auto_group_size_divides_every_layer():
    model = tiny_model("llama")          # widths 64 and 128
    assert auto_group_size(model, 128) == 64
    with pytest.raises(QuantError, match="does not divide"):
        quantize_model(model, QuantConfig("g", 4, 8, group_size=48))


def test_load_model_round_trip_and_errors(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    src = tiny_model("llama")
    src.save_pretrained(tmp_path / "llama")
    vocab = {f"w{i}": i for i in range(127)} | {"[UNK]": 127}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]").save_pretrained(tmp_path / "llama")
    model, tok = load_model(tmp_path / "llama")
    ids = tok("w1 w5 w9 w2", return_tensors="pt").input_ids
    assert ids.tolist() == [[1, 5, 9, 2]]
    with torch.no_grad():
        assert torch.equal(model(ids).logits, src(ids).logits)
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "missing")
    with pytest.raises(ModelError, match="no config.json"):
        load_model(tmp_path)
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64)).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(ModelError, match="'gpt2' is not supported; supported: llama, opt, bloom"):
        load_model(tmp_path / "gpt2")


def test_perplexity_counts_every_prediction_once():
    model = tiny_model("llama")
    ids = torch.randint(0, 128, (70,))
    r = perplexity(model, ids, seq_len=32, progress=False)
    assert (r.windows, r.predicted) == (3, 31 + 31 + 5)
    with pytest.raises(ValueError, match="at least 2"):
        perplexity(model, ids[:1], progress=False)


def test_split_never_overlaps_and_refuses_short_text():
    ids = torch.arange(100)
    s = split_tokens(ids, 60, 30)
    assert s.eval_range == (0, 60) and s.calib_range == (70, 100)
    assert not set(s.eval_ids.tolist()) & set(s.calib_ids.tolist())
    with pytest.raises(DataError, match="too short"):
        split_tokens(ids, 80, 30)


def test_outlier_stats_find_a_planted_outlier_channel_and_plot_it(tmp_path):
    from golden.outliers import collect_stats, write_report
    model = tiny_model("llama")
    name = "model.layers.1.mlp.down_proj"
    layer = model.get_submodule(name)
    plant = layer.register_forward_pre_hook(lambda m, a: (a[0].index_fill(-1, torch.tensor([5]), 500.0),))
    stats = collect_stats(model, torch.randint(0, 128, (40,)), seq_len=16)
    plant.remove()
    assert set(stats) == set(quantizable_linears(model))
    s = stats[name]
    assert int(s.channel_max.argmax()) == 5 and s.max == 500.0 and s.token_max.numel() == 40
    assert s.ratio == max(v.ratio for v in stats.values())
    files = write_report(stats, tmp_path / "report")
    assert [f.name for f in files] == ["stats.json", "outlier_ratio_per_layer.png", "worst_layer_channels_tokens.png"]
    assert all(f.stat().st_size > 1000 for f in files[1:])


def test_pruned_token_view_shows_which_tokens_carry_what(tmp_path):
    from golden.outliers import plot_pruned_tokens, pruned_token_view
    from golden.prune import PrunePlan
    model = tiny_model("llama")
    # A token with a planted outlier at every later linear input; whether it is kept is the plan's call.
    plant = [m.register_forward_pre_hook(lambda m, a: (a[0].index_fill(1, torch.tensor([7]), 300.0),))
             for n, m in quantizable_linears(model).items() if ".layers.1." in n]
    view = pruned_token_view(model, torch.randint(0, 128, (20,), generator=torch.Generator().manual_seed(2)),
                             PrunePlan((0,), 0.5))
    for h in plant:
        h.remove()
    assert int(view["kept"].sum()) == 10 and view["token_max"][7] == 300.0
    assert max(view["max_kept"], view["max_pruned"]) == 300.0
    path = plot_pruned_tokens(view, tmp_path / "pruned_tokens.png")
    assert path.stat().st_size > 1000 and [p.name for p in tmp_path.iterdir()] == ["pruned_tokens.png"]


def test_outliers_command_rejects_bad_input_in_one_line(tmp_path, capsys):
    from golden.outliers import main
    assert main(["--keep-ratio", "0", "--out", str(tmp_path / "o")]) == 2
    assert "keep_ratio" in capsys.readouterr().err and not (tmp_path / "o").exists()
