"""The Open LLM Leaderboard chapter's checkers: the gold answer's margin under acc_norm, the choices'
probabilities."""

from __future__ import annotations

import pytest
import torch

from demos.exercises.open_llm_leaderboard import check_choice_probabilities, check_norm_margin


def solution_norm_margin(loglikelihoods, choices, gold):
    per_char = [ll / len(c) for ll, c in zip(loglikelihoods, choices, strict=True)]
    rival = max(s for i, s in enumerate(per_char) if i != gold)
    return max(0.0, len(choices[gold]) * rival - loglikelihoods[gold])


def stub_norm_margin(loglikelihoods, choices, gold):  # the chapter's stub, untouched
    # your code here
    return 0.0


def test_norm_margin_solution_passes():
    result = check_norm_margin(solution_norm_margin)
    assert result.ok, result.message


def test_norm_margin_solution_that_includes_the_gold_in_the_max_passes():
    def with_gold(lls, cs, g):  # the gold's own score in the max changes nothing after the clip
        return len(cs[g]) * max(ll / len(c) for ll, c in zip(lls, cs, strict=True)) - lls[g]

    result = check_norm_margin(with_gold)
    assert result.ok, result.message


NORM_MARGIN_WRONG = {
    "the stub": (stub_norm_margin, ["still the template"]),
    "acc's margin": (
        lambda lls, cs, g: max(0.0, max(x for i, x in enumerate(lls) if i != g) - lls[g]),
        ["margin for acc"],
    ),
    "bytes": (
        lambda lls, cs, g: solution_norm_margin(lls, [c.encode() for c in cs], g),
        ["UTF-8 bytes", "characters"],
    ),
    "space counted": (
        lambda lls, cs, g: solution_norm_margin(lls, [" " + c for c in cs], g),
        ["leading space"],
    ),
    "negative when ahead": (
        lambda lls, cs, g: (
            len(cs[g]) * max(x / len(c) for x, c in zip(lls, cs, strict=True) if c != cs[g])
            - lls[g]
        ),
        ["already ahead", "the gold answer already ahead"],
    ),
    "1.0 or 0.0, acc_norm itself": (
        lambda lls, cs, g: float(solution_norm_margin(lls, cs, g) == 0.0),
        ["expected"],
    ),
    "NaN": (lambda lls, cs, g: float("nan"), ["the result is nan"]),
}


@pytest.mark.parametrize("answer, words", NORM_MARGIN_WRONG.values(), ids=list(NORM_MARGIN_WRONG))
def test_norm_margin_checker_explains(explain, answer, words):
    explain(check_norm_margin, answer, words)


def test_norm_margin_checker_never_raises(explain, any_wrong_answer):
    explain(check_norm_margin, *any_wrong_answer)


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
