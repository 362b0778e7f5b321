"""Reading ``registry.yaml`` into validated :class:`~demos.registry.schema.ModelSize` records.

A family's values apply to all of its sizes; a size overrides single values. ``cite``, ``notes``,
``unverified`` and ``hf`` are mappings merged the same way (the size's keys win), and
``cite: {_default: key}`` cites every value the mapping does not name. Any other key is refused, so a
misspelt field fails loudly instead of vanishing.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from demos.registry.schema import FIELD_NAMES, ModelSize

MAPPINGS = ("cite", "notes", "unverified", "hf")  # merged family -> size
_FAMILY_KEYS = {"family", "sizes", *MAPPINGS, *FIELD_NAMES}
_SIZE_KEYS = {"name", *MAPPINGS, *FIELD_NAMES}


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        repeated = sorted({str(k) for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(
                f"registry.yaml line {node.start_mark.line + 1}: keys {repeated} repeat"
            )
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str) -> Any:
    """Parse registry YAML, refusing repeated keys."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def _check_keys(entry: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ValueError(f"{where}: keys {unknown} are not fields; known: {sorted(allowed)}")


def build_size(family: dict, size: dict) -> ModelSize:
    """One :class:`ModelSize` from a family entry and one of its sizes (both parsed YAML)."""
    _check_keys(family, _FAMILY_KEYS, f"family {family.get('family')!r}")
    _check_keys(size, _SIZE_KEYS, f"size {size.get('name')!r}")
    merged = {k: {**(family.get(k) or {}), **(size.get(k) or {})} for k in MAPPINGS}
    values = {name: size.get(name, family.get(name)) for name in FIELD_NAMES}
    default = merged["cite"].pop("_default", None)
    cite = {k: merged["cite"].get(k, default) for k, v in values.items() if v is not None}
    return ModelSize(
        family=family["family"],
        name=size["name"],
        **values,
        cite={k: v for k, v in cite.items() if v is not None},
        notes=merged["notes"],
        unverified=merged["unverified"],
        hf=merged["hf"],
    )


@lru_cache(maxsize=1)
def load_registry() -> tuple[ModelSize, ...]:
    """Every size of every family, in the order of ``registry.yaml``; validated on load."""
    text = resources.files("demos.registry").joinpath("registry.yaml").read_text(encoding="utf-8")
    data = parse_yaml(text)
    _check_keys(data, {"families"}, "registry.yaml")
    sizes = tuple(build_size(fam, size) for fam in data["families"] for size in fam["sizes"])
    names = [s.name for s in sizes]
    if len(set(names)) != len(names):
        raise ValueError(
            f"size names must be unique: {sorted(n for n in names if names.count(n) > 1)}"
        )
    return sizes


def families() -> list[str]:
    """Family names in registry order."""
    return list(dict.fromkeys(s.family for s in load_registry()))


def family_sizes(family: str) -> list[ModelSize]:
    """The sizes of one family; ``ValueError`` naming the known families if it is unknown."""
    sizes = [s for s in load_registry() if s.family == family]
    if not sizes:
        raise ValueError(f"family ({family!r}) is not in the registry; known: {families()}")
    return sizes


def model_size(name: str) -> ModelSize:
    """One size by its name (``"Mistral-7B-v0.1"``); ``ValueError`` naming the known sizes."""
    for size in load_registry():
        if size.name == name:
            return size
    known = [s.name for s in load_registry()]
    raise ValueError(f"size ({name!r}) is not in the registry; known: {known}")
