"""A registry size as a transformers configuration, and that model built on the ``meta`` device.

transformers and torch are imported inside the functions, so ``import demos.registry`` stays light.

Reference implementation: transformers==5.23.0, models/auto/configuration_auto.py::AutoConfig.for_model
"""

from __future__ import annotations

from typing import Any

from demos.registry.load import model_size
from demos.registry.schema import ModelSize

_LLAMA_LIKE = ("llama", "mistral", "qwen2", "gemma", "phi3", "phi")


def hf_config(size: ModelSize) -> Any:
    """The transformers config of ``size``, built from the registry's fields (config.json names).

    ``size.hf`` adds the config.json fields the registry has no column for (and may override one,
    as Orca 2's vocabulary). ``ValueError`` for a size without a transformers architecture.
    """
    from transformers import AutoConfig

    if not size.hf or "_test" in size.notes:
        raise ValueError(f"{size.name} has no transformers architecture: {size.notes.get('_test')}")
    kwargs = {
        "vocab_size": size.vocab_size,
        "hidden_size": size.hidden_size,
        "num_hidden_layers": size.layers,
        **size.hf,
    }
    model_type = kwargs.pop("model_type")
    if model_type != "mamba":
        kwargs["num_attention_heads"] = size.heads
    if model_type in _LLAMA_LIKE:
        kwargs.update(num_key_value_heads=size.kv_heads, intermediate_size=size.intermediate_size)
    if model_type == "gemma":
        kwargs["head_dim"] = size.head_dim
    if model_type in ("gpt_neox", "persimmon"):
        kwargs["intermediate_size"] = size.intermediate_size
    if model_type == "falcon":
        kwargs["ffn_hidden_size"] = size.intermediate_size
    return AutoConfig.for_model(model_type, **kwargs)


def released_config(name: str) -> Any:
    """The transformers config of the released size ``name`` (``"Mistral-7B-v0.1"``).

    ``ValueError`` for a name the registry does not know or a size without a transformers class.
    """
    return hf_config(model_size(name))


def meta_model(size: ModelSize) -> Any:
    """The full-size transformers model of ``size`` on the meta device: shapes, no memory."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(hf_config(size))


def counted_parameters(size: ModelSize) -> int | None:
    """Parameters of the meta-device model of ``size``; ``None`` without a transformers class."""
    try:
        model = meta_model(size)
    except ValueError:
        return None
    return sum(p.numel() for p in model.parameters())
