"""The Mistral chapter's checker: the sliding-window mask, in every convention a learner may use."""

from __future__ import annotations

import pytest
import torch

from demos.exercises.mistral import check_sliding_window_mask


def positions(t, s):
    return torch.arange(s - t, s)[:, None], torch.arange(s)[None, :]


def mask(t, s, window):  # written here: causal, and at most window - 1 keys back
    q, k = positions(t, s)
    return (k <= q) & (k > q - window)


def mask_from_triangles(t, s, window):  # the same band, from two triangular matrices
    ones = torch.ones(t, s, dtype=torch.bool)
    return ones.tril(s - t) & ~ones.tril(s - t - window)


def window_plus_one(t, s, window):  # the paper's wording: window + 1 keys
    q, k = positions(t, s)
    return (k <= q) & (k >= q - window)


def not_causal(t, s, window):
    q, k = positions(t, s)
    return (k - q).abs() < window


def queries_from_zero(t, s, window):  # queries at 0..t-1 instead of s-t..s-1
    q, k = torch.arange(t)[:, None], torch.arange(s)[None, :]
    return (k <= q) & (k > q - window)


def additive(pattern, hidden=float("-inf")):
    return lambda *a: torch.zeros(a[0], a[1]).masked_fill(~pattern(*a), hidden)


@pytest.mark.parametrize("answer", [mask, mask_from_triangles], ids=["positions", "triangles"])
def test_sliding_window_mask_checker_accepts_right_answers(answer):
    result = check_sliding_window_mask(answer)
    assert result.ok, result.message


MASK_WRONG = {
    "window + 1 keys": (window_plus_one, ["window + 1 keys"]),
    "not causal": (not_causal, ["looks ahead"]),
    "queries from zero": (queries_from_zero, ["*last* t positions"]),
    "everything visible": (
        lambda t, s, w: torch.ones(t, s, dtype=torch.bool),
        ["query 0 (position 0) and key 1: expected False, got True"],
    ),
    "inverted": (lambda *a: ~mask(*a), ["inverted", "otherwise right"]),
    "additive, -inf": (additive(mask), ["additive", "otherwise right"]),
    "additive, finfo.min": (
        additive(mask, torch.finfo(torch.float32).min),
        ["additive", "otherwise right"],
    ),
    "float 0/1": (lambda *a: mask(*a).float(), ["0/1", "otherwise right", "float32"]),
    "int 0/1": (lambda *a: mask(*a).long(), ["0/1", "otherwise right"]),
    "inverted and window + 1": (lambda *a: ~window_plus_one(*a), ["inverted", "window + 1 keys"]),
    "additive and not causal": (additive(not_causal), ["additive", "looks ahead"]),
    "inverted and wrong otherwise": (
        lambda *a: ~mask(*a) & torch.ones(a[0], a[1], dtype=torch.bool).triu(1),
        ["inverted", "still differs"],
    ),
    "wrong shape": (
        lambda t, s, w: torch.ones(2, 2, dtype=torch.bool),
        ["shape (2, 2), expected (6, 6)"],
    ),
    "float ones of the wrong shape": (
        lambda t, s, w: torch.ones(2, 2),
        ["shape (2, 2), expected (6, 6)"],
    ),
    "transposed": (lambda *a: mask(*a).T, ["query"]),
    "float with NaN": (lambda *a: mask(*a).float() * float("nan"), ["float32", "boolean"]),
    "numpy": (lambda *a: mask(*a).numpy(), ["numpy", "values are right"]),
}


@pytest.mark.parametrize("answer, words", MASK_WRONG.values(), ids=list(MASK_WRONG))
def test_sliding_window_mask_checker_explains_wrong_answers(explain, answer, words):
    explain(check_sliding_window_mask, answer, words)


def test_sliding_window_mask_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_sliding_window_mask, *any_wrong_answer)
