"""The XGen chapter's checkers: score FLOPs of generating, the longest context that fits, Mistral's
rolling cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from exercise_references.xgen import generation_score_flops

from demos.exercises.xgen import (
    check_generation_score_flops,
    check_max_context_tokens,
    check_mistral_cache_bytes,
)
from demos.layers.flops import counted_flops


def generation(b, h, d, p, n):  # written here: a p x p prefill, then step i has p + i keys
    return 2 * b * h * d * (p * p + n * p + n * (n + 1) // 2)


def max_context(m, n, h, g, d, s):  # written here: keys and values, every layer, g heads
    return m // (2 * n * g * d * s)


def mistral(
    L,
):  # written here from Mistral-7B-v0.1's config.json: 32 layers, g = 8, d = 128, W = 4096
    return 2 * 32 * 8 * 128 * 2 * min(L, 4096)


@pytest.mark.parametrize(
    "checker, answer",
    [
        (check_generation_score_flops, generation),
        (check_max_context_tokens, max_context),
        (check_mistral_cache_bytes, mistral),
    ],
)
def test_solutions_pass(checker, answer):
    result = checker(answer)
    assert result.ok, result.message


def test_generation_reference_equals_what_flop_counter_counts():
    """Prefill and decoding steps run as real matmuls: FlopCounterMode's count equals the reference."""
    b, h, d, p, n = 2, 3, 4, 5, 6
    keys = torch.randn(b, h, p + n, d)
    counted = counted_flops(torch.matmul, torch.randn(b, h, p, d), keys[:, :, :p].transpose(2, 3))
    total = counted["bmm"]
    for i in range(1, n + 1):  # one new query against the p + i keys cached so far
        q = torch.randn(b, h, 1, d)
        total += counted_flops(torch.matmul, q, keys[:, :, : p + i].transpose(2, 3))["bmm"]
    assert total == generation_score_flops(b, h, d, p, n)


def my_generation_score_flops(batch, heads, head_dim, prompt, steps):  # the stub, untouched
    # your code here: return a Python int
    return 0


def _decode(b, h, d, p, n, keys):
    return sum(2 * b * h * keys(p, i) * d for i in range(1, n + 1))


