"""Checkers for the XGen chapter's exercises: the FLOPs of the score matrix at length L, the bytes of a
KV cache, and (transfer) the bytes of Mistral-7B's rolling cache, whose window caps them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from demos.exercises.core import Check, Mistake, check_function
from demos.layers.flops import score_flops
from demos.layers.kv_cache import kv_cache_bytes


def check_score_flops(fn: Callable[..., Any]) -> Check:
    """Check ``score_flops(batch, heads, length, head_dim)``: the FLOPs of one layer's ``Q K^T``
    for ``length`` tokens, the whole ``length x length`` matrix as eager attention computes it."""
    cases = {
        "one head, 4 tokens, d = 2": (1, 1, 4, 2),
        "XGen-7B at 2K (one layer)": (1, 32, 2048, 128),
        "XGen-7B at 8K, batch 2": (2, 32, 8192, 128),
    }
    mistakes = [
        Mistake(
            lambda b, h, L, d: 2 * b * h * L * d,
            "the FLOPs grow linearly in the length here; every query meets every key, "
            "so the matrix has length * length entries.",
        ),
        Mistake(
            lambda b, h, L, d: b * h * L * L * d,
            "each of the d terms of a dot product is a multiply and an add: 2 FLOPs, not 1.",
        ),
        Mistake(
            lambda b, h, L, d: b * h * L * (L + 1) * d,
            "only the causal half (L (L + 1) / 2 entries) was counted; eager attention computes the "
            "whole matrix and masks it afterwards.",
        ),
        Mistake(
            lambda b, h, L, d: 4 * b * h * L * L * d,
            "that is both attention matmuls (Q K^T and weights V); the exercise asks for the score "
            "matrix Q K^T alone.",
        ),
        Mistake(
            lambda b, h, L, d: 2 * h * L * L * d,
            "the batch is missing: every sequence of the batch has its own score matrix.",
        ),
    ]
    return check_function(
        fn, score_flops, cases, ("batch", "heads", "length", "head_dim"), mistakes=mistakes
    )


def _kv(layers: int, heads: int, kv_heads: int, head_dim: int, length: int, nbytes: int) -> int:
    return kv_cache_bytes(layers, kv_heads, head_dim, length, 1, nbytes)


def check_kv_cache_bytes(fn: Callable[..., Any]) -> Check:
    """Check ``kv_cache_bytes(layers, heads, kv_heads, head_dim, length, bytes_per_value)``: the bytes
    one sequence's KV cache holds after ``length`` tokens (no window)."""
    cases = {
        "XGen-7B-8K at 8K, bf16": (32, 32, 32, 128, 8192, 2),
        "Llama-2-70B at 4K, bf16": (80, 64, 8, 128, 4096, 2),
        "a tiny GQA model, fp32": (2, 4, 2, 8, 9, 4),
    }
    mistakes = [
        Mistake(
            lambda n, h, g, d, L, s: 2 * n * h * d * L * s,
            "the query heads were counted; the cache stores each key/value head once (g of them), "
            "not each of the h query heads that read it.",
        ),
        Mistake(
            lambda n, h, g, d, L, s: n * g * d * L * s,
            "only one tensor per layer was counted: the cache keeps keys and values (the factor 2).",
        ),
        Mistake(
            lambda n, h, g, d, L, s: 2 * g * d * L * s,
            "one layer was counted: every layer keeps its own keys and values.",
        ),
        Mistake(
            lambda n, h, g, d, L, s: 2 * n * g * d * L * s * 8,
            "that is bits; the answer is in bytes.",
        ),
    ]
    return check_function(
        fn,
        _kv,
        cases,
        ("layers", "heads", "kv_heads", "head_dim", "length", "bytes_per_value"),
        mistakes=mistakes,
    )


def mistral_rolling_bytes(length: int) -> int:
    """The reference: Mistral-7B-v0.1's rolling buffer, bf16, one sequence, after ``length`` tokens."""
    from demos.registry import released_config

    c = released_config("Mistral-7B-v0.1")
    return kv_cache_bytes(
        c.num_hidden_layers, c.num_key_value_heads, c.head_dim, length, 1, 2, c.sliding_window
    )


def check_mistral_cache_bytes(fn: Callable[[int], Any]) -> Check:
    """Check ``mistral_cache_bytes(length)``: bytes of Mistral-7B-v0.1's rolling KV cache (32 layers,
    8 key/value heads of 128, window 4096, bf16) after ``length`` tokens of one sequence."""
    cases = {f"length {n}": (n,) for n in (1000, 4096, 8192, 32768)}
    mistakes = [
        Mistake(
            lambda L: 2 * 32 * 8 * 128 * 2 * L,
            "the cache keeps growing past the window; Mistral's rolling buffer holds the last "
            "4096 positions and overwrites older ones.",
        ),
        Mistake(
            lambda L: 2 * 32 * 32 * 128 * 2 * min(L, 4096),
            "the 32 query heads were counted; Mistral has 8 key/value heads (grouped-query).",
        ),
        Mistake(
            lambda L: 2 * 32 * 8 * 128 * 2 * 4096,
            "4096 positions were counted before the window is full; until then only the length "
            "positions seen so far hold keys and values.",
        ),
        Mistake(
            lambda L: 2 * 32 * 8 * 128 * 2 * min(L, 4095),
            "that is window - 1 positions, what transformers' DynamicCache keeps between steps "
            "(the next token brings its own key); Mistral's rolling buffer has window = 4096 slots.",
        ),
    ]
    return check_function(fn, mistral_rolling_bytes, cases, ("length",), mistakes=mistakes)
