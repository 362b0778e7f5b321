"""The one catalogue of models: every architecture we implement, and every tiny model we test it on.

Two tables, and everything else is generated from them:

* :data:`ARCHITECTURES`: per transformers ``model_type``, our class that serves it, the fields of its
  tiny random config (:mod:`demos.testing` builds it), and how the registry's columns become its
  ``config.json`` fields (:mod:`demos.registry.hf`).
* :data:`ROWS`: the tiny models, one per feature a test must see turned on (a window shorter than
  the sequence, a RoPE scaling, a parallel block, a bias ...). ``tests/test_conformance.py`` runs every
  check on every row, ``tests/test_debugging.py`` plants a bug in each row's attention, MLP and norm,
  and the chapters' parity cells build their models from rows (:meth:`Row.pair`). A row that names
  registry ``families`` has their real shape ratios (query heads per key/value head, ``head_dim``
  against ``hidden_size / heads``, the rotary fraction, a window shorter than the sequence or none):
  ``tests/test_catalog.py`` checks them against the released configurations.

What a new family costs: a Llama-architecture family (Yi, Vicuna, Orca 2, XGen) is a registry entry
and a row here. A new ``model_type`` is a module ``demos/models/<model_type>.py``, its entry in
:data:`ARCHITECTURES` and its rows; ``tests/test_catalog.py`` fails until both exist.

This module imports neither torch nor transformers (the registry reads it): classes are named by
``"module:Class"`` and imported when asked for.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

T = 9  # the conformance table's sequence length: rows with a window use W < T


@dataclass(frozen=True)
class Architecture:
    """A transformers ``model_type`` and what we build for it."""

    model_type: str
    ours: str | None  # "demos.models.llama:LlamaLM"; None: a reference only (no class of ours)
    tiny: dict[str, Any]  # the tiny config's fields (two layers unless it says otherwise)
    # config.json field -> registry column (demos.registry.schema), beyond vocab, width and depth
    registry: dict[str, str] = field(default_factory=dict)

    def ours_class(self) -> type:
        """Our class, imported now; ``ValueError`` for a reference-only architecture."""
        if self.ours is None:
            raise ValueError(f"model_type {self.model_type!r} has no class here (a reference only)")
        module, _, name = self.ours.partition(":")
        return getattr(importlib.import_module(module), name)


_BASE = dict(  # two layers, width 32, four heads: what most tiny configs start from
    vocab_size=97,
    hidden_size=32,
    intermediate_size=56,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=256,
)
_LLAMA = {**_BASE, "num_key_value_heads": 2, "rms_norm_eps": 1e-5}
_HEADS = {"num_attention_heads": "heads"}
_GQA = {**_HEADS, "num_key_value_heads": "kv_heads", "intermediate_size": "intermediate_size"}

ARCHITECTURES = {
    a.model_type: a
    for a in (
        Architecture("llama", "demos.models.llama:LlamaLM", _LLAMA, _GQA),
        Architecture(
            "mistral", "demos.models.mistral:MistralLM", {**_LLAMA, "sliding_window": 4}, _GQA
        ),
        Architecture("qwen2", "demos.models.qwen2:Qwen2LM", _LLAMA, _GQA),
        Architecture(  # 4 routed experts of width 16, 2 per token, a shared expert of width 24
            "qwen2_moe",
            "demos.models.qwen2_moe:Qwen2MoeLM",
            {
                **_LLAMA,
                "num_experts": 4,
                "num_experts_per_tok": 2,
                "moe_intermediate_size": 16,
                "shared_expert_intermediate_size": 24,
                # the experts as modeling_qwen2_moe.py writes them (a loop over experts), as the
                # attention is eager: the default, grouped_mm, sums gradients in another order
                "experts_implementation": "eager",
            },
            {
                **_GQA,
                "num_experts": "experts",
                "num_experts_per_tok": "experts_per_token",
                "moe_intermediate_size": "expert_size",
                "shared_expert_intermediate_size": "shared_expert_size",
                "decoder_sparse_step": "sparse_step",
            },
        ),
        Architecture(
            "gemma",  # Gemma-2B style: one key/value head, head_dim 16 != 32 / 4, tied
            "demos.models.gemma:GemmaLM",
            {**_LLAMA, "num_key_value_heads": 1, "head_dim": 16},
            {**_GQA, "head_dim": "head_dim"},
        ),
        Architecture("phi3", "demos.models.phi3:Phi3LM", _LLAMA, _GQA),  # fused qkv, gate_up
        Architecture(
            "falcon",  # Falcon-7B style (multi-query); new_decoder_architecture=True: 40B style
            "demos.models.falcon:FalconLM",
            dict(
                vocab_size=97,
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_kv_heads=2,
                multi_query=True,
                new_decoder_architecture=False,
                max_position_embeddings=256,
            ),
            {**_HEADS, "ffn_hidden_size": "intermediate_size"},
        ),
        Architecture(  # head_dim 8, rotary_pct 0.5 -> 4 rotated channels
            "gpt_neox",
            "demos.models.gpt_neox:GPTNeoXLM",
            {**_BASE, "rotary_pct": 0.5, "use_parallel_residual": True},
            {**_HEADS, "intermediate_size": "intermediate_size"},
        ),
        Architecture(  # squared ReLU, q/k LayerNorm, head_dim 8, half of it rotated
            "persimmon",
            "demos.models.persimmon:PersimmonLM",
            {**_BASE, "partial_rotary_factor": 0.5, "qk_layernorm": True, "rope_theta": 25000.0},
            {**_HEADS, "intermediate_size": "intermediate_size"},
        ),
        Architecture(  # one shared LayerNorm, head_dim 8, half of it rotated, gelu_new
            "phi", "demos.models.phi:PhiLM", {**_BASE, "partial_rotary_factor": 0.5}, _GQA
        ),
        Architecture(
            "mamba",
            "demos.models.mamba:MambaLM",
            dict(
                vocab_size=97,
                hidden_size=32,
                num_hidden_layers=2,
                state_size=8,
                expand=2,
                conv_kernel=4,
            ),
        ),
        Architecture(  # a reference only (MoE parameter counts): 5 experts, 2 per token, 3 layers
            "mixtral",
            None,
            dict(
                vocab_size=50,
                hidden_size=16,
                intermediate_size=24,
                num_hidden_layers=3,
                num_attention_heads=4,
                num_key_value_heads=2,
                num_local_experts=5,
                num_experts_per_tok=2,
            ),
        ),
    )
}


@dataclass(frozen=True)
class Row:
    """One tiny model: a transformers reference (``model_type``'s tiny config plus ``config``) and our
    class for it. ``families``: the registry families whose shape ratios it has."""

    name: str
    model_type: str  # a key of ARCHITECTURES
    config: dict[str, Any] = field(default_factory=dict)  # overrides of the tiny config
    families: tuple[str, ...] = ()  # registry families it stands for (their shape ratios)
    shows: str = ""  # what the row turns on, in a few words
    tolerance: float = 1.0  # factor on the setting's atol and rtol

    @property
    def architecture(self) -> Architecture:
        return ARCHITECTURES[self.model_type]

    @property
    def ours(self) -> type:
        """Our class for this row (imported now)."""
        return self.architecture.ours_class()

    def hf_config(self, **overrides: Any) -> Any:
        """transformers' config of this row (then ``overrides``)."""
        from demos.testing import tiny_config

        return tiny_config(self.model_type, **{**self.config, **overrides})

    def reference(self, device: str = "cpu", dtype: Any = None, **overrides: Any) -> Any:
        """A random transformers ``...ForCausalLM`` of this row, in eval mode (torch's global seed)."""
        import torch

        from demos.testing import tiny_model

        dtype = torch.float32 if dtype is None else dtype
        return tiny_model(self.model_type, device, dtype, **{**self.config, **overrides})

    def pair(self, device: str = "cpu", dtype: Any = None, **overrides: Any) -> tuple[Any, Any]:
        """``(ours, reference)``: a random reference and our model with its weights, both in eval mode."""
        reference = self.reference(device, dtype, **overrides)
        return self.ours.from_hf(reference).eval(), reference


# Llama 3.1's scaling on a context of 64. With d = 8 and base 1e4 the 4 wavelengths are 6.3, 63,
# 628 and 6283 positions: one kept (< 64 / 4), one blended (between 16 and 64), two divided by 8.
# (Llama 3's own base, 5e5, would leave none in the blend: a row that claims the blend turns it on.)
_LLAMA3_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 10000.0,
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64,
}
_LONGROPE = {  # below the switch at L = 64 here: the short factors, attention factor 1.15
    "rope_type": "longrope",
    "rope_theta": 10000.0,
    "factor": 4.0,
    "short_factor": [1.0, 1.3, 2.1, 3.7],
    "long_factor": [1.0, 2.9, 6.4, 15.2],
}
_WIDE16 = {"hidden_size": 128, "num_attention_heads": 16, "num_key_value_heads": 2}  # h / g = 8

