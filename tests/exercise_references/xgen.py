"""References and known mistakes for the XGen chapter's exercises: the score-matrix FLOPs of generating with a KV cache
(a prompt, then one token at a time), the longest context whose KV cache fits in a memory budget
(the cache formula turned around), and (transfer) the bytes of Mistral-7B's rolling cache.

Every answer is a count (FLOPs, tokens, bytes) and must be a Python ``int``: a float is exact only
up to 2**53 and a tensor is not a count; the messages say so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from demos.exercises.core import Check, Mistake, check_function
from demos.exercises.xgen import _int_only  # shared with the package
from demos.layers.flops import score_flops
from demos.layers.kv_cache import kv_cache_bytes, kv_cache_bytes_per_token

# ---------------------------------------------------------------- exercise 1: generating


def generation_score_flops(batch: int, heads: int, head_dim: int, prompt: int, steps: int) -> int:
    """The reference: one layer's ``Q K^T`` FLOPs for a prefill of ``prompt`` tokens (the full
    ``prompt x prompt`` matrix, as eager attention computes it) and then ``steps`` decoding steps,
    each one query against every cached key and its own: step ``i`` has ``prompt + i`` keys."""
    b, h, d = batch, heads, head_dim
    decoding = sum(2 * b * h * 1 * (prompt + i) * d for i in range(1, steps + 1))
    return score_flops(b, h, prompt, d) + decoding


def _decoding(b: int, h: int, d: int, p: int, n: int, keys: Callable[[int], int]) -> int:
    """Decoding FLOPs of ``n`` steps when step ``i`` is counted with ``keys(i)`` keys."""
    return sum(2 * b * h * keys(i) * d for i in range(1, n + 1))


def check_generation_score_flops(fn: Callable[..., Any]) -> Check:
    """Check ``generation_score_flops(batch, heads, head_dim, prompt, steps)``: see
    :func:`generation_score_flops`. The answer must be a Python int."""
    cases = {
        "one head, d = 2, prompt 3, 2 steps": (1, 1, 2, 3, 2),
        "XGen-7B (one layer), 2K prompt, 6K steps": (1, 32, 128, 2048, 6144),
        "batch 2, prompt 5, 4 steps": (2, 4, 8, 5, 4),
        "prompt 1, 7 steps": (1, 2, 4, 1, 7),
    }
    mistakes = [
        Mistake(
            lambda b, h, d, p, n: generation_score_flops(b, h, d, p, n) // 2,
            "everything is half the reference: each of the d terms of a dot product is a multiply "
            "and an add, 2 FLOPs, not 1.",
        ),
        Mistake(
            lambda b, h, d, p, n: (
                b * h * p * (p + 1) * d + _decoding(b, h, d, p, n, lambda i: p + i)
            ),
            "the prefill counts only the causal half (p (p + 1) / 2 entries), roughly what a "
            "causal kernel such as FlashAttention computes; the exercise asks for eager attention, "
            "which computes the whole p x p matrix and masks it afterwards.",
        ),
        Mistake(
            lambda b, h, d, p, n: b * h * p * p * d + _decoding(b, h, d, p, n, lambda i: p + i),
            "the prefill counts only half of the p x p matrix (the causal half, roughly what "
            "FlashAttention computes); eager attention computes all of it and masks it afterwards.",
        ),
        Mistake(
            lambda b, h, d, p, n: (
                score_flops(b, h, p, d) + _decoding(b, h, d, p, n, lambda i: p + i - 1)
            ),
            "each decoding step misses one key: the new token's key joins the cache before the "
            "scores, so step i has prompt + i keys (the token attends to itself).",
        ),
        Mistake(
            lambda b, h, d, p, n: score_flops(b, h, p, d) + _decoding(b, h, d, p, n, lambda i: p),
            "every decoding step was counted with the prompt's keys only; the cache grows by one "
            "key per step, so step i has prompt + i keys.",
        ),
        Mistake(
            lambda b, h, d, p, n: (
                score_flops(b, h, p, d) + sum(score_flops(b, h, p + i, d) for i in range(1, n + 1))
            ),
            "that recomputes the whole (prompt + i) x (prompt + i) matrix at every step, decoding "
            "without a cache; with one, a step scores only its one new query.",
        ),
        Mistake(
            lambda b, h, d, p, n: _decoding(b, h, d, p, n, lambda i: p + i),
            "the prefill is missing: the prompt's own p x p score matrix comes first.",
        ),
        Mistake(
            lambda b, h, d, p, n: score_flops(b, h, p, d),
            "the decoding steps are missing: each of them scores one query against the cache.",
        ),
        Mistake(
            lambda b, h, d, p, n: 2 * generation_score_flops(b, h, d, p, n),
            "that is both attention matmuls (Q K^T and weights V); the exercise asks for the score "
            "matrix Q K^T alone.",
        ),
        Mistake(
            lambda b, h, d, p, n: generation_score_flops(1, h, d, p, n),
            "the batch is missing: every sequence of the batch has its own scores.",
        ),
    ]
    names = ("batch", "heads", "head_dim", "prompt", "steps")
    verdict = check_function(fn, generation_score_flops, cases, names, mistakes=mistakes)
    return _int_only(fn, verdict, cases, names, "FLOPs")


# ---------------------------------------------------------------- exercise 2: the longest context


def max_context_tokens(
    memory_bytes: int, layers: int, heads: int, kv_heads: int, head_dim: int, bytes_per_value: int
) -> int:
    """The reference: the most tokens of one sequence whose KV cache (no window) fits in
    ``memory_bytes``; ``heads`` (the query heads) does not enter."""
    return memory_bytes // kv_cache_bytes_per_token(layers, kv_heads, head_dim, bytes_per_value)


def check_max_context_tokens(fn: Callable[..., Any]) -> Check:
    """Check ``max_context_tokens(memory_bytes, layers, heads, kv_heads, head_dim,
    bytes_per_value)``: see :func:`max_context_tokens`. The answer must be a Python int."""
    gib = 2**30
    cases = {
        "XGen-7B, 4 GiB, bf16": (4 * gib, 32, 32, 32, 128, 2),
        "Llama-2-70B (GQA), 10 GB, bf16": (10**10, 80, 64, 8, 128, 2),
        "XGen-7B, 1 GB, fp32": (10**9, 32, 32, 32, 128, 4),
        "a tiny GQA model, 1000 bytes, fp32": (1000, 2, 4, 2, 8, 4),
    }

    def per_token(n, g, d, s):
        return 2 * n * g * d * s

    mistakes = [
        Mistake(
            lambda m, n, h, g, d, s: m // per_token(n, h, d, s),
            "the query heads were counted; the cache stores each key/value head once (kv_heads of "
            "them), not each of the query heads that read it.",
        ),
        Mistake(
            lambda m, n, h, g, d, s: m // (per_token(n, g, d, s) // 2),
            "twice the tokens: a token caches a key and a value in every layer (the factor 2).",
        ),
        Mistake(
            lambda m, n, h, g, d, s: m // (per_token(n, g, d, s) // n),
            "one layer was counted: every layer keeps its own keys and values.",
        ),
        Mistake(
            lambda m, n, h, g, d, s: m // (per_token(n, g, d, s) // s),
            "that counts values, not bytes: each value takes bytes_per_value bytes.",
        ),
        Mistake(
            lambda m, n, h, g, d, s: m // (8 * per_token(n, g, d, s)),
            "8 times too few: the memory is in bytes, and so is bytes_per_value (no bits here).",
        ),
        Mistake(
            lambda m, n, h, g, d, s: -(-m // per_token(n, g, d, s)),
            "that rounds up: a cache of that many tokens no longer fits; round down (//).",
        ),
        Mistake(
            lambda m, n, h, g, d, s: m / per_token(n, g, d, s),
            "that is a fraction of a token (true division /); a token's keys and values are "
            "cached whole: round down with //.",
        ),
        Mistake(
            lambda m, n, h, g, d, s: m * per_token(n, g, d, s),
            "that multiplies by the bytes per token; the tokens that fit are the memory divided "
            "by the bytes each token adds.",
        ),
    ]
    names = ("memory_bytes", "layers", "heads", "kv_heads", "head_dim", "bytes_per_value")
    verdict = check_function(fn, max_context_tokens, cases, names, mistakes=mistakes)
    return _int_only(fn, verdict, cases, names, "tokens")


# ---------------------------------------------------------------- exercise 3: Mistral (transfer)


def mistral_rolling_bytes(length: int) -> int:
    """The reference: Mistral-7B-v0.1's rolling buffer, bf16, one sequence, after ``length`` tokens."""
    from demos.registry import released_config

    c = released_config("Mistral-7B-v0.1")
    return kv_cache_bytes(
        c.num_hidden_layers, c.num_key_value_heads, c.head_dim, length, 1, 2, c.sliding_window
    )


def check_mistral_cache_bytes(fn: Callable[[int], Any]) -> Check:
    """Check ``mistral_cache_bytes(length)``: bytes of Mistral-7B-v0.1's rolling KV cache (32 layers,
    8 key/value heads of 128, window 4096, bf16) after ``length`` tokens of one sequence. The answer
    must be a Python int."""
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
    verdict = check_function(fn, mistral_rolling_bytes, cases, ("length",), mistakes=mistakes)
    return _int_only(fn, verdict, cases, ("length",), "bytes")
