"""What a registry record holds: the fields, declared once, and the frozen record built from them.

:data:`FIELDS` is the only place the per-size fields are named. The :class:`ModelSize` dataclass,
its validation, the YAML check (``load``), the facts card and the overview (``render``) all derive
from it, so a new field is one new line here and one column in ``registry.yaml``.

Glossary: a *family* is a model line (``"Llama 2"``); a *size* is one released checkpoint of it
(``"Llama-2-70B"``). ``parameters`` is the figure its developer published, kept as written
(``"7B"``, ``"70,426,624"``); :func:`parse_count` turns it into a number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, make_dataclass
from typing import Any


@dataclass(frozen=True)
class Field:
    """One per-size field: its name (as in ``registry.yaml``), card label, type and meaning."""

    name: str
    label: str  # the row label on a facts card
    type: type  # int or str; ``None`` (unknown) is always allowed, with a note saying why
    comment: str
    # the kind of model the field describes ("MoE"); empty: every model. A null in such a field
    # means the model has none (a dense model has no experts) and needs no note
    only_for: str = ""


FIELDS: tuple[Field, ...] = (
    Field("organisation", "Organisation", str, "who released it"),
    Field("release", "Released", str, "'YYYY-MM' of the public release"),
    Field("parameters", "Parameters (published)", str, "the published figure, as written"),
    Field("training_tokens", "Pretraining tokens", str, "as published ('2.0T'); null: fine-tunes"),
    Field("context_length", "Context length (tokens)", int, "tokens it was trained to attend over"),
    Field("vocab_size", "Vocabulary", int, "rows of the embedding matrix in the released config"),
    Field("languages", "Languages", str, "languages of the training data"),
    Field("licence", "Licence", str, "licence of the released weights"),
    Field("attention", "Attention", str, "MHA / GQA / MQA / none / hybrid, plus details"),
    Field("layers", "Layers", int, "num_hidden_layers"),
    Field("hidden_size", "Hidden size", int, "width of the residual stream"),
    Field("heads", "Query heads", int, "num_attention_heads"),
    Field("kv_heads", "Key/value heads", int, "num_key_value_heads (1 = MQA, = heads: MHA)"),
    Field("head_dim", "Head dim", int, "width of one head"),
    Field("intermediate_size", "MLP width", int, "MLP width (Mamba: the expanded inner width)"),
    Field(
        "experts", "Routed experts", int, "experts a sparse layer routes among (num_experts)", "MoE"
    ),
    Field("experts_per_token", "Experts per token", int, "routed experts per token (top-k)", "MoE"),
    Field("expert_size", "Expert MLP width", int, "one routed expert's MLP width", "MoE"),
    Field("shared_expert_size", "Shared expert MLP width", int, "null: no shared expert", "MoE"),
    Field("sparse_step", "Sparse layer every", int, "every n-th layer is sparse", "MoE"),
    Field("active_parameters", "Active parameters (published)", str, "one token's", "MoE"),
    Field("positional", "Positions", str, "position encoding"),
    Field("norm", "Norm", str, "normalisation layer"),
    Field("activation", "Activation", str, "MLP activation"),
    Field("checkpoint", "Checkpoint", str, "Hugging Face Hub id"),
)
FIELD_NAMES = tuple(f.name for f in FIELDS)
ATTENTION_KINDS = ("MHA", "GQA", "MQA", "none", "hybrid")  # a value must start with one of these
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


def parse_count(text: str) -> tuple[int, int]:
    """Read a published count: ``"6.9B"`` -> ``(6_900_000_000, 100_000_000)``.

    Returns the value and its *precision*: the place value of its last written digit, ignoring
    trailing zeros of a whole number (``"70B"`` -> 10B, ``"130M"`` -> 10M, ``"2.7B"`` -> 0.1B,
    ``"70,426,624"`` -> 1). A count agrees with the figure when it lies within half a precision.
    ``ValueError`` for a figure in another form.
    """
    # commas only as thousands separators: "1,2,3" and "7,B" are typos, not 123 and 7B
    match = re.fullmatch(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?([KMBT]?)", str(text).strip())
    if not match:
        raise ValueError(
            f"parameter figure ({text!r}) must look like '7B', '2.7B' or '70,426,624' "
            "(commas only between groups of three digits)"
        )
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


class _SizeChecks:
    """Validation and derived figures of :class:`ModelSize` (its fields come from :data:`FIELDS`)."""

    def __post_init__(self: Any) -> None:
        for key, value in self.cite.items():
            if key not in FIELD_NAMES or not isinstance(value, str):
                raise ValueError(
                    f"{self.name}: cite[{key!r}] ({value!r}) must map a field to a bib key"
                )
        for spec in FIELDS:
            value = getattr(self, spec.name)
            if value is None:
                if spec.only_for:  # the model has none: a dense model's experts
                    continue
                if spec.name not in self.notes and "_all" not in self.notes:
                    raise ValueError(f"{self.name}: {spec.name} is null without a note saying why")
                continue
            if spec.type is int and (type(value) is not int or value < 1):
                raise ValueError(
                    f"{self.name}: {spec.name} ({value!r}) must be a positive int or null"
                )
            if spec.type is str and not isinstance(value, str):
                raise ValueError(f"{self.name}: {spec.name} ({value!r}) must be a string or null")
            if not self.cite.get(spec.name):
                raise ValueError(f"{self.name}: {spec.name} ({value!r}) has no citation key")
        for key, reason in self.unverified.items():
            if key not in FIELD_NAMES:
                raise ValueError(f"{self.name}: unverified[{key!r}] must name a field")
            if getattr(self, key) is None:
                raise ValueError(f"{self.name}: unverified[{key!r}] names a null value")
            if not isinstance(reason, str) or not reason.strip():
                raise ValueError(
                    f"{self.name}: unverified[{key!r}] ({reason!r}) must give a reason"
                )
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
        for figure in (self.parameters, self.active_parameters):
            if figure is not None:
                parse_count(figure)  # raises on a figure we cannot read
        if self.experts and self.experts_per_token and self.experts_per_token > self.experts:
            raise ValueError(
                f"{self.name}: experts_per_token ({self.experts_per_token}) must not exceed "
                f"experts ({self.experts})"
            )

    @property
    def parameter_count(self: Any) -> int | None:
        """The published figure as a number (``"7B"`` -> 7_000_000_000)."""
        return None if self.parameters is None else parse_count(self.parameters)[0]

    @property
    def verified(self: Any) -> tuple[str, ...]:
        """The fields with a value that was checked against a source (not in ``unverified``)."""
        return tuple(
            n for n in FIELD_NAMES if getattr(self, n) is not None and n not in self.unverified
        )

    def kv_cache_bytes_per_token(self: Any, bytes_per_value: int = 2) -> int | None:
        """KV-cache growth per token (fp16 by default); ``None`` without attention figures."""
        if None in (self.layers, self.kv_heads, self.head_dim):
            return None
        from demos.layers.kv_cache import kv_cache_bytes_per_token  # imports torch: only here

        return kv_cache_bytes_per_token(self.layers, self.kv_heads, self.head_dim, bytes_per_value)


def _dict() -> Any:
    return field(default_factory=dict)


ModelSize = make_dataclass(
    "ModelSize",
    [
        ("family", str),  # the family's name, e.g. "Llama 2"
        ("name", str),  # this size's name, e.g. "Llama-2-7B"
        *((f.name, f.type | None) for f in FIELDS),  # None means unknown (see ``notes``)
        ("cite", dict[str, str], _dict()),  # field -> references.bib key
        ("notes", dict[str, str], _dict()),  # field -> why it is null / a caveat
        ("unverified", dict[str, str], _dict()),  # field -> why its value is not yet verified
        ("hf", dict[str, Any], _dict()),  # config.json fields the registry has no column for
    ],
    bases=(_SizeChecks,),
    frozen=True,
)
ModelSize.__module__ = __name__
ModelSize.__doc__ = (
    "One released size of a model family: ``family``, ``name``, one attribute per entry of\n"
    ":data:`FIELDS` (``None`` means unknown; ``notes`` says why), then ``cite`` (field -> bib key),\n"
    "``notes``, ``unverified`` (field -> why the value is not yet verified) and ``hf`` (extra\n"
    "config.json fields). Frozen; ``ValueError`` on a value that breaks a rule of :data:`FIELDS`."
)
