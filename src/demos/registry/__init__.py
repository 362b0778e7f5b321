"""The model registry: one cited record per released size of every model family in the book.

The data live in ``registry.yaml`` next to this package. The modules, one concern each:

``schema``
    The fields, declared once (:data:`FIELDS`), and the frozen record :class:`ModelSize` built
    from them; :func:`parse_count` and :func:`rounds_to` read published parameter figures.
``load``
    ``registry.yaml`` -> validated records: :func:`load_registry`, :func:`families`,
    :func:`family_sizes`, :func:`model_size`.
``render``
    A chapter's facts card, the overview table, single values (:func:`shown`, :func:`fact`) and a
    chapter's own facts table (:func:`facts_table`, :func:`fill`), each unverified value marked wherever it is printed.
``hf``
    A size as a transformers config (:func:`hf_config`, :func:`released_config`) and as a
    meta-device model (:func:`meta_model`, :func:`counted_parameters`); imports torch lazily.
``memory``
    :func:`weights_bytes` at a precision (the KV cache is ``ModelSize.kv_cache_bytes_per_token``).

Importing this package does not import torch or transformers.

References: every value names a key of ``references.bib``; see ``registry.yaml``.
"""

from __future__ import annotations

from demos.registry.hf import counted_parameters, hf_config, meta_model, released_config
from demos.registry.load import families, family_sizes, load_registry, model_size, parse_yaml
from demos.registry.memory import BYTES_PER_PARAMETER, weights_bytes
from demos.registry.render import (
    fact,
    facts_card,
    facts_table,
    fill,
    legend,
    mark,
    overview_rows,
    overview_table,
    shown,
    unverified_marks,
    verification_counts,
)
from demos.registry.schema import (
    ATTENTION_KINDS,
    FIELD_NAMES,
    FIELDS,
    Field,
    ModelSize,
    parse_count,
    rounds_to,
)

__all__ = [
    "ATTENTION_KINDS",
    "BYTES_PER_PARAMETER",
    "FIELDS",
    "FIELD_NAMES",
    "Field",
    "ModelSize",
    "counted_parameters",
    "fact",
    "facts_card",
    "facts_table",
    "families",
    "fill",
    "family_sizes",
    "hf_config",
    "legend",
    "load_registry",
    "mark",
    "meta_model",
    "model_size",
    "overview_rows",
    "overview_table",
    "parse_count",
    "parse_yaml",
    "released_config",
    "rounds_to",
    "shown",
    "unverified_marks",
    "verification_counts",
    "weights_bytes",
]
