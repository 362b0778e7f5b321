"""The XGen chapter's checkers: score-matrix FLOPs, KV-cache bytes, Mistral's rolling cache."""

from __future__ import annotations

import pytest

from demos.exercises.xgen import (
    check_kv_cache_bytes,
    check_mistral_cache_bytes,
    check_score_flops,
)


def score(b, h, L, d):  # written here: L^2 dot products of length d, 2 FLOPs per term
    return 2 * b * h * L * L * d


def kv(n, h, g, d, L, s):  # written here: keys and values, every layer, g heads
    return 2 * n * g * d * L * s


def mistral(
    L,
):  # written here from Mistral-7B-v0.1's config.json: 32 layers, g = 8, d = 128, W = 4096
    return 2 * 32 * 8 * 128 * 2 * min(L, 4096)


@pytest.mark.parametrize(
    "checker, answer",
    [(check_score_flops, score), (check_kv_cache_bytes, kv), (check_mistral_cache_bytes, mistral)],
)
def test_solutions_pass(checker, answer):
    result = checker(answer)
    assert result.ok, result.message


def my_score_flops(batch, heads, length, head_dim):  # the chapter's stub, untouched
    # your code here
    return 0


SCORE_WRONG = {
    "stub": (my_score_flops, ["still the template"]),
    "linear in L": (lambda b, h, L, d: 2 * b * h * L * d, ["linearly in the length"]),
    "no factor 2": (lambda b, h, L, d: b * h * L * L * d, ["multiply and an add"]),
    "causal half": (lambda b, h, L, d: b * h * L * (L + 1) * d, ["causal half"]),
    "both matmuls": (lambda b, h, L, d: 4 * b * h * L * L * d, ["both attention matmuls"]),
    "no batch": (lambda b, h, L, d: 2 * h * L * L * d, ["batch is missing"]),
    "d squared": (lambda b, h, L, d: 2 * b * h * L * L * d * d, ["expected", "got"]),
}


@pytest.mark.parametrize("answer, words", SCORE_WRONG.values(), ids=list(SCORE_WRONG))
def test_score_checker_explains_wrong_answers(explain, answer, words):
    explain(check_score_flops, answer, words)


def my_kv_cache_bytes(layers, heads, kv_heads, head_dim, length, bytes_per_value):  # the stub
    # your code here
    return 0


KV_WRONG = {
    "stub": (my_kv_cache_bytes, ["still the template"]),
    "query heads": (lambda n, h, g, d, L, s: 2 * n * h * d * L * s, ["query heads were counted"]),
    "keys only": (lambda n, h, g, d, L, s: n * g * d * L * s, ["keys and values"]),
    "one layer": (lambda n, h, g, d, L, s: 2 * g * d * L * s, ["one layer"]),
    "bits": (lambda n, h, g, d, L, s: 16 * n * g * d * L * s, ["bits"]),
    "L squared": (lambda n, h, g, d, L, s: 2 * n * g * d * L * L * s, ["expected", "got"]),
}


@pytest.mark.parametrize("answer, words", KV_WRONG.values(), ids=list(KV_WRONG))
def test_kv_checker_explains_wrong_answers(explain, answer, words):
    explain(check_kv_cache_bytes, answer, words)


def my_mistral_cache_bytes(length):  # the stub
    # your code here
    return 0


MISTRAL_WRONG = {
    "stub": (my_mistral_cache_bytes, ["still the template"]),
    "no window": (lambda L: 2 * 32 * 8 * 128 * 2 * L, ["keeps growing past the window"]),
    "query heads": (lambda L: 2 * 32 * 32 * 128 * 2 * min(L, 4096), ["32 query heads"]),
    "full from the start": (lambda L: 2 * 32 * 8 * 128 * 2 * 4096, ["before the window is full"]),
    "window minus one": (lambda L: 2 * 32 * 8 * 128 * 2 * min(L, 4095), ["DynamicCache"]),
    "half the window": (lambda L: 2 * 32 * 8 * 128 * 2 * min(L, 2048), ["expected", "got"]),
}


@pytest.mark.parametrize("answer, words", MISTRAL_WRONG.values(), ids=list(MISTRAL_WRONG))
def test_mistral_checker_explains_wrong_answers(explain, answer, words):
    explain(check_mistral_cache_bytes, answer, words)


@pytest.mark.parametrize(
    "checker", [check_score_flops, check_kv_cache_bytes, check_mistral_cache_bytes]
)
def test_checkers_explain_any_wrong_answer(explain, any_wrong_answer, checker):
    explain(checker, *any_wrong_answer)