GENERATION_WRONG = {
    "stub": (my_generation_score_flops, ["still the template"]),
    "no factor 2": (lambda *a: generation(*a) // 2, ["2 FLOPs, not 1"]),
    "causal half prefill": (
        lambda b, h, d, p, n: b * h * p * (p + 1) * d + _decode(b, h, d, p, n, lambda p, i: p + i),
        ["causal half", "FlashAttention", "eager attention"],
    ),
    "half the prefill": (
        lambda b, h, d, p, n: b * h * p * p * d + _decode(b, h, d, p, n, lambda p, i: p + i),
        ["causal half", "FlashAttention"],
    ),
    "own key missing": (
        lambda b, h, d, p, n: (
            2 * b * h * p * p * d + _decode(b, h, d, p, n, lambda p, i: p + i - 1)
        ),
        ["misses one key"],
    ),
    "cache not growing": (
        lambda b, h, d, p, n: 2 * b * h * p * p * d + _decode(b, h, d, p, n, lambda p, i: p),
        ["grows by one key"],
    ),
    "no cache": (
        lambda b, h, d, p, n: sum(2 * b * h * (p + i) ** 2 * d for i in range(n + 1)),
        ["without a cache"],
    ),
    "no prefill": (
        lambda b, h, d, p, n: _decode(b, h, d, p, n, lambda p, i: p + i),
        ["prefill is missing"],
    ),
    "no decoding": (lambda b, h, d, p, n: 2 * b * h * p * p * d, ["decoding steps are missing"]),
    "both matmuls": (lambda *a: 2 * generation(*a), ["both attention matmuls"]),
    "no batch": (lambda b, h, d, p, n: generation(1, h, d, p, n), ["batch is missing"]),
    "float": (lambda *a: float(generation(*a)), ["the float", "Python int", "2**53"]),
    "0-d tensor": (
        lambda *a: torch.tensor(generation(*a)),
        ["int64 tensor of shape ()", "Python int", ".item()"],
    ),
    "numpy int64": (lambda *a: np.int64(generation(*a)), ["numpy scalar", "Python int"]),
    "d squared": (lambda b, h, d, p, n: generation(b, h, d, p, n) * d, ["expected", "got"]),
}


@pytest.mark.parametrize("answer, words", GENERATION_WRONG.values(), ids=list(GENERATION_WRONG))
def test_generation_checker_explains_wrong_answers(explain, answer, words):
    explain(check_generation_score_flops, answer, words)


def test_no_factor_2_and_causal_half_get_different_causes():
    """The old single-length checker gave b h L^2 d one cause; here the two mistakes differ."""
    halved = check_generation_score_flops(lambda *a: generation(*a) // 2).message
    causal = check_generation_score_flops(GENERATION_WRONG["half the prefill"][0]).message
    assert "2 FLOPs, not 1" in halved and "causal half" not in halved
    assert "causal half" in causal and "2 FLOPs, not 1" not in causal


def my_max_context_tokens(memory_bytes, layers, heads, kv_heads, head_dim, bytes_per_value):
    # your code here: return a Python int
    return 0


def _per(n, g, d, s):
    return 2 * n * g * d * s


MAX_CONTEXT_WRONG = {
    "stub": (my_max_context_tokens, ["still the template"]),
    "query heads": (lambda m, n, h, g, d, s: m // _per(n, h, d, s), ["query heads were counted"]),
    "keys only": (lambda m, n, h, g, d, s: m // (n * g * d * s), ["the factor 2"]),
    "one layer": (lambda m, n, h, g, d, s: m // (2 * g * d * s), ["one layer"]),
    "values, not bytes": (lambda m, n, h, g, d, s: m // (2 * n * g * d), ["values, not bytes"]),
    "bits": (lambda m, n, h, g, d, s: m // (8 * _per(n, g, d, s)), ["no bits"]),
    "rounds up": (lambda m, n, h, g, d, s: -(-m // _per(n, g, d, s)), ["rounds up"]),
    "true division": (lambda m, n, h, g, d, s: m / _per(n, g, d, s), ["fraction of a token"]),
    "multiplies": (lambda m, n, h, g, d, s: m * _per(n, g, d, s), ["multiplies"]),
    "float of the right value": (
        lambda m, n, h, g, d, s: float(m // _per(n, g, d, s)),
        ["the float", "Python int"],
    ),
    "tensor of the right value": (
        lambda m, n, h, g, d, s: torch.tensor(m) // _per(n, g, d, s),
        ["tensor", "Python int"],
    ),
    "half the memory": (lambda m, n, h, g, d, s: m // 2 // _per(n, g, d, s), ["expected", "got"]),
}


@pytest.mark.parametrize("answer, words", MAX_CONTEXT_WRONG.values(), ids=list(MAX_CONTEXT_WRONG))
def test_max_context_checker_explains_wrong_answers(explain, answer, words):
    explain(check_max_context_tokens, answer, words)


def my_mistral_cache_bytes(length):  # the stub
    # your code here: return a Python int
    return 0


MISTRAL_WRONG = {
    "stub": (my_mistral_cache_bytes, ["still the template"]),
    "no window": (lambda L: 2 * 32 * 8 * 128 * 2 * L, ["keeps growing past the window"]),
    "query heads": (lambda L: 2 * 32 * 32 * 128 * 2 * min(L, 4096), ["32 query heads"]),
    "full from the start": (lambda L: 2 * 32 * 8 * 128 * 2 * 4096, ["before the window is full"]),
    "window minus one": (lambda L: 2 * 32 * 8 * 128 * 2 * min(L, 4095), ["DynamicCache"]),
    "half the window": (lambda L: 2 * 32 * 8 * 128 * 2 * min(L, 2048), ["expected", "got"]),
    "float": (lambda L: 2.0 * 32 * 8 * 128 * 2 * min(L, 4096), ["the float", "Python int"]),
    "tensor": (
        lambda L: torch.tensor(2 * 32 * 8 * 128 * 2) * min(L, 4096),
        ["tensor", "Python int"],
    ),
}


@pytest.mark.parametrize("answer, words", MISTRAL_WRONG.values(), ids=list(MISTRAL_WRONG))
def test_mistral_checker_explains_wrong_answers(explain, answer, words):
    explain(check_mistral_cache_bytes, answer, words)


@pytest.mark.parametrize(
    "checker",
    [check_generation_score_flops, check_max_context_tokens, check_mistral_cache_bytes],
)
def test_checkers_explain_any_wrong_answer(explain, any_wrong_answer, checker):
    explain(checker, *any_wrong_answer)
