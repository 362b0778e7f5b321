"""A registry size as a transformers configuration, and that model built on the ``meta`` device.

transformers and torch are imported inside the functions, so ``import demos.registry`` stays light.

Reference implementation: transformers==5.23.0, models/auto/configuration_auto.py::AutoConfig.for_model
"""

from __future__ import annotations

from typing import Any

from demos.catalog import ARCHITECTURES
from demos.registry.load import model_size
from demos.registry.schema import ModelSize


def hf_config(size: ModelSize) -> Any:
    """The transformers config of ``size``, built from the registry's fields (config.json names).

    Vocabulary, width and depth, then the columns the catalogue maps for the size's ``model_type``
    (``demos.catalog.ARCHITECTURES[...].registry``: config.json field -> registry column), then
    ``size.hf``: the config.json fields the registry has no column for (it may override one, as
    Orca 2's vocabulary). ``ValueError`` for a size without a transformers architecture, or with a
    ``model_type`` the catalogue does not know.
    """
    from transformers import AutoConfig

    if not size.hf or "_test" in size.notes:
        raise ValueError(f"{size.name} has no transformers architecture: {size.notes.get('_test')}")
    model_type = size.hf["model_type"]
    if model_type not in ARCHITECTURES:
        raise ValueError(
            f"{size.name}: model_type {model_type!r} is not in demos.catalog.ARCHITECTURES"
        )
    kwargs = {
        "vocab_size": size.vocab_size,
        "hidden_size": size.hidden_size,
        "num_hidden_layers": size.layers,
        **{
            field: getattr(size, column)
            for field, column in ARCHITECTURES[model_type].registry.items()
        },
        **size.hf,
    }
    kwargs.pop("model_type")
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
