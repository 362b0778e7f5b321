"""Language-model variants whose weights load from a transformers class: ``<model_type>.py`` each.

The two helpers every ``Config.from_hf`` uses live here: our config fields carry transformers' names,
so reading a transformers config is one loop, and RoPE's base is read (and its type checked) once.

Each config class declares what it reads: ``model_types`` (the transformers configs it accepts), its
dataclass fields (read by name), ``hf_reads`` (fields read under another name or by a special
reader, with how) and ``hf_ignores`` (fields transformers' forward does not read in eval mode, with
why); :data:`HF_COMMON` holds those every transformers config carries. :func:`fields_from_hf` refuses
any other field set away from its default: a setting we do not implement would otherwise give a
model that runs and is silently wrong.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

# Fields every transformers config has (PretrainedConfig's, today's and v4's legacy ones) that do not
# change a decoder-only forward in eval mode: output switches (return_dict, output_*), labels and
# task heads (id2label, problem_type, finetuning_task), bookkeeping (architectures, dtype,
# transformers_version, _name_or_path, auto_map), generation's token ids and cache switch (bos/eos
# token ids; pad_token_id, whose embedding row only gets no gradient; use_cache), and v4 switches
# none of our families' modeling files reads (chunk_size_feed_forward, pruned_heads, is_decoder,
# add_cross_attention, torchscript ...). model_type is checked by check_model_type. A family's own
# fields are declared by its config class (hf_reads, hf_ignores).
HF_COMMON = frozenset(
    {
        "_attn_implementation_autoset",
        "_name_or_path",
        "add_cross_attention",
        "architectures",
        "auto_map",
        "bos_token_id",
        "chunk_size_feed_forward",
        "cross_attention_hidden_size",
        "decoder_start_token_id",
        "dtype",
        "eos_token_id",
        "finetuning_task",
        "gradient_checkpointing",
        "id2label",
        "is_decoder",
        "is_encoder_decoder",
        "label2id",
        "model_type",
        "output_attentions",
        "output_hidden_states",
        "pad_token_id",
        "prefix",
        "problem_type",
        "pruned_heads",
        "return_dict",
        "sep_token_id",
        "task_specific_params",
        "tf_legacy_loss",
        "tie_encoder_decoder",
        "tokenizer_class",
        "torchscript",
        "transformers_version",
        "use_bfloat16",
        "use_cache",
    }
)


# Model types whose checkpoints a learner may try with the nearest class here, and the feature of
# theirs that no class here implements: named in the error instead of a generic mismatch.
QK_NORM = (
    "q_norm/k_norm (QK-norm: an RMSNorm over each head's queries and keys before RoPE) is not "
    "implemented here"
)
UNIMPLEMENTED_FEATURES = {
    "qwen3": f"{QK_NORM}; Qwen3 is Qwen2 without q/k/v biases plus QK-norm (the Qwen1.5 chapter "
    "builds Qwen2's block, demos.models.qwen2.Qwen2LM)",
    "qwen3_moe": f"{QK_NORM}, nor Qwen3-MoE's router without shared experts",
    "gemma3_text": f"{QK_NORM}, nor Gemma 3's extra norms around the MLP (pre/post_feedforward_"
    "layernorm) and its local/global RoPE bases (the Gemma chapter builds Gemma 1, "
    "demos.models.gemma.GemmaLM)",
    "gemma3": "Gemma 3 with its vision tower; its text model (model_type 'gemma3_text') is not "
    f"implemented either: {QK_NORM}",
    "olmo2": f"{QK_NORM} (OLMo 2 normalises the whole q and k projections), nor its norms after "
    "attention and MLP",
}
# parameter names (their last two parts) that only these features have, for load_hf_weights
UNIMPLEMENTED_PARAMETERS = {
    "q_norm.weight": QK_NORM,
    "k_norm.weight": QK_NORM,
    "pre_feedforward_layernorm.weight": "Gemma 2/3's norm before the MLP is not implemented here",
    "post_feedforward_layernorm.weight": "Gemma 2/3's norm after the MLP is not implemented here",
}


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
    if serving:
        hint = f"; use {serving}"
    elif model_type in UNIMPLEMENTED_FEATURES:
        hint = f"; no class here serves it: {UNIMPLEMENTED_FEATURES[model_type]}"
    else:
        hint = "; no class here serves it"
    raise ValueError(
        f"{config_class.__name__}.from_hf reads model_type {', '.join(map(repr, accepted))}, "
        f"got {model_type!r}{hint}"
    )


def fields_from_hf(config_class: type, hf_config: Any, **values: Any) -> Any:
    """``config_class`` (a dataclass) built from the ``hf_config`` attributes of the same names, then
    ``values``, after checking that every field of ``hf_config`` is accounted for.

    Raises ``ValueError`` for:

    * a ``model_type`` the class does not read (:func:`check_model_type`);
    * a field of ``hf_config.to_dict()`` that is none of: a field of ``config_class``, a key of its
      ``hf_reads`` (read under another name or by a special reader) or ``hf_ignores`` (not read by
      transformers' forward in eval mode), or :data:`HF_COMMON` - unless its value is the default
      of a fresh ``type(hf_config)()``. So a newer transformers that adds a field still loads while
      the field is at its default, and a setting we do not implement is refused instead of ignored;
    * a field of ``config_class`` that ``hf_config`` carries though its class does not declare it
      (an extra key of a config.json: a Mistral config with ``layer_types``), at a value other than
      our default: transformers' model of that type does not read it, ours would. ``hf_reads``
      names the exceptions transformers reads anyway (``getattr(config, "head_dim", ...)``).
    """
    check_model_type(config_class, hf_config)
    name = f"{config_class.__name__}.from_hf"
    reads = getattr(config_class, "hf_reads", {})
    fresh, fresh_dict = _fresh(type(hf_config))
    read = {}
    for field in dataclasses.fields(config_class):
        if field.name in values or not hasattr(hf_config, field.name):
            continue
        value = getattr(hf_config, field.name)
        if hasattr(fresh, field.name) or field.name in reads:
            read[field.name] = value
        elif value != _default(field):
            raise ValueError(
                f"{name}: {field.name!r} (= {value!r}) is not a {type(hf_config).__name__} field, so "
                f"transformers' model does not read it; ours would"
            )
    accounted = (
        {f.name for f in dataclasses.fields(config_class)}
        | set(reads)
        | set(getattr(config_class, "hf_ignores", {}))
        | HF_COMMON
    )
    for key, value in hf_config.to_dict().items():
        if key in accounted or (key in fresh_dict and fresh_dict[key] == value):
            continue
        raise ValueError(
            f"{name} does not implement {key!r} (= {value!r}); it may change the outputs. "
            "This class cannot build the model that value describes; to build it anyway, "
            + (
                f"set it back to transformers' default, {fresh_dict[key]!r}."
                if key in fresh_dict
                else "remove the field (a fresh config of that class does not carry it)."
            )
        )
    return config_class(**{**read, **values})


@functools.cache
def _fresh(hf_config_class: type) -> tuple[Any, dict[str, Any]]:
    """A default ``hf_config_class()`` and its ``to_dict()`` (built once per class; never mutated)."""
    fresh = hf_config_class()
    return fresh, fresh.to_dict()


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING  # a required field: never equal to what a config carries


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
