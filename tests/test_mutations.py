"""Mutation-proof parity: every knob a catalogue row turns on, broken on purpose, fails the
conformance table.

:data:`MUTANTS` is a curated list: one mutant per knob a configuration turns on (the knob ignored,
off by a step, or the other convention), and every trap of :mod:`demos.traps` that changes a model's
forward, substituted into our model with the trap's own wrong code. For each mutant and each
catalogue row whose configuration turns its knob on (``Mutant.on``, asked of the row's config, so
the rows are never listed by hand), the conformance checks of ``tests/test_conformance.py`` run
in-process, cheapest first (:data:`CHECKS`): the unmutated row must pass the check, the mutated one
must fail it with a parity ``AssertionError`` (an exception of another kind is a broken patch and
fails the test). A row on which no check fails is a surviving mutant: the test fails.

The knob coverage per family is written from the run into ``results/mutation_coverage.json``
(``MUTATION_COVERAGE_WRITE=1 pytest tests/test_mutations.py`` rewrites it; otherwise the last test
fails while the file differs from this run) and the parity appendix renders it
(:func:`mutation_report.coverage_markdown`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import test_conformance as conformance
import torch
import torch.nn.functional as F

from demos.catalog import ARCHITECTURES, ROWS, Row, T, shape_ratios
from demos.layers import attention, fused_qkv
from demos.layers.kv_cache import RollingKVCache
from demos.layers.mlp import GatedMLP
from demos.layers.rope import rope_cos_sin, rope_inv_freq
from demos.models import falcon, gemma, gpt_neox, llama, mamba, mistral, persimmon, phi3
from demos.traps import all_traps
from demos.traps import falcon as falcon_traps
from demos.traps import gemma as gemma_traps
from demos.traps import llama2 as llama2_traps
from demos.traps import llama3 as llama3_traps
from demos.traps import mamba as mamba_traps
from demos.traps import mistral as mistral_traps
from demos.traps import persimmon as persimmon_traps
from demos.traps import phi as phi_traps
from demos.traps import phi3 as phi3_traps
from demos.traps import pythia as pythia_traps
from demos.traps import qwen as qwen_traps
from demos.traps import qwen15 as qwen15_traps

ROOT = Path(__file__).resolve().parents[1]
COVERAGE_FILE = ROOT / "results" / "mutation_coverage.json"

# The conformance checks a mutant may fail, cheapest first: (setting name or None, the check).
# They run at the session's thread count (the ``threads`` fixture's argument is not read).
CHECKS: dict[str, tuple[str | None, Callable[[Any, Row], None]]] = {
    "first block input": (
        "cpu-fp32",
        conformance.test_first_block_input_equals_transformers_exactly,
    ),
    "first block input bf16": (
        "cpu-bf16",
        conformance.test_first_block_input_equals_transformers_exactly,
    ),
    "logits": (
        "cpu-fp32",
        lambda s, row: conformance.test_logits_and_gradients_match_transformers(s, row, T, None),
    ),
    "cached": (
        "cpu-fp32",
        lambda s, row: conformance.test_cached_decoding_equals_full_forward(s, row, None),
    ),
    "greedy": (
        "cpu-fp32",
        lambda s, row: conformance.test_greedy_generate_equals_transformers(s, row, None),
    ),
    "padded": (
        "cpu-fp32",
        lambda s, row: conformance.test_padded_batch_logits_and_gradients_match_transformers(
            s, row, None
        ),
    ),
    "logits bf16": (
        "cpu-bf16",
        lambda s, row: conformance.test_logits_and_gradients_match_transformers(s, row, T, None),
    ),
    "parameter count": (
        None,
        lambda s, row: conformance.test_parameter_count_matches_transformers(row),
    ),
}
DEFAULT_CHECKS = ("logits", "cached", "greedy", "padded")
# A mutant caught by a tolerance must miss it by this factor (its error over the tolerance, as the
# conftest scales it): a kill that another CPU's rounding could turn into a pass does not count.
# (Measured: the closest kill is 8.9e-5 against 1e-5, Gemma's eps x 10 on gemma-7b-like.)
KILL_MARGIN = 4.0

# A plant: given the row and our config of it, a context in which the mutation is in place.
Plant = Callable[[Row, Any], contextlib.AbstractContextManager]


@dataclass(frozen=True)
class Mutant:
    """One wrong version of one knob.

    Attributes:
        knob: what the configuration turns on, as the coverage table names it.
        kind: ``"ignored"``, ``"off by one"``, ``"other convention"`` or ``"trap"``.
        family: the ``model_type``s whose code it mutates (rows of other types are not asked).
        on: ``on(row, config)``: does this row's configuration (our config of it) turn the knob on.
        plant: the mutation (:func:`code`, :func:`model`, :func:`config`).
        wrong: the wrong version in a few words.
        checks: the conformance checks to try, cheapest first.
        trap: the trap's title (``demos.traps``) when the mutant is one.
    """

    knob: str
    kind: str
    family: tuple[str, ...]
    on: Callable[[Row, Any], bool]
    plant: Plant
    wrong: str
    checks: tuple[str, ...] = DEFAULT_CHECKS
    trap: str = ""

    @property
    def id(self) -> str:
        return f"{self.knob} / {self.wrong}"


# ---- how a mutation is planted ----


def code(target: Any, name: str, wrong: Callable[[Any], Any]) -> Plant:
    """Replace ``target.name`` by ``wrong(config)`` (the config lets a wrong line use the row's shape)."""
    return lambda row, cfg: mock.patch.object(target, name, wrong(cfg))


def model(mutate: Callable[[Any], Any]) -> Plant:
    """Our model as ``from_hf`` builds it, then ``mutate(ours)``: changed in place (returns None) or
    replaced by the model it returns (same weights)."""

    def plant(row: Row, cfg: Any) -> contextlib.AbstractContextManager:
        cls = row.ours
        original = cls.from_hf.__func__

        def from_hf(klass, hf):
            ours = original(klass, hf)
            wrong = mutate(ours)
            return ours if wrong is None else wrong

        return mock.patch.object(cls, "from_hf", classmethod(from_hf))

    return plant


def rebuilt(ours: Any, cfg: Any) -> Any:
    """A model of ``ours``'s class built from ``cfg``, with ``ours``'s weights where names match
    (a parameter the change adds keeps its fresh initialisation, one it removes is dropped)."""
    wrong = type(ours)(cfg)
    wrong.load_state_dict(ours.state_dict(), strict=False)
    return wrong


def config(change: Callable[[Any], dict[str, Any]]) -> Plant:
    """Our model rebuilt from its config with the fields ``change(config)`` returns, same weights."""
    return model(
        lambda ours: rebuilt(ours, dataclasses.replace(ours.config, **change(ours.config)))
    )


def drop_bias(*names: str) -> Plant:
    """The bias of every linear layer whose name ends with one of ``names`` removed."""

    def mutate(ours: Any) -> None:
        for name, module in ours.named_modules():
            if name.split(".")[-1] in names:
                module.bias = None

    return model(mutate)


def together(*plants: Plant) -> Plant:
    """Several plants at once."""

    def plant(row: Row, cfg: Any) -> contextlib.AbstractContextManager:
        stack = contextlib.ExitStack()
        for p in plants:
            stack.enter_context(p(row, cfg))
        return stack

    return plant


def as_class(cls: type, ours: Any) -> Any:
    """``ours``'s config and weights in the trap's class ``cls``."""
    wrong = cls(ours.config)
    wrong.load_state_dict(ours.state_dict())
    return wrong


def add_bias(*names: str) -> Callable[[Any], None]:
    """A zero bias on every linear layer whose name ends with one of ``names`` (a bias the
    checkpoint does not have, initialised to zero: the logits stay the same, the parameters do not)."""

    def mutate(ours: Any) -> None:
        for name, module in ours.named_modules():
            if name.split(".")[-1] in names:
                module.bias = torch.nn.Parameter(module.weight.new_zeros(module.out_features))

    return mutate


def enter(
    make_context: Callable[[Any], contextlib.AbstractContextManager],
) -> Callable[[Any], None]:
    """A trap's context (``plant(ours)``), entered on a model that lives for one check only; the
    model keeps the context (a generator's, collected, would run its exit and undo the trap)."""

    def mutate(ours: Any) -> None:
        context = make_context(ours)
        context.__enter__()
        ours.__dict__["_trap_context"] = context

    return mutate


# ---- which rows turn a knob on ----


@functools.cache
def ratios(row_name: str) -> dict[str, Any]:
    return shape_ratios(ROWS[row_name].hf_config())


def eps_field(cfg: Any) -> str:
    return next(
        f for f in ("rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon") if hasattr(cfg, f)
    )


def full_rotary(row: Row, cfg: Any) -> bool:
    return ratios(row.name).get("rotary fraction") == 1.0


def partial_rotary(row: Row, cfg: Any) -> bool:
    return ratios(row.name).get("rotary fraction", 1.0) < 1.0


def grouped(row: Row, cfg: Any) -> bool:
    return ratios(row.name).get("attention", "").startswith("GQA")


def windowed(row: Row, cfg: Any) -> bool:
    w = getattr(cfg, "sliding_window", None)
    return w is not None and w < T and any(cfg.window(i) for i in range(cfg.num_hidden_layers))


def window_on_some_layers(row: Row, cfg: Any) -> bool:
    types = getattr(cfg, "layer_types", None) or ()
    return getattr(cfg, "sliding_window", None) is not None and "full_attention" in types


def field_is(name: str, test: Callable[[Any], bool]) -> Callable[[Row, Any], bool]:
    return lambda row, cfg: hasattr(cfg, name) and bool(test(getattr(cfg, name)))


def always(row: Row, cfg: Any) -> bool:
    return True


# ---- the wrong lines that are not traps ----


def attention_scaled_by_hidden_over_heads(cfg: Any) -> Callable[..., torch.Tensor]:
    """scores / sqrt(c / h) where head_dim != c / h (the other convention for d)."""
    right = attention.attention
    scale = 1.0 / math.sqrt(cfg.hidden_size / cfg.num_attention_heads)
    return lambda q, k, v, **kw: right(q, k, v, **{**kw, "scale": scale})


def up_then_gate(self: GatedMLP, x: torch.Tensor) -> torch.Tensor:
    return self.down_proj(self.act(self.up_proj(x)) * self.gate_proj(x))  # gate and up swapped


def phi3_up_then_gate(self: Any, x: torch.Tensor) -> torch.Tensor:
    up, gate = self.gate_up_proj(x).chunk(2, dim=-1)  # the wrong order
    return self.down_proj(F.silu(gate) * up)


def longrope_switch_at_equal(cfg: Any) -> Callable[..., torch.Tensor]:
    """``seq_len >= L`` switches to the long factors (the right switch is ``>``)."""
    right = phi3.longrope_inv_freq
    return lambda d, base, short, long, seq_len, original: right(
        d, base, short, long, seq_len + 1, original
    )


def split_as(layout: str) -> Callable[[Any], Callable[..., Any]]:
    right = fused_qkv.split_fused_qkv
    return lambda cfg: lambda fused, h, g, d, _layout="": right(fused, h, g, d, layout)


def frequencies_over_head_dim(self: Any, positions: torch.Tensor, dtype: torch.dtype):
    """Partial rotary with theta_i = base^(-2i/d) (the full head's), not base^(-2i/r)."""
    r, d, base = self.config.rotary_ndims, self.config.head_dim, self.config.rope_theta
    inv_freq = rope_inv_freq(d, base)[: r // 2]
    return rope_cos_sin(positions, r, base, dtype, inv_freq=inv_freq)


def falcon_sequential(self: Any, x: torch.Tensor, *attention_args: Any) -> torch.Tensor:
    """The MLP reads x + attention (Llama's order) instead of the same normed x."""
    norm = self.ln_attn if self.two_norms else self.input_layernorm
    x = x + self.self_attention(norm(x), *attention_args)
    return x + self.mlp((self.ln_mlp if self.two_norms else self.input_layernorm)(x))


def scan_with(**changes: Any) -> Callable[[Any], Callable[..., Any]]:
    """Mamba's parallel scan called with some of its positional arguments changed."""
    names = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias", "delta_softplus", "last")
    right = mamba.selective_scan_parallel

    def wrong(*args: Any) -> Any:
        values = dict(zip(names, args, strict=True))
        values.update(changes)
        return right(*values.values())

    return lambda cfg: wrong


def scan_zoh_b(cfg: Any) -> Callable[..., Any]:
    """The trap's scan (B-bar by zero-order hold) for the output; the state from the right scan
    (the trap returns ``y`` only; the conformance checks compare outputs)."""
    right = mamba.selective_scan_parallel

    def wrong(u, delta, A, B, C, D, z, delta_bias, softplus, last):
        _, state = right(u, delta, A, B, C, D, z, delta_bias, softplus, last)
        return mamba_traps.scan_zoh_b(u, delta, A, B, C, D, z, delta_bias), state

    return wrong


def swap_moe(moe_class: type, experts_class: type | None = None) -> Plant:
    args = (moe_class,) if experts_class is None else (qwen15_traps.SparseMoE, experts_class)
    return model(lambda ours: qwen15_traps._swap_moe(ours, *args))


LLAMA_LIKE = ("llama", "mistral", "qwen2", "qwen2_moe", "gemma", "phi3")
ROPE = (*LLAMA_LIKE, "falcon", "gpt_neox", "persimmon", "phi")
NEOX_LIKE = ("gpt_neox", "persimmon", "phi")
WINDOWED = (
    "mistral",
    "qwen2",
    "qwen2_moe",
    "phi3",
)  # the types whose transformers config has a window
ALL = (*ROPE, "mamba")
TRAP = {t.title: t for t in all_traps()}


def trap(title: str) -> str:
    if title not in TRAP:
        raise ValueError(f"no trap titled {title!r} in demos.traps")
    return title


# fmt: off
MUTANTS = [  # a table: knob, kind, family, rows it is on, plant, wrong version, ...
    # ---- RoPE and attention, shared by every attention family ----
    Mutant(
        "RoPE pairs (i, i + d/2)", "trap", (*LLAMA_LIKE, "falcon"), full_rotary,
        code(attention, "apply_rope", lambda cfg: llama2_traps.rope_adjacent_pairs),
        "adjacent pairs", trap=trap("RoPE on adjacent pairs instead of halves"),
    ),
    Mutant(
        "GQA: repeat, not tile", "trap", (*LLAMA_LIKE, "falcon", "phi"), grouped,
        code(attention, "repeat_kv", lambda cfg: llama2_traps.tile_kv),
        "heads tiled", trap=trap("Key/value heads tiled instead of repeated (GQA)"),
    ),
    Mutant(
        "rope_theta", "ignored", ROPE, field_is("rope_theta", lambda b: b != 10000.0),
        config(lambda c: {"rope_theta": 10000.0}), "base 10000",
        trap=trap("RoPE base left at Llama's 1e4 when loading a model built for 5e6"),
    ),
    Mutant(
        "head_dim != c / h", "other convention", ("gemma",),
        lambda row, cfg: cfg.head_dim * cfg.num_attention_heads != cfg.hidden_size,
        code(attention, "attention", attention_scaled_by_hidden_over_heads),
        "scores / sqrt(c / h)",
    ),
    Mutant(
        "norm eps", "off by one", ALL, always,
        config(lambda c: {eps_field(c): getattr(c, eps_field(c)) * 10}), "eps x 10",
    ),
    Mutant(
        "tied embeddings", "ignored", ALL, field_is("tie_word_embeddings", bool),
        config(lambda c: {"tie_word_embeddings": False}), "head untied",
    ),
    # ---- Llama 3.1's RoPE scaling ----
    Mutant(
        "Llama 3.1 RoPE scaling", "ignored", ("llama",),
        field_is("llama3_rope_scaling", lambda s: s is not None),
        config(lambda c: {"llama3_rope_scaling": None}), "plain RoPE",
    ),
    Mutant(
        "Llama 3.1 RoPE scaling", "trap", ("llama",),
        field_is("llama3_rope_scaling", lambda s: s is not None),
        code(llama, "llama3_inv_freq", lambda cfg: llama3_traps.scale_every_frequency),
        "every frequency / factor", trap=trap("Llama 3.1 RoPE: every frequency divided by the factor"),
    ),
    Mutant(
        "Llama 3.1 RoPE scaling", "trap", ("llama",),
        field_is("llama3_rope_scaling", lambda s: s is not None),
        code(llama, "llama3_inv_freq", lambda cfg: llama3_traps.hard_cutoff),
        "hard cutoff", trap=trap("Llama 3.1 RoPE: a hard cutoff instead of the blended band"),
    ),
    # ---- sliding window ----
    Mutant(
        "window < sequence", "trap", WINDOWED, windowed,
        code(attention, "sliding_window_mask", lambda cfg: mistral_traps.window_one_too_wide),
        "W + 1 keys", trap=trap("Sliding window off by one"),
    ),
    Mutant(
        "window < sequence", "ignored", WINDOWED, windowed,
        config(lambda c: {"sliding_window": None, "layer_types": None}), "no window",
    ),
    Mutant(
        "window < sequence", "off by one", WINDOWED, windowed,
        # a query needs the W - 1 keys before it (the cache holds W: one of them is never read,
        # so a cache of W - 1 is an equivalent mutant, measured); W - 2 loses a key it needs
        code(mistral, "RollingKVCache", lambda cfg: lambda w: RollingKVCache(w - 2)),
        "rolling cache of W - 2", checks=("cached", "greedy"),
    ),
    Mutant(
        "window on some layers (layer_types)", "trap", ("qwen2",), window_on_some_layers,
        model(qwen_traps.window_everywhere), "window everywhere",
        trap=trap("The window on every layer"),
    ),
    # ---- biases ----
    Mutant(
        "q/k/v bias", "trap", ("qwen2",), field_is("attention_config", lambda a: a().qkv_bias),
        model(qwen_traps.without_qkv_bias), "read as Llama",
        trap=trap("q, k and v without their biases"),
    ),
    Mutant(
        "q/k/v bias", "ignored", ("qwen2_moe", *NEOX_LIKE),
        lambda row, cfg: getattr(cfg, "qkv_bias", getattr(cfg, "attention_bias", False)),
        drop_bias("q_proj", "k_proj", "v_proj", "query_key_value"), "dropped",
    ),
    Mutant(
        "output projection bias", "ignored", NEOX_LIKE, field_is("attention_bias", bool),
        drop_bias("dense"), "dropped",
    ),
    Mutant(
        "head bias", "ignored", ("phi",), always, drop_bias("lm_head"), "dropped",
    ),
    Mutant(
        "no o_proj bias (Qwen)", "other convention", ("qwen2", "qwen2_moe"),
        field_is("attention_config", lambda a: a().qkv_bias and not a().o_bias),
        model(add_bias("o_proj")), "o_proj biased like q/k/v (zero)",
    ),
    Mutant(
        "convolution bias", "ignored", ("mamba",), field_is("use_conv_bias", bool),
        drop_bias("conv1d"), "dropped",
    ),
    # ---- Gemma ----
    Mutant(
        "Gemma norm gain 1 + w", "trap", ("gemma",), always,
        model(gemma_traps.plain_gain), "gain w", trap=trap("Gemma's RMSNorm gain w instead of 1 + w"),
    ),
    Mutant(
        "sqrt(c) embedding scale", "ignored", ("gemma",), always,
        code(gemma, "embedding_normalizer", lambda cfg: lambda c, dtype: torch.ones((), dtype=dtype)),
        "not scaled",
    ),
    Mutant(
        "sqrt(c) embedding scale", "trap", ("gemma",), always,
        model(gemma_traps.float32_normalizer), "in float32",
        checks=("first block input bf16", "logits bf16"),
        trap=trap("Gemma's embedding scale sqrt(c) in float32 instead of the weights' dtype"),
    ),
    Mutant(  # no row sets it (demos.testing.COMMON: None); with pad_token_id 0 on gemma-2b-like
        # this mutant survived: only a *real* token 0 in the loss sees the row's gradient, and the
        # table's random ids hold none (padding positions feed no loss), so the knob stays off
        "pad_token_id (no gradient to its row)", "ignored", ("gemma",),
        field_is("pad_token_id", lambda i: i is not None),
        config(lambda c: {"pad_token_id": None}), "padding row trained",
    ),
    Mutant(
        "GeGLU's tanh GELU", "other convention", ("gemma",),
        field_is("hidden_act", lambda a: a == "gelu_pytorch_tanh"),
        config(lambda c: {"hidden_act": "gelu"}), "exact GELU",
    ),
    # ---- gated MLPs ----
    Mutant(
        "gated MLP: gate, then up", "other convention", ("llama", "mistral", "qwen2", "gemma"),
        always, code(GatedMLP, "forward", lambda cfg: up_then_gate), "up, then gate",
    ),
    Mutant(
        "fused gate_up_proj", "other convention", ("phi3",), always,
        code(phi3.Phi3LMMLP, "forward", lambda cfg: phi3_up_then_gate), "up, then gate",
    ),
    Mutant(
        "fused qkv_proj", "other convention", ("phi3",), always,
        code(phi3, "split_fused_qkv", split_as("falcon")), "falcon layout",
    ),
    # ---- LongRoPE ----
    Mutant(
        "LongRoPE factors", "trap", ("phi3",), field_is("rope_type", lambda t: t == "longrope"),
        model(phi3_traps.without_attention_factor), "no attention factor",
        trap=trap("LongRoPE without the attention factor"),
    ),
    Mutant(
        "LongRoPE factors", "other convention", ("phi3",),
        # a row whose checks all run past the switch (phi3-longrope-switch: 6 tokens) never reads
        # the short factors, so there the mutant is equivalent: asked only of rows that stay below
        lambda row, cfg: cfg.rope_type == "longrope" and cfg.original_max_position_embeddings >= 15,
        config(lambda c: {"short_factor": c.long_factor}), "long factors below the switch",
    ),
    Mutant(
        "LongRoPE switch crossed", "off by one", ("phi3",),
        lambda row, cfg: cfg.rope_type == "longrope" and cfg.original_max_position_embeddings < 15,
        code(phi3, "longrope_inv_freq", longrope_switch_at_equal), "switch at seq_len >= L",
        checks=("logits", "cached", "greedy", "padded"),
    ),
    # ---- Falcon ----
    Mutant(
        "fused QKV, grouped (falcon layout)", "trap", ("falcon",),
        lambda row, cfg: cfg.kv_heads > 1,
        model(enter(lambda ours: falcon_traps.layout(ours, "phi3"))), "phi3 layout",
        trap=trap("Fused QKV split in the wrong layout"),
    ),
    Mutant(
        "parallel block", "other convention", ("falcon",), always,
        code(falcon.FalconLMBlock, "forward", lambda cfg: falcon_sequential), "sequential",
    ),
    Mutant(
        "two LayerNorms (num_ln_in_parallel_attn)", "ignored", ("falcon",),
        field_is("num_ln_in_parallel_attn", lambda n: n == 2),
        config(lambda c: {"num_ln_in_parallel_attn": 1}), "one LayerNorm",
    ),
    # ---- GPT-NeoX, Persimmon, Phi ----
    Mutant(
        "partial rotary", "trap", NEOX_LIKE, partial_rotary, model(pythia_traps.full_rotary),
        "every channel turns", trap=trap("RoPE on all channels instead of rotary_pct of them"),
    ),
    Mutant(
        "partial rotary", "other convention", NEOX_LIKE, partial_rotary,
        code(gpt_neox.GPTNeoXLM, "position_embeddings", lambda cfg: frequencies_over_head_dim),
        "theta_i = b^(-2i/d)",
    ),
    Mutant(
        "parallel residual", "ignored", ("gpt_neox",), always,
        config(lambda c: {"use_parallel_residual": not c.use_parallel_residual}), "flipped",
    ),
    Mutant(
        "GELU (exact or tanh)", "other convention", ("gpt_neox", "phi"), always,
        config(lambda c: {"hidden_act": "gelu" if c.hidden_act == "gelu_new" else "gelu_new"}),
        "the other GELU",
    ),
    Mutant(
        "fused QKV, per head (gpt_neox layout)", "other convention", ("gpt_neox", "persimmon"),
        always,
        together(
            code(fused_qkv, "split_fused_qkv", split_as("phi3")),
            code(persimmon, "split_fused_qkv", split_as("phi3")),
        ),
        "phi3 layout",
    ),
    Mutant(
        "QK LayerNorm", "trap", ("persimmon",), field_is("qk_layernorm", bool),
        model(persimmon_traps.without_qk_layernorm), "none",
        trap=trap("Attention without the query/key LayerNorm"),
    ),
    Mutant(
        "squared ReLU", "trap", ("persimmon",), always, model(persimmon_traps.with_plain_relu),
        "ReLU", trap=trap("ReLU instead of squared ReLU"),
    ),
    Mutant(
        "one shared LayerNorm, parallel", "trap", ("phi",), always,
        model(lambda ours: as_class(phi_traps.SequentialPhiLM, ours)),
        "MLP reads x + attention",
        trap=trap("The MLP reads the attention output, not the shared normed input"),
    ),
    # ---- Qwen2-MoE ----
    Mutant(
        "MoE top-k weights (norm_topk_prob)", "trap", ("qwen2_moe",),
        field_is("norm_topk_prob", lambda n: not n),
        swap_moe(qwen15_traps.SoftmaxAfterTopK), "softmax after top-k",
        trap=trap("Softmax after the top-k (Mixtral's router on Qwen's config)"),
    ),
    Mutant(
        "MoE top-k weights (norm_topk_prob)", "ignored", ("qwen2_moe",), always,
        config(lambda c: {"norm_topk_prob": not c.norm_topk_prob}), "flipped",
    ),
    Mutant(
        "MoE top-k", "off by one", ("qwen2_moe",), always,
        config(lambda c: {"num_experts_per_tok": c.num_experts_per_tok - 1}), "k - 1",
    ),
    Mutant(
        "shared expert gate", "trap", ("qwen2_moe",), always,
        swap_moe(qwen15_traps.UngatedSharedExpert), "ungated",
        trap=trap("The shared expert without its sigmoid gate"),
    ),
    Mutant(
        "experts' fused gate_up_proj", "trap", ("qwen2_moe",), always,
        swap_moe(qwen15_traps.SparseMoE, qwen15_traps.UpThenGate), "up, then gate",
        trap=trap("The experts' fused gate_up_proj split as up, then gate"),
    ),
    Mutant(
        "decoder_sparse_step", "ignored", ("qwen2_moe",),
        field_is("decoder_sparse_step", lambda s: s > 1),
        config(lambda c: {"decoder_sparse_step": 1}), "every layer sparse",
    ),
    Mutant(
        "mlp_only_layers", "ignored", ("qwen2_moe",), field_is("mlp_only_layers", bool),
        config(lambda c: {"mlp_only_layers": ()}), "listed layers sparse",
    ),
    # ---- Mamba ----
    Mutant(
        "selective scan: B-bar", "trap", ("mamba",), always,
        code(mamba, "selective_scan_parallel", scan_zoh_b), "zero-order hold",
        trap=trap("Zero-order hold for B-bar instead of Euler"),
    ),
    Mutant(
        "Delta = softplus(dt + dt_bias)", "ignored", ("mamba",), always,
        code(mamba, "selective_scan_parallel", scan_with(delta_softplus=False)), "no softplus",
    ),
    Mutant(
        "Delta = softplus(dt + dt_bias)", "ignored", ("mamba",), always,
        code(mamba, "selective_scan_parallel", scan_with(delta_bias=None)), "no dt_bias",
    ),
    Mutant(
        "D skip", "ignored", ("mamba",), always,
        code(mamba, "selective_scan_parallel", scan_with(D=None)), "no D * u",
    ),
]
# fmt: on

# Traps that change no forward of a catalogue model, and why (the test below requires every other
# trap to be a mutant above).
NOT_IN_A_MODEL = {
    "NF4 bytes unpacked low nibble first": "quantisation: no catalogue row loads NF4 weights",
    "An online softmax that forgets to rescale its running sum": "tiled attention "
    "(demos.layers.tiled_attention), which no catalogue model's forward calls",
    "Forward FLOPs as 2N per token: attention's L^2 term left out": "a FLOP count, not a forward",
    "KV cache sized with the query heads h instead of the key/value heads g": "a byte count, not "
    "a forward",
    "A needle scored by substring instead of an exact first answer": "a scorer of generated text "
    "(demos.eval.needle), not a forward",
}
NOT_IN_A_MODEL_CHAPTERS = {  # evaluation and training traps: scoring, templates, losses
    "arc", "chatbot_arena", "chatgpt", "gsm8k", "hellaswag", "mmlu", "open_llm_leaderboard", "orca2",
    "truthfulqa", "vicuna", "winogrande", "zephyr",
    # StripedHyena has no transformers class, so no catalogue row; Yi-1.5's traps grow a model
    # (span placement, shared blocks, inclusive span) rather than change a forward. Both are
    # measured against their references by tests/traps (CHAPTER_REASONS).
    "stripedhyena", "yi15",
}  # fmt: skip
CHAPTER_REASONS = {
    "stripedhyena": "no catalogue row (no transformers class): tests/traps/test_traps.py requires the "
    "wrong version to miss the direct convolution / direct Hyena form by more than the tolerance",
    "yi15": "grows a model rather than changing a forward: tests/traps/test_traps.py requires the "
    "wrong growth to miss the right one (checked against LlamaForCausalLM) by more than the tolerance",
}
# Knobs of a configuration that no forward reads (weights are copied from the reference, so a
# wrong value cannot change a parity check): listed in the coverage file as such.
NOT_FORWARD_KNOBS = {
    "mamba": {
        "time_step_min, time_step_max, time_step_floor, time_step_init_scheme, time_step_scale "
        "(Delta's initialisation)": "dt_proj's initial weights and bias only; MambaLMConfig."
        "hf_ignores lists them",
    },
}


# ---- running a check clean and mutated ----

_SETTINGS: dict[str, Any] = {}


@functools.cache
def our_config(row_name: str) -> Any:
    row = ROWS[row_name]
    return row.ours.config_class.from_hf(row.hf_config())


def rows_on(mutant: Mutant) -> list[str]:
    """The catalogue rows whose configuration turns the mutant's knob on."""
    return [
        name
        for name, row in ROWS.items()
        if row.model_type in mutant.family and mutant.on(row, our_config(name))
    ]


def run_check(check: str, row: Row, plant: Plant | None = None) -> str | None:
    """Run one conformance check on ``row``: ``None`` if it passes, else how it failed. Any
    exception other than an ``AssertionError`` propagates (a broken patch).

    A failure by a tolerance counts only with a margin (:data:`KILL_MARGIN`): the largest error
    the check measured is that many times its tolerance, so the verdict cannot flip on another CPU;
    a failure closer to the tolerance is reported as ``"within the margin"``. (A failure with every
    error within tolerance is structural: parameter names, exact tokens, an exact comparison.)"""
    setting_name, run = CHECKS[check]
    setting = _SETTINGS[setting_name] if setting_name else None
    torch.manual_seed(0)  # as conftest's autouse fixture gives each conformance test
    context = contextlib.nullcontext() if plant is None else plant(row, our_config(row.name))
    recorder = _SETTINGS["recorder"]
    current = recorder.current
    recorder.current = "mutation run"  # not a parity result of this session
    try:
        with context:
            run(setting, row)
    except AssertionError as failure:
        errors = recorder.errors.get("mutation run", {})
        if setting is not None and errors:  # a comparison within a tolerance failed
            ratio = max(
                errors.get("out_scaled", 0.0) / setting.atol,
                errors.get("grad_scaled", 0.0) / setting.grad_atol,
            )
            if (
                1.0 < ratio < KILL_MARGIN
            ):  # (ratio <= 1: no tolerance failed, a structural check did)
                return "within the margin"
        return (str(failure).strip().splitlines() or [type(failure).__name__])[0][:160]
    finally:
        recorder.errors.pop("mutation run", None)
        recorder.current = current
    return None


def clean(check: str, row_name: str) -> None:
    """The unmutated row passes ``check``: run next to each mutated run, so that a failure is the
    mutant's and not the row's."""
    failure = run_check(check, ROWS[row_name])
    assert failure is None, f"unmutated row {row_name} fails {check}: {failure}"


@functools.cache
def outcome(index: int, row_name: str) -> str | None:
    """The first of the mutant's checks that fails with it planted on ``row_name``, or ``None``."""
    mutant = MUTANTS[index]
    for check in mutant.checks:
        clean(check, row_name)
        try:
            failure = run_check(check, ROWS[row_name], mutant.plant)
        except Exception as error:  # a broken patch: reported with its type
            raise AssertionError(
                f"mutant {mutant.id!r} on {row_name}, check {check}: {type(error).__name__} "
                f"({error}); a broken patch, not a parity failure"
            ) from error
        if failure is not None and failure != "within the margin":
            return check
    return None


@pytest.fixture(autouse=True)
def _settings(fp32_setting):
    conftest = sys.modules[type(fp32_setting).__module__]
    _SETTINGS.update(conftest.SETTINGS, recorder=conftest.RECORDER)
    _SETTINGS[None] = None


# ---- the tests ----


@pytest.mark.parametrize("index", range(len(MUTANTS)), ids=[m.id for m in MUTANTS])
def test_mutant_fails_the_conformance_table(index):
    """On every row that turns its knob on, the unmutated row passes and the mutant fails a check."""
    mutant = MUTANTS[index]
    rows = rows_on(mutant)
    survivors = [row for row in rows if outcome(index, row) is None]
    assert not survivors, (
        f"mutant {mutant.id!r} survives the conformance checks {mutant.checks} on {survivors}"
    )


def test_every_trap_in_a_model_is_a_mutant():
    mutated = {m.trap for m in MUTANTS if m.trap}
    for t in all_traps():
        if t.chapter in NOT_IN_A_MODEL_CHAPTERS or t.title in NOT_IN_A_MODEL:
            assert t.title not in mutated
        else:
            assert t.title in mutated, f"trap {t.title!r} ({t.chapter}) is not a mutant"
    assert set(NOT_IN_A_MODEL) <= set(TRAP), "NOT_IN_A_MODEL names a trap that is gone"


def test_every_family_and_row_has_a_mutant():
    """Every model_type we implement has mutants, and every catalogue row turns some knob on."""
    ours = {a.model_type for a in ARCHITECTURES.values() if a.ours is not None}
    assert ours <= {f for m in MUTANTS for f in m.family}
    covered = {row for m in MUTANTS for row in rows_on(m)}
    assert covered == set(ROWS), f"rows no mutant runs on: {sorted(set(ROWS) - covered)}"


def coverage() -> dict[str, Any]:
    """The knob coverage of this run (every mutant on every row that turns its knob on)."""
    mutants = []
    for index, m in enumerate(MUTANTS):
        rows = rows_on(m)
        mutants.append(
            {
                "knob": m.knob,
                "kind": m.kind,
                "wrong": m.wrong,
                "family": list(m.family),
                "trap": m.trap or None,
                "killed_by": {row: outcome(index, row) for row in rows},
            }
        )
    families: dict[str, Any] = {}
    for model_type in sorted({r.model_type for r in ROWS.values()}):
        rows = [name for name, r in ROWS.items() if r.model_type == model_type]
        knobs: dict[str, dict[str, Any]] = {}
        for m in mutants:
            on = [row for row in m["killed_by"] if row in rows]
            if model_type not in m["family"]:
                continue
            k = knobs.setdefault(m["knob"], {"mutants": 0, "killed": 0, "rows": []})
            if on:
                k["mutants"] += 1
                k["killed"] += all(m["killed_by"][row] is not None for row in on)
                k["rows"] = sorted(set(k["rows"]) | set(on), key=rows.index)
        families[model_type] = {
            "rows": rows,
            "knobs": {k: v for k, v in knobs.items() if v["mutants"]},
            "knobs_no_row_turns_on": sorted(k for k, v in knobs.items() if not v["mutants"]),
            "not_forward_knobs": NOT_FORWARD_KNOBS.get(model_type, {}),
        }
    knobs_of_row = {
        name: sorted({m["knob"] for m in mutants if name in m["killed_by"]}) for name in ROWS
    }
    return {
        "generated_by": "MUTATION_COVERAGE_WRITE=1 pytest tests/test_mutations.py",
        "checks": list(CHECKS),
        "knobs_of_row": knobs_of_row,  # what each catalogue row's configuration turns on
        "mutants": mutants,
        "families": families,
        "traps_not_in_a_model": {
            t.title: NOT_IN_A_MODEL.get(
                t.title,
                CHAPTER_REASONS.get(t.chapter, "an evaluation or training trap: no model forward"),
            )
            for t in all_traps()
            if t.chapter in NOT_IN_A_MODEL_CHAPTERS or t.title in NOT_IN_A_MODEL
        },
    }


def test_coverage_file_is_current():
    """results/mutation_coverage.json is this run's coverage (rewritten with MUTATION_COVERAGE_WRITE=1)."""
    current = coverage()
    text = json.dumps(current, indent=1, ensure_ascii=False) + "\n"
    if os.environ.get("MUTATION_COVERAGE_WRITE") == "1":
        COVERAGE_FILE.write_text(text)
    assert COVERAGE_FILE.exists(), f"{COVERAGE_FILE} is missing: {current['generated_by']}"
    assert json.loads(COVERAGE_FILE.read_text()) == current, (
        f"{COVERAGE_FILE.name} is stale: {current['generated_by']}"
    )


def test_coverage_page_renders_the_record():
    """The appendix's table (mutation_report) counts what the record holds, survivors too."""
    from mutation_report import coverage_markdown, coverage_summary  # book/mutation_report.py

    record = json.loads(COVERAGE_FILE.read_text())
    summary = coverage_summary(record)
    runs = sum(len(m["killed_by"]) for m in record["mutants"])
    assert summary["runs"] == runs > len(ROWS)
    assert summary["survivors"] == 0
    text = coverage_markdown(record)
    assert f"{summary['mutants']} mutants, {runs} runs" in text and "0 survived" in text
    for family in record["families"]:
        assert f"**{family}**" in text
    # a record with a survivor says so in its table
    bad = json.loads(json.dumps(record))
    first = next(m for m in bad["mutants"] if m["killed_by"])
    first["killed_by"][next(iter(first["killed_by"]))] = None
    assert "1 survived" in coverage_markdown(bad) and "**survived**" in coverage_markdown(bad)