ROWS = {
    r.name: r
    for r in (
        Row(
            "llama-mha",
            "llama",
            {"num_key_value_heads": 4},
            ("Llama 2", "Orca 2", "Vicuna", "XGen"),
            "multi-head attention (g = h): Llama-2-7B/13B, Orca 2, Vicuna, XGen",
        ),
        Row(
            "llama-gqa", "llama", {"num_key_value_heads": 2}, (), "grouped-query attention, h/g = 2"
        ),
        Row("llama-mqa", "llama", {"num_key_value_heads": 1}, (), "multi-query attention (g = 1)"),
        Row("llama2-70b-like", "llama", _WIDE16, ("Llama 2",), "GQA with h/g = 8, as Llama-2-70B"),
        Row(
            "llama3-like",
            "llama",
            {"num_attention_heads": 8, "hidden_size": 64, "rope_parameters": _LLAMA3_ROPE},
            ("Llama 3",),
            "h/g = 4 and Llama 3.1's RoPE scaling (original 64): one frequency kept, one blended, two divided by 8",
        ),
        Row(
            "yi-like",
            "llama",
            {**_WIDE16, "rope_parameters": {"rope_type": "default", "rope_theta": 5e6}},
            ("Yi", "Yi-1.5"),
            "GQA with h/g = 8 and g = 2, rope_theta 5e6, as Yi-6B/9B and Yi-1.5-6B/9B",
        ),
        Row(
            "yi-34b-like",
            "llama",
            {
                "hidden_size": 112,
                "num_attention_heads": 14,
                "num_key_value_heads": 2,
                "rope_parameters": {"rope_type": "default", "rope_theta": 5e6},
            },
            ("Yi", "Yi-1.5"),
            "GQA with h/g = 7 (56 query heads over 8 key/value heads), head_dim = c/h, "
            "rope_theta 5e6, as Yi-34B and Yi-1.5-34B",
        ),
        Row(
            "mistral-W3",
            "mistral",
            {"num_attention_heads": 8, "hidden_size": 64, "sliding_window": 3},
            ("Mistral", "Zephyr"),
            f"sliding window W = 3 < T = {T}, h/g = 4, as Mistral 7B",
        ),
        Row(
            "qwen1.5-like",
            "qwen2",
            {"num_key_value_heads": 4},
            ("Qwen", "Qwen1.5"),
            "bias on q/k/v, none on o; multi-head attention",
        ),
        Row(
            "qwen2-window-unused",
            "qwen2",
            {"use_sliding_window": True, "sliding_window": 3, "max_window_layers": 2},
            (),
            "a window in the config that no layer uses (max_window_layers = all layers)",
        ),
        Row(
            "qwen2-window-top",
            "qwen2",
            {"use_sliding_window": True, "sliding_window": 3, "max_window_layers": 1},
            (),
            f"layer 0 full attention, layer 1 a window W = 3 < T = {T} (max_window_layers 1)",
        ),
        Row(
            "qwen1.5-moe-like",
            "qwen2_moe",
            {"num_key_value_heads": 4},
            ("Qwen1.5",),
            "every layer sparse: 2 of 4 routed experts plus a gated shared expert, top-k weights "
            "not renormalised (norm_topk_prob False), multi-head attention, as Qwen1.5-MoE-A2.7B",
        ),
        Row(
            "qwen2-moe-every-other",
            "qwen2_moe",
            {"decoder_sparse_step": 2, "norm_topk_prob": True},
            (),
            "decoder_sparse_step 2: layer 0 dense, layer 1 sparse; top-k weights renormalised",
        ),
        Row(
            "qwen2-moe-mlp-only",
            "qwen2_moe",
            {"mlp_only_layers": [1]},
            (),
            "mlp_only_layers [1]: layer 0 sparse, layer 1 dense although the step makes it sparse",
        ),
        Row(
            "gemma-2b-like",
            "gemma",
            {"head_dim": 8},
            ("Gemma",),
            "multi-query, head_dim = c/h, tied, GeGLU, 1 + w norms, sqrt(c) embedding",
        ),
        Row(
            "gemma-7b-like",
            "gemma",
            {"num_key_value_heads": 4},
            ("Gemma",),
            "multi-head, head_dim 16 != c/h = 8 (Gemma-7B: 256 != 192)",
        ),
        Row("phi3", "phi3", {"num_key_value_heads": 4}, ("Phi-3",), "fused qkv_proj, gate_up_proj"),
        Row(
            "phi3-W3",
            "phi3",
            {"sliding_window": 3},
            (),
            f"fused projections, GQA and a window W = 3 < T = {T}",
        ),
        Row(
            "phi3-longrope",
            "phi3",
            {
                "num_key_value_heads": 4,
                "original_max_position_embeddings": 64,
                "rope_parameters": _LONGROPE,
            },
            ("Phi-3",),
            "LongRoPE below its switch (short factors, attention factor)",
        ),
        Row(  # the switch at L = 6: the conformance checks' sequences (9, 11, 5 + 10) cross it
            "phi3-longrope-switch",
            "phi3",
            # a copy: transformers writes original_max_position_embeddings into the dict it is given
            {"original_max_position_embeddings": 6, "rope_parameters": {**_LONGROPE}},
            (),
            f"LongRoPE across its switch (L = 6 < T = {T}): long factors, a cache re-encoded",
        ),
        Row(  # head_dim 16: sqrt(d) a power of two, as every Falcon's (d = 64), see falcon.py
            "falcon-7b",
            "falcon",
            {"hidden_size": 64},
            ("Falcon",),
            "multi-query, one LayerNorm feeding the parallel attention and MLP",
        ),
        Row(
            "falcon-40b",
            "falcon",
            {
                "hidden_size": 128,  # head_dim 4
                "num_attention_heads": 32,
                "new_decoder_architecture": True,
                "num_kv_heads": 2,
            },
            ("Falcon",),
            "new architecture: h/g = 16 (Falcon-40B: 128 / 8), two LayerNorms",
        ),
        Row(
            "pythia-parallel",
            "gpt_neox",
            {"hidden_size": 64, "rotary_pct": 0.25},
            ("Pythia",),
            "parallel residual, 25 % of head_dim 16 rotated, fused QKV",
        ),
        Row(
            "neox-sequential",
            "gpt_neox",
            {"use_parallel_residual": False},
            (),
            "GPT-NeoX's sequential block, half of head_dim 8 rotated",
        ),
        Row(
            "persimmon",
            "persimmon",
            {},
            ("Persimmon",),
            "QK LayerNorm, squared ReLU, half of each head rotated",
        ),
        Row("phi", "phi", {}, ("Phi",), "one shared LayerNorm, biased q/k/v/dense and head"),
        Row(  # tied, a random Mamba repeats its last token: greedy decoding would compare little
            "mamba",
            "mamba",
            {"tie_word_embeddings": False},
            ("Mamba",),
            "selective scan, causal convolution",
        ),
    )
}


