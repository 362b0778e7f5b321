"""The TruthfulQA chapter's checkers: MC2 and its two-answer form."""

from __future__ import annotations

import math

import pytest

from demos.exercises.truthfulqa import check_binary_mc2, check_mc2


def solution_mc2(lls, labels):
    top = max(lls)
    weights = [math.exp(ll - top) for ll in lls]
    return sum(w for w, t in zip(weights, labels, strict=True) if t) / sum(weights)


def test_mc2_solution_passes():
    result = check_mc2(solution_mc2)
    assert result.ok, result.message


def naive(lls, labels):
    probs = [math.exp(ll) for ll in lls]
    return sum(p for p, t in zip(probs, labels, strict=True) if t) / sum(probs)


def my_mc2(loglikelihoods, labels):  # the chapter's stub, untouched
    # your code here
    return 0.0


MC2_WRONG = {
    "the stub": (my_mc2, ["still the template"]),
    "unnormalised": (
        lambda lls, labels: sum(math.exp(ll) for ll, t in zip(lls, labels, strict=True) if t),
        ["divided by the total"],
    ),
    "naive exp": (naive, ["ZeroDivisionError"]),
    "share of true answers": (lambda lls, labels: sum(labels) / len(labels), ["probability"]),
}


@pytest.mark.parametrize("answer, words", MC2_WRONG.values(), ids=list(MC2_WRONG))
def test_mc2_checker_explains(explain, answer, words):
    explain(check_mc2, answer, words)


def test_mc2_checker_never_raises(explain, any_wrong_answer):
    explain(check_mc2, *any_wrong_answer)


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
