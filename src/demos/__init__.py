"""From-scratch building blocks of open LLMs, each proven equal to its Hugging Face reference.

Where code goes (the layout rule; the README repeats it):

``demos/layers/``
    An idea a chapter derives, as pure functions and small modules: RoPE, partial rotary included
    (``rope``), Llama 3's frequency scaling (``rope_scaling``), Qwen's training-free long-context
    tricks (``long_context``: dynamic NTK, LogN), attention (``attention``), masks (``masks``), KV
    caches and their bytes (``kv_cache``), a forward's matmul FLOPs (``flops``), banded
    sliding-window attention (``banded_attention``), FlashAttention's tiling and online softmax
    (``tiled_attention``), fused q/k/v layouts (``fused_qkv``), norms (``norms``), MLPs (``mlp``),
    the selective scan (``selective_scan``), mixture of experts (``moe``), NF4 quantisation
    (``quantization``), FFT convolution (``fft_conv``) and the Hyena operator (``hyena``), ...
``demos/catalog.py``
    The one catalogue of models: per transformers ``model_type`` our class, its tiny config and its
    registry columns (``ARCHITECTURES``); the tiny models every check runs on (``ROWS``). The
    conformance table, the tiny configs, the debugger's tests, the chapters' parity cells and the
    registry's checks are generated from it. A Llama-architecture family with no change of its own
    (Yi, Vicuna, Orca 2, XGen) costs a registry entry and a row here; a new ``model_type`` costs a
    module below, its entry in ``ARCHITECTURES`` and its rows (``tests/test_catalog.py`` fails until
    they exist).
``demos/models/<transformers model_type>.py``
    A model whose weights load from a transformers class (``llama.py`` for ``LlamaForCausalLM``).
    Decoders share the shell ``demos/models/decoder.py::DecoderLM``, which builds each block with
    its layer index (``block_class(config, layer_idx)``; per-layer kinds are ``config.layer_types``)
    and takes every part from a hook (``make_embedding``, ``make_block``, ``make_final_norm``,
    ``make_head``; a block's ``make_attention``, ``make_mlp``, ``make_norm``); each block declares
    its sub-steps (``substeps()``) for the debugger, and each config the ``model_types`` its
    ``from_hf`` reads. A new family subclasses the closest model already there and marks each change
    with ``# NEW vs Llama: ...``, as transformers' modular files do. Classes are named
    ``<Prefix>LMConfig``, ``<Prefix>LM`` and ``<Prefix>LM<Part>`` (``LlamaLMBlock``), with
    transformers' class prefix for that model_type (``GPTNeoXLM`` in ``gpt_neox.py``), never a
    transformers class name, so a notebook can import both.
``demos/generation.py``
    One ``generate`` for every language model (greedy or sampled, padded batches).
``demos/training/``
    Losses (pure functions of tensors) and training loops; ``trl_reference`` drives TRL offline;
    conversation formats and their label masks (``conversation``), gradient checkpointing
    (``checkpointing``).
``demos/eval/``
    Evaluation: continuation log-likelihoods and metrics as lm-evaluation-harness computes them
    (``scoring``, ``metrics``, ``fewshot``), one module per benchmark with rules of its own
    (``mmlu``, ``truthfulqa``, ``winogrande``, ``gsm8k``) and Chatbot Arena's ratings (``arena``).
``demos/toys/<chapter>.py``
    A chapter's toy task with its data, shared by the chapter and its script.
``demos/exercises/<chapter>.py``
    That chapter's checkers, built on ``demos.exercises.core``: they compare with recorded results
    (``demos/exercises/data``), not with reference code, which stays in the repository's tests.
``demos/registry/``
    The model registry (``registry.yaml``, one cited record per released size).
``demos/traps/<chapter>.py``
    That chapter's measured mistakes (``TRAPS``), gathered by the "Nearly right" appendix.
``demos/debugging.py``
    ``first_divergence``: the first layer and sub-step where a from-scratch model leaves its reference.
``demos/testing.py``
    The tiny random transformers models built from the catalogue's tiny configs (``tiny_config``,
    ``tiny_model``), shared by the tests, the traps and the scripts.
``demos/parity.py``
    Parity with a reference, written once: the tolerance policy (``tolerance_for``, the margin
    ``MARGIN``), ``compare_lm`` and ``parity_report`` (re-exported by ``demos/book.py``).
``demos/validation.py``, ``demos/weights.py``, ``demos/book.py``, ``demos/display.py``,
``demos/listing.py``
    Shared argument checks (``ValueError`` at the boundary), weight copying, notebook display
    (``demos/book.py`` re-exports the parity and display helpers), what a listing on a page folds
    (the argument checks). The book's own tooling (table of contents, results page) is
    ``book/booktools.py``.
    Shared helpers are public and live in one module; nothing private is imported across modules.

Axis letters, the same in every module: ``b`` batch, ``t`` query length (new tokens), ``s`` key
length (cached + new), ``h`` query heads, ``g`` key/value heads, ``d`` head dimension, ``c`` hidden
size, ``f`` MLP width, ``v`` vocabulary; Mamba: ``b l e n`` (batch, length, channels, state).

The public API is re-exported here from one list, :data:`__all__`, and imported lazily (a page that
needs only the registry does not pay for importing torch): ``from demos import attention, apply_rope``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it (one list; ``__all__`` is its keys)
_EXPORTS = {
    # layers
    "rope_inv_freq": "demos.layers.rope",
    "rope_cos_sin": "demos.layers.rope",
    "rotate_half": "demos.layers.rope",
    "apply_rope": "demos.layers.rope",
    "causal_mask": "demos.layers.masks",
    "sliding_window_mask": "demos.layers.masks",
    "repeat_kv": "demos.layers.attention",
    "attention_weights": "demos.layers.attention",
    "attention": "demos.layers.attention",
    "AttentionConfig": "demos.layers.attention",
    "GroupedQueryAttention": "demos.layers.attention",
    "KVCache": "demos.layers.kv_cache",
    "RollingKVCache": "demos.layers.kv_cache",
    "kv_cache_bytes_per_token": "demos.layers.kv_cache",
    "banded_attention": "demos.layers.banded_attention",
    "tiled_attention": "demos.layers.tiled_attention",
    "online_softmax_update": "demos.layers.tiled_attention",
    "split_fused_qkv": "demos.layers.fused_qkv",
    "FusedQKVAttention": "demos.layers.fused_qkv",
    "RMSNorm": "demos.layers.norms",
    "GatedMLP": "demos.layers.mlp",
    "GeluMLP": "demos.layers.mlp",
    "selective_scan": "demos.layers.selective_scan",
    "selective_scan_parallel": "demos.layers.selective_scan",
    "moe_parameter_counts": "demos.layers.moe",
    "route_top_k": "demos.layers.moe",
    "SparseMoE": "demos.layers.moe",
    "load_balancing_loss": "demos.layers.moe",
    # stripedhyena: the long causal convolution and the Hyena operator
    "fft_causal_conv": "demos.layers.fft_conv",
    "direct_causal_conv": "demos.layers.fft_conv",
    "HyenaOperator": "demos.layers.hyena",
    # phi3: NF4 quantisation, LongRoPE, the model
    "quantize_nf4": "demos.layers.quantization",
    "dequantize_nf4": "demos.layers.quantization",
    "LinearNF4": "demos.layers.quantization",
    "longrope_inv_freq": "demos.models.phi3",
    "Phi3LMConfig": "demos.models.phi3",
    "Phi3LM": "demos.models.phi3",
    # Llama 3 and Gemma (branch llama3-gemma)
    "Llama3RopeScaling": "demos.layers.rope_scaling",
    "llama3_inv_freq": "demos.layers.rope_scaling",
    "GemmaRMSNorm": "demos.layers.norms",
    "GemmaLMConfig": "demos.models.gemma",
    "GemmaLM": "demos.models.gemma",
    # Qwen (first generation): the training-free long-context tricks
    "qwen_ntk_alpha": "demos.layers.long_context",
    "ntk_scaled_base": "demos.layers.long_context",
    "dynamic_ntk_inv_freq": "demos.layers.long_context",
    "logn_scale": "demos.layers.long_context",
    "apply_logn": "demos.layers.long_context",
    "LogNAttention": "demos.layers.long_context",
    "lower_layers_window": "demos.layers.long_context",
    # models
    "LlamaLMConfig": "demos.models.llama",
    "LlamaLM": "demos.models.llama",
    "MistralLMConfig": "demos.models.mistral",
    "MistralLM": "demos.models.mistral",
    "Qwen2LMConfig": "demos.models.qwen2",
    "Qwen2LM": "demos.models.qwen2",
    "Qwen2LMBlock": "demos.models.qwen2",
    "Qwen2MoeLMConfig": "demos.models.qwen2_moe",
    "Qwen2MoeLM": "demos.models.qwen2_moe",
    "DecoderLM": "demos.models.decoder",
    "SubStep": "demos.models.decoder",
    "ARCHITECTURES": "demos.catalog",
    "ROWS": "demos.catalog",
    "FalconLMConfig": "demos.models.falcon",
    "FalconLM": "demos.models.falcon",
    "MambaLMConfig": "demos.models.mamba",
    "MambaLM": "demos.models.mamba",
    "state_bytes_per_token": "demos.models.mamba",
    "GPTNeoXLMConfig": "demos.models.gpt_neox",
    "GPTNeoXLM": "demos.models.gpt_neox",
    "PersimmonLMConfig": "demos.models.persimmon",
    "PersimmonLM": "demos.models.persimmon",
    "PhiLMConfig": "demos.models.phi",
    "PhiLM": "demos.models.phi",
    "SquaredReLUMLP": "demos.layers.mlp",
    "squared_relu": "demos.layers.mlp",
    "generate": "demos.generation",
    # training
    "sequence_logps": "demos.training.preference",
    "dpo_loss": "demos.training.preference",
    "orpo_loss": "demos.training.preference",
    "log1mexp": "demos.training.preference",
    "causal_lm_loss": "demos.training.sft",
    "masked_labels": "demos.training.sft",
    # Vicuna: the conversation format, its label mask, gradient checkpointing
    "vicuna_prompt": "demos.training.conversation",
    "render_vicuna": "demos.training.conversation",
    "trained_tokens": "demos.training.conversation",
    "tokenize_conversations": "demos.training.conversation",
    "VICUNA_CHAT_TEMPLATE": "demos.training.conversation",
    "checkpointed_forward": "demos.training.checkpointing",
    "activation_bytes": "demos.training.checkpointing",
    # evaluation
    "loglikelihood": "demos.eval.scoring",
    "encode_pair": "demos.eval.scoring",
    "multiple_choice_scores": "demos.eval.metrics",
    "MultipleChoiceScores": "demos.eval.metrics",
    "acc": "demos.eval.metrics",
    "acc_norm": "demos.eval.metrics",
    "fewshot_prompt": "demos.eval.fewshot",
    "LEADERBOARD_TASKS": "demos.eval.fewshot",
    "LEADERBOARD_SHOTS": "demos.eval.fewshot",
    "mc1": "demos.eval.truthfulqa",
    "mc2": "demos.eval.truthfulqa",
    "winogrande_requests": "demos.eval.winogrande",
    # shared helpers
    "check_positive_int": "demos.validation",
    "check_token_ids": "demos.validation",
    "load_hf_weights": "demos.weights",
    "randomize_weights_": "demos.weights",
    "count_parameters": "demos.weights",
    "show_source": "demos.book",
    "parity_report": "demos.book",
    "compare_lm": "demos.book",
    # evaluation: Chatbot Arena and GSM8K
    "simulate_battles": "demos.eval.arena",
    "online_elo": "demos.eval.arena",
    "bradley_terry": "demos.eval.arena",
    "bootstrap_bradley_terry": "demos.eval.arena",
    "confidence_intervals": "demos.eval.arena",
    "extract_strict": "demos.eval.gsm8k",
    "extract_flexible": "demos.eval.gsm8k",
    "maj_at_k": "demos.eval.gsm8k",
    # debugging a from-scratch model against its reference
    "first_divergence": "demos.debugging",
    "Divergence": "demos.debugging",
    "NoDivergence": "demos.debugging",
}

__all__ = sorted(_EXPORTS)


if "ipykernel" in sys.modules:  # in a Jupyter kernel: the book's, or a learner's
    from demos.registry.citations import use_plain_citations

    use_plain_citations()  # outside the book's build, {cite} in a cell's Markdown as links
    if importlib.util.find_spec("matplotlib") is not None:
        from demos.display import record_figure_text_sizes

        record_figure_text_sizes()  # every figure a page shows records its smallest text


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'demos' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
