"""Language-model variants whose weights load from a transformers class: ``<model_type>.py`` each.

The two helpers every ``Config.from_hf`` uses live here: our config fields carry transformers' names,
so reading a transformers config is one loop, and RoPE's base is read (and its type checked) once.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def check_model_type(config_class: type, hf_config: Any) -> None:
    """``ValueError`` unless ``hf_config.model_type`` is one that ``config_class.model_types`` reads.

    A config of another family may carry the same field names and still mean another model
    (Qwen2's window applies to some layers only, Gemma's norm scales by ``1 + w``): reading it by
    name would build a model that runs and is silently wrong. The message names the class that does
    serve that ``model_type`` (:mod:`demos.catalog`), if one does.
    """
    accepted = getattr(config_class, "model_types", ())
    model_type = getattr(hf_config, "model_type", None)
    if model_type in accepted:
        return
    from demos.catalog import class_for_model_type  # light: no torch

    serving = class_for_model_type(model_type)
    hint = f"; use {serving}" if serving else "; no class here serves it"
    raise ValueError(
        f"{config_class.__name__}.from_hf reads model_type {', '.join(map(repr, accepted))}, "
        f"got {model_type!r}{hint}"
    )


def fields_from_hf(config_class: type, hf_config: Any, **values: Any) -> Any:
    """``config_class`` (a dataclass) built from the ``hf_config`` attributes of the same names, then
    ``values``; ``ValueError`` for a ``model_type`` the class does not read (:func:`check_model_type`)."""
    check_model_type(config_class, hf_config)
    names = [f.name for f in dataclasses.fields(config_class)]
    read = {name: getattr(hf_config, name) for name in names if hasattr(hf_config, name)}
    return config_class(**{**read, **values})


def rope_theta_from_hf(hf_config: Any, supported: tuple[str, ...] = ("default",)) -> float:
    """RoPE's base from a transformers config; ``ValueError`` for a ``rope_type`` the caller cannot
    compute (``supported``: 'default' unless the model reads its scaling too, as Llama's reads
    'llama3' with :meth:`demos.layers.rope_scaling.Llama3RopeScaling.from_hf`)."""
    rope = getattr(hf_config, "rope_parameters", None) or {}
    rope_type = rope.get("rope_type", "default")
    if rope_type not in supported:
        allowed = ", ".join(repr(t) for t in supported)
        raise ValueError(f"rope_type {rope_type!r} is not supported here: only {allowed}")
    return rope.get("rope_theta", getattr(hf_config, "rope_theta", 10000.0))
