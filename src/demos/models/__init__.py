"""Language-model variants whose weights load from a transformers class: ``<model_type>.py`` each.

The two helpers every ``Config.from_hf`` uses live here: our config fields carry transformers' names,
so reading a transformers config is one loop, and RoPE's base is read (and its type checked) once.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def fields_from_hf(config_class: type, hf_config: Any, **values: Any) -> Any:
    """``config_class`` (a dataclass) built from the ``hf_config`` attributes of the same names, then ``values``."""
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
