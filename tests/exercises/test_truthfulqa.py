"""The TruthfulQA chapter's checkers: MC2 of a padded batch and its two-answer form."""

from __future__ import annotations

import math

import pytest
import torch

from demos.exercises.truthfulqa import check_batched_mc2, check_binary_mc2


def solution_batched_mc2(lls, labels):
    masked = lls.masked_fill(labels == -1, float("-inf"))  # padding: no probability
    return (torch.softmax(masked, dim=1) * (labels == 1)).sum(dim=1)


def test_batched_mc2_solution_passes():
    result = check_batched_mc2(solution_batched_mc2)
    assert result.ok, result.message


def test_batched_mc2_solution_with_a_loop_passes():
    def per_question(lls, labels):
        out = []
        for row, labs in zip(lls.tolist(), labels.tolist(), strict=True):
            real = [(ll, t) for ll, t in zip(row, labs, strict=True) if t != -1]
            top = max(ll for ll, _ in real)
            weights = [(math.exp(ll - top), t) for ll, t in real]
            out.append(sum(w for w, t in weights if t == 1) / sum(w for w, _ in weights))
        return torch.tensor(out, dtype=torch.float64)

    result = check_batched_mc2(per_question)
    assert result.ok, result.message


def my_batched_mc2(loglikelihoods, labels):  # the chapter's stub, untouched
    # your code here
    return loglikelihoods


def naive(lls, labels):
    weights = torch.exp(lls) * (labels != -1)
    return (weights * (labels == 1)).sum(1) / weights.sum(1)


BATCHED_WRONG = {
    "the stub": (my_batched_mc2, ["still the template"]),
    "padding counted": (
        lambda lls, labels: (torch.softmax(lls, dim=1) * (labels == 1)).sum(1),
        ["padded slots"],
    ),
    "naive exp": (naive, ["NaN", "subtract each"]),
    "float32": (lambda lls, labels: solution_batched_mc2(lls, labels).float(), ["float64"]),
    "a number, not a tensor": (lambda lls, labels: 0.5, ["got the float"]),
    "the mean over the batch": (
        lambda lls, labels: solution_batched_mc2(lls, labels).mean(),
        ["shape"],
    ),
    "NaN everywhere": (
        lambda lls, labels: torch.full((lls.shape[0],), math.nan, dtype=torch.float64),
        ["NaN"],
    ),
}


@pytest.mark.parametrize("answer, words", BATCHED_WRONG.values(), ids=list(BATCHED_WRONG))
def test_batched_mc2_checker_explains(explain, answer, words):
    explain(check_batched_mc2, answer, words)


def test_batched_mc2_checker_never_raises(explain, any_wrong_answer):
    explain(check_batched_mc2, *any_wrong_answer)


def test_binary_mc2_solution_passes():
    result = check_binary_mc2(lambda t, f: 1 / (1 + math.exp(f - t)))
    assert result.ok, result.message


def my_binary_mc2(ll_true, ll_false):  # the chapter's stub, untouched
    # your code here
    return 0.0


BINARY_WRONG = {
    "the stub": (my_binary_mc2, ["still the template"]),
    "swapped": (lambda t, f: 1 / (1 + math.exp(t - f)), ["sign is swapped"]),
    "probability": (lambda t, f: math.exp(t), ["not its share"]),
}


@pytest.mark.parametrize("answer, words", BINARY_WRONG.values(), ids=list(BINARY_WRONG))
def test_binary_mc2_checker_explains(explain, answer, words):
    explain(check_binary_mc2, answer, words)
