"""Tiny random-initialised models of every supported family, built in the test (no download)."""
import pytest
import torch


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
