"""The model registry: one cited record per released size of every model family in the book.

The data live in ``registry.yaml`` next to this module; this module loads them into frozen
dataclasses, checks them, and renders them (a chapter's facts card, the overview table) and turns
them into memory figures (weights at a given precision, KV-cache bytes per token).

Glossary: a *family* is a model line (``"Llama 2"``); a *size* is one released checkpoint of it
(``"Llama-2-70B"``). ``parameters`` is the figure its developer published, kept as written
(``"7B"``, ``"70,426,624"``); :func:`parse_count` turns it into a number.

References: every value names a key of ``references.bib``; see ``registry.yaml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from demos.layers.kv_cache import kv_cache_bytes_per_token

FIELDS = (
    "organisation",
    "release",
    "parameters",
    "training_tokens",
    "context_length",
    "vocab_size",
    "languages",
    "licence",
    "attention",
    "layers",
    "hidden_size",
    "heads",
    "kv_heads",
    "head_dim",
    "intermediate_size",
    "positional",
    "norm",
    "activation",
    "checkpoint",
)
INT_FIELDS = (
    "context_length",
    "vocab_size",
    "layers",
    "hidden_size",
    "heads",
    "kv_heads",
    "head_dim",
    "intermediate_size",
)
ATTENTION_KINDS = ("MHA", "GQA", "MQA", "none", "hybrid")  # a value must start with one of these
BYTES_PER_PARAMETER = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0, "nf4": 0.5}
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


@dataclass(frozen=True)
class ModelSize:
    """One released size of a model family; ``None`` means unknown (see ``notes``)."""

    family: str  # the family's name, e.g. "Llama 2"
    name: str  # this size's name, e.g. "Llama-2-7B"
    organisation: str | None  # who released it
    release: str | None  # "YYYY-MM" of the public release
    parameters: str | None  # the published figure, as written ("7B", "70,426,624")
    training_tokens: str | None  # pretraining tokens as published ("2.0T"); None for fine-tunes
    context_length: int | None  # tokens the released model was trained to attend over
    vocab_size: int | None  # rows of the embedding matrix in the released config
    languages: str | None
    licence: str | None
    attention: str | None  # MHA / GQA / MQA / none / hybrid, plus details
    layers: int | None  # num_hidden_layers
    hidden_size: int | None
    heads: int | None  # num_attention_heads (query heads)
    kv_heads: int | None  # num_key_value_heads (1 = MQA, == heads = MHA)
    head_dim: int | None  # width of one head
    intermediate_size: int | None  # width of the MLP (Mamba: the expanded inner width)
    positional: str | None
    norm: str | None
    activation: str | None
    checkpoint: str | None  # Hugging Face Hub id
    cite: dict[str, str] = field(default_factory=dict)  # field -> references.bib key
    notes: dict[str, str] = field(default_factory=dict)  # field -> why it is null / a caveat
    hf: dict[str, Any] = field(default_factory=dict)  # config.json fields for the meta-device test

    def __post_init__(self) -> None:
        for name, key in self.cite.items():
            if name not in FIELDS or not isinstance(key, str):
                raise ValueError(
                    f"{self.name}: cite[{name!r}] ({key!r}) must map a field to a bib key"
                )
        for name in INT_FIELDS:
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{self.name}: {name} ({value!r}) must be a positive int or null")
        for name in FIELDS:
            value = getattr(self, name)
            if value is None and name not in self.notes and "_all" not in self.notes:
                raise ValueError(f"{self.name}: {name} is null without a note saying why")
            if value is not None and not self.cite.get(name):
                raise ValueError(f"{self.name}: {name} ({value!r}) has no citation key")
        if self.release is not None and not re.fullmatch(r"20\d\d-(0[1-9]|1[0-2])", self.release):
            raise ValueError(f"{self.name}: release ({self.release!r}) must be 'YYYY-MM'")
        if self.attention is not None and not self.attention.startswith(ATTENTION_KINDS):
            raise ValueError(
                f"{self.name}: attention ({self.attention!r}) must start with one of {ATTENTION_KINDS}"
            )
        if self.heads and self.kv_heads and self.heads % self.kv_heads:
            raise ValueError(
                f"{self.name}: heads ({self.heads}) must be divisible by kv_heads ({self.kv_heads})"
            )
        if self.parameters is not None:
            parse_count(self.parameters)  # raises on a figure we cannot read

    @property
    def parameter_count(self) -> int | None:
        """The published figure as a number (``"7B"`` -> 7_000_000_000)."""
        return None if self.parameters is None else parse_count(self.parameters)[0]

    def kv_cache_bytes_per_token(self, bytes_per_value: int = 2) -> int | None:
        """KV-cache growth per token (fp16 by default); ``None`` without attention figures."""
        if None in (self.layers, self.kv_heads, self.head_dim):
            return None
        return kv_cache_bytes_per_token(self.layers, self.kv_heads, self.head_dim, bytes_per_value)


def parse_count(text: str) -> tuple[int, int]:
    """Read a published count: ``"6.9B"`` -> ``(6_900_000_000, 100_000_000)``.

    Returns the value and its *precision*: the place value of its last written digit, ignoring
    trailing zeros of a whole number (``"70B"`` -> 10B, ``"130M"`` -> 10M, ``"2.7B"`` -> 0.1B,
    ``"70,426,624"`` -> 1). A count agrees with the figure when it lies within half a precision.
    """
    match = re.fullmatch(r"(\d[\d,]*)(?:\.(\d+))?([KMBT]?)", str(text).strip())
    if not match:
        raise ValueError(f"parameter figure ({text!r}) must look like '7B', '2.7B' or '70,426,624'")
    whole, frac, unit = match.group(1).replace(",", ""), match.group(2) or "", match.group(3)
    scale = _UNITS[unit]
    value = round(float(f"{whole}.{frac or 0}") * scale)
    if frac:
        precision = scale // 10 ** len(frac)
    else:
        trailing = len(whole) - len(whole.rstrip("0")) if whole.strip("0") else 0
        precision = scale * 10**trailing
    return value, max(precision, 1)


def rounds_to(count: int, figure: str) -> bool:
    """True when ``count`` rounds to the published ``figure`` (within half its precision)."""
    value, precision = parse_count(figure)
    return abs(count - value) * 2 <= precision


def weights_bytes(params: int | float, dtype: str) -> float:
    """Bytes to hold ``params`` weights at ``dtype`` (fp32, fp16, bf16, int8, nf4).

    nf4 counts 4 bits per weight and leaves out the per-block scales (about 0.5 bit per weight
    more with block size 64), so it is a lower bound.
    """
    if dtype not in BYTES_PER_PARAMETER:
        raise ValueError(f"dtype ({dtype!r}) must be one of {sorted(BYTES_PER_PARAMETER)}")
    from demos.validation import check_finite_number

    check_finite_number("params", params, minimum=0)  # refuses NaN, inf, strings, None and bools
    return params * BYTES_PER_PARAMETER[dtype]


def _merge(family: dict, size: dict, key: str) -> dict:
    return {**(family.get(key) or {}), **(size.get(key) or {})}


def _build(family: dict, size: dict) -> ModelSize:
    cite = _merge(family, size, "cite")
    default = cite.pop("_default", None)
    values = {name: size.get(name, family.get(name)) for name in FIELDS}
    for name in FIELDS:
        if values[name] is not None and name not in cite and default:
            cite[name] = default
    if isinstance(values["release"], str) is False and values["release"] is not None:
        raise ValueError(f"{size['name']}: release must be quoted or 'YYYY-MM'")
    hf = _merge(family, size, "hf")
    return ModelSize(
        family=family["family"],
        name=size["name"],
        **values,
        cite={k: v for k, v in cite.items() if values.get(k) is not None},
        notes=_merge(family, size, "notes"),
        hf=hf,
    )


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


@lru_cache(maxsize=1)
def load_registry() -> tuple[ModelSize, ...]:
    """Every size of every family, in the order of ``registry.yaml``; validated on load."""
    text = resources.files("demos.registry").joinpath("registry.yaml").read_text(encoding="utf-8")
    data = parse_yaml(text)
    sizes = tuple(_build(fam, size) for fam in data["families"] for size in fam["sizes"])
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


def _show(value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _cell(size: ModelSize, name: str) -> str:
    value = getattr(size, name)
    if name == "checkpoint" and value:
        text = f"[`{value}`](https://huggingface.co/{value})"
    else:
        text = _show(value)
    key = size.cite.get(name)
    return f"{text} {{cite}}`{key}`" if key else text


CARD_ROWS = (
    ("Organisation", "organisation"),
    ("Released", "release"),
    ("Parameters (published)", "parameters"),
    ("Pretraining tokens", "training_tokens"),
    ("Context length (tokens)", "context_length"),
    ("Vocabulary", "vocab_size"),
    ("Languages", "languages"),
    ("Licence", "licence"),
    ("Attention", "attention"),
    ("Layers", "layers"),
    ("Hidden size", "hidden_size"),
    ("Query heads", "heads"),
    ("Key/value heads", "kv_heads"),
    ("Head dim", "head_dim"),
    ("MLP width", "intermediate_size"),
    ("Positions", "positional"),
    ("Norm", "norm"),
    ("Activation", "activation"),
    ("Checkpoint", "checkpoint"),
)


def facts_card(family: str) -> str:
    """A Markdown table with one column per released size, each value followed by its citation.

    Display it with ``IPython.display.Markdown``; MyST renders the ``{cite}`` roles.
    """
    sizes = family_sizes(family)
    head = "| | " + " | ".join(s.name for s in sizes) + " |"
    rule = "|---" * (len(sizes) + 1) + "|"
    rows = [
        f"| {label} | " + " | ".join(_cell(s, n) for s in sizes) + " |" for label, n in CARD_ROWS
    ]
    labels = {name: label for label, name in CARD_ROWS}
    by_note: dict[tuple[str, str], list[str]] = {}
    for s in sizes:
        for k, v in s.notes.items():
            if not k.startswith("_") or k == "_all":
                by_note.setdefault((k, v), []).append(s.name)
    notes = []
    for (k, v), names in by_note.items():
        label = "All fields" if k == "_all" else labels[k]
        where = "" if len(names) == len(sizes) else ", ".join(names) + ", "
        notes.append(f"{where}{label.lower() if where else label}: {v}")
    out = "\n".join([head, rule, *rows])
    if notes:
        out += "\n\n" + "\n".join(f"- *{n}*" for n in notes)
    return out


def overview_rows() -> list[dict[str, str]]:
    """One row per family: organisation, release months, published sizes and checkpoint ids."""
    rows = []
    for name in families():
        sizes = family_sizes(name)
        months = sorted({s.release for s in sizes if s.release})
        rows.append(
            {
                "family": name,
                "organisation": sizes[0].organisation or "unknown",
                "released": " / ".join(months) if months else "unknown",
                "sizes": " / ".join(s.parameters or "undisclosed" for s in sizes),
                "checkpoints": [s.checkpoint for s in sizes if s.checkpoint],
            }
        )
    return rows


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


def field_names() -> tuple[str, ...]:
    """The per-size fields every entry carries, in display order."""
    return tuple(f.name for f in fields(ModelSize) if f.name in FIELDS)
