"""Tiny random-initialised models of every supported family, built in the test (no download), and the
real SmolLM2 layers the hardware tests share."""
import numpy as np
import pytest
import torch

#: Block 16 follows the pruning point (after block 15); the shipped plan runs k_proj at A8, o_proj at A4.
REAL_LAYERS = ["model.layers.16.self_attn.k_proj", "model.layers.16.self_attn.o_proj"]


@pytest.fixture(scope="session")
def real_layers(tmp_path_factory):
    """``[(name, RealLayer, npz path)]`` for :data:`REAL_LAYERS`, captured once per session (it loads and
    quantizes the shipped model) for every bench that runs them."""
    from sim.real_layer import capture
    folder = tmp_path_factory.mktemp("real_layers")
    cases = []
    for name, real in capture(REAL_LAYERS).items():
        path = folder / f"{name}.npz"
        np.savez(path, x=real.x, w=real.layer.weight.astype(np.int64), keep=real.keep)
        cases.append((name, real, str(path)))
    return cases


def tiny_model(family: str, seed: int = 0):
    from transformers import BloomConfig, BloomForCausalLM, LlamaConfig, LlamaForCausalLM, OPTConfig, \
        OPTForCausalLM
    torch.manual_seed(seed)
    if family == "llama":
        cfg = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
        return LlamaForCausalLM(cfg).eval()
    if family == "opt":
        cfg = OPTConfig(vocab_size=128, hidden_size=64, ffn_dim=128, num_hidden_layers=2,
                        num_attention_heads=4, max_position_embeddings=128, word_embed_proj_dim=64)
        return OPTForCausalLM(cfg).eval()
    if family == "bloom":
        cfg = BloomConfig(vocab_size=128, hidden_size=64, n_layer=2, n_head=4)
        return BloomForCausalLM(cfg).eval()
    raise ValueError(family)


@pytest.fixture(params=["llama", "opt", "bloom"])
def family(request):
    return request.param
