"""The Winogrande chapter's checkers: partial scores and the two picks."""

from __future__ import annotations

import pytest
import torch

from demos.exercises.winogrande import check_partial_scores, check_picks


def test_partial_scores_solution_passes():
    result = check_partial_scores(lambda lp, n: lp[:, lp.shape[1] - n :].sum(-1))
    assert result.ok, result.message


def my_partial_scores(token_logprobs, n_shared):  # the chapter's stub, untouched
    # your code here
    return None


PARTIAL_WRONG = {
    "the stub": (my_partial_scores, ["still the template"]),
    "whole sentence": (lambda lp, n: lp.sum(-1), ["whole-sentence score"]),
    "first tokens": (lambda lp, n: lp[:, :n].sum(-1), ["at the end"]),
    "mean": (lambda lp, n: lp[:, -n:].mean(-1), ["the mean"]),
    "a list": (lambda lp, n: lp[:, -n:].sum(-1).tolist(), ["tensor"]),
}


@pytest.mark.parametrize("answer, words", PARTIAL_WRONG.values(), ids=list(PARTIAL_WRONG))
def test_partial_scores_checker_explains(explain, answer, words):
    explain(check_partial_scores, answer, words)


def test_partial_scores_checker_never_raises(explain, any_wrong_answer):
    explain(check_partial_scores, *any_wrong_answer)


def solution_picks(lp, n):
    return int(torch.argmax(lp.sum(-1))), int(torch.argmax(lp[:, -n:].sum(-1)))


def test_picks_solution_passes():
    result = check_picks(solution_picks)
    assert result.ok, result.message


def my_picks(token_logprobs, n_shared):  # the chapter's stub, untouched
    # your code here
    return (0, 0)


PICKS_WRONG = {
    "the stub": (my_picks, ["still the template"]),
    "swapped": (lambda lp, n: solution_picks(lp, n)[::-1], ["swapped"]),
    "one number": (lambda lp, n: solution_picks(lp, n)[1], ["tuple of 2"]),
}


@pytest.mark.parametrize("answer, words", PICKS_WRONG.values(), ids=list(PICKS_WRONG))
def test_picks_checker_explains(explain, answer, words):
    explain(check_picks, answer, words)
