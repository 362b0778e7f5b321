"""The Open LLM Leaderboard chapter's checkers: acc_norm and the choices' probabilities."""

from __future__ import annotations

import pytest
import torch

from demos.exercises.open_llm_leaderboard import check_acc_norm, check_choice_probabilities


def solution_acc_norm(loglikelihoods, choices, gold):
    scores = [ll / len(c) for ll, c in zip(loglikelihoods, choices, strict=True)]
    return float(scores.index(max(scores)) == gold)


def stub_acc_norm(loglikelihoods, choices, gold):  # the chapter's stub, untouched
    # your code here
    return 0.0


def test_acc_norm_solution_passes():
    result = check_acc_norm(solution_acc_norm)
    assert result.ok, result.message


ACC_NORM_WRONG = {
    "the stub": (stub_acc_norm, ["still the template"]),
    "acc": (lambda lls, cs, g: float(lls.index(max(lls)) == g), ["this is acc"]),
    "bytes": (
        lambda lls, cs, g: solution_acc_norm(lls, [c.encode() for c in cs], g),
        ["UTF-8 bytes", "characters"],
    ),
    "space counted": (
        lambda lls, cs, g: solution_acc_norm(lls, [" " + c for c in cs], g),
        ["leading space"],
    ),
    "last on a tie": (
        lambda lls, cs, g: float(max(range(len(lls)), key=lambda i: (lls[i] / len(cs[i]), i)) == g),
        ["a tie goes to the first choice"],
    ),
}


@pytest.mark.parametrize("answer, words", ACC_NORM_WRONG.values(), ids=list(ACC_NORM_WRONG))
def test_acc_norm_checker_explains(explain, answer, words):
    explain(check_acc_norm, answer, words)


def test_acc_norm_checker_never_raises(explain, any_wrong_answer):
    explain(check_acc_norm, *any_wrong_answer)


def test_choice_probabilities_solution_passes():
    result = check_choice_probabilities(lambda lls: torch.exp(lls - torch.logsumexp(lls, -1)))
    assert result.ok, result.message


def my_choice_probabilities(loglikelihoods):  # the chapter's stub, untouched
    # your code here
    return loglikelihoods


CHOICE_WRONG = {
    "the stub": (my_choice_probabilities, ["still the template"]),
    "log-likelihoods normalised": (lambda lls: lls / lls.sum(), ["not probabilities"]),
    "exp only": (lambda lls: torch.exp(lls), ["divide by their sum"]),
    "naive normalisation": (
        lambda lls: torch.exp(lls) / torch.exp(lls).sum(),
        ["underflows", "NaN"],
    ),
    "softmax over the wrong axis": (lambda lls: torch.softmax(lls[None], 0)[0], ["expected"]),
}


@pytest.mark.parametrize("answer, words", CHOICE_WRONG.values(), ids=list(CHOICE_WRONG))
def test_choice_probabilities_checker_explains(explain, answer, words):
    explain(check_choice_probabilities, answer, words)