def rows_of(model_type: str) -> list[Row]:
    """The rows of one ``model_type``."""
    return [r for r in ROWS.values() if r.model_type == model_type]


def class_for_model_type(model_type: Any) -> str | None:
    """``"demos.models.llama.LlamaLM"`` for a ``model_type`` we serve, else ``None``."""
    arch = ARCHITECTURES.get(model_type) if isinstance(model_type, str) else None
    if arch is None or arch.ours is None:
        return None
    return arch.ours.replace(":", ".")


def shape_ratios(hf_config: Any) -> dict[str, Any]:
    """What a tiny row must share with a released size: the attention kind (MHA, MQA, or GQA with
    its ``h / g``), whether ``head_dim == hidden_size / heads``, the rotary fraction, and whether a
    sliding window is used by some layer. Mamba: its mixer only.

    ``hf_config``: a transformers config (tiny or released).
    """
    h = getattr(hf_config, "num_attention_heads", None)
    if not h:
        return {"mixer": hf_config.model_type}
    g = _kv_heads(hf_config, h)
    d = getattr(hf_config, "head_dim", None) or hf_config.hidden_size // h
    rope = getattr(hf_config, "rope_parameters", None) or {}
    fraction = rope.get("partial_rotary_factor", getattr(hf_config, "partial_rotary_factor", 1.0))
    window = getattr(hf_config, "sliding_window", None)
    layer_types = getattr(hf_config, "layer_types", None)
    if window is not None and layer_types is not None:
        window = window if "sliding_attention" in layer_types else None
    kind = "MQA" if g == 1 else "MHA" if g == h else f"GQA h/g={h // g}"
    return {
        "attention": kind,
        "head_dim == hidden/heads": d * h == hf_config.hidden_size,
        "rotary fraction": float(fraction),
        "sliding window": window is not None,
    }


def _kv_heads(hf_config: Any, h: int) -> int:
    if hf_config.model_type == "falcon":  # the old architecture: multi_query means one head
        if hf_config.new_decoder_architecture:
            return hf_config.num_kv_heads
        return 1 if hf_config.multi_query else h
    return getattr(hf_config, "num_key_value_heads", None) or h
