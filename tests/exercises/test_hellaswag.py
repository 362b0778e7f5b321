"""The HellaSwag chapter's checkers: acc_norm's pick and mutual-information scoring."""

from __future__ import annotations

import pytest

from demos.exercises.hellaswag import check_mutual_info, check_pred_norm


def test_pred_norm_solution_passes():
    def solution(lls, endings):
        per_char = [ll / len(e) for ll, e in zip(lls, endings, strict=True)]
        return per_char.index(max(per_char))

    result = check_pred_norm(solution)
    assert result.ok, result.message


def my_pred_norm(loglikelihoods, endings):  # the chapter's stub, untouched
    # your code here
    return 0


PRED_WRONG = {
    "the stub": (my_pred_norm, ["still the template"]),
    "unnormalised": (lambda lls, es: lls.index(max(lls)), ["acc's pick"]),
    "per word": (
        lambda lls, es: max(range(len(lls)), key=lambda i: lls[i] / len(es[i].split())),
        ["divides by words"],
    ),
    "smallest": (
        lambda lls, es: min(range(len(lls)), key=lambda i: lls[i] / len(es[i])),
        ["largest"],
    ),
}


@pytest.mark.parametrize("answer, words", PRED_WRONG.values(), ids=list(PRED_WRONG))
def test_pred_norm_checker_explains(explain, answer, words):
    explain(check_pred_norm, answer, words)


def test_pred_norm_checker_never_raises(explain, any_wrong_answer):
    explain(check_pred_norm, *any_wrong_answer)


def test_mutual_info_solution_passes():
    def solution(cond, uncond):
        scores = [c - u for c, u in zip(cond, uncond, strict=True)]
        return scores.index(max(scores))

    result = check_mutual_info(solution)
    assert result.ok, result.message


def my_mutual_info_pick(conditional, unconditional):  # the chapter's stub, untouched
    # your code here
    return 0


MI_WRONG = {
    "the stub": (my_mutual_info_pick, ["still the template"]),
    "conditional only": (lambda c, u: c.index(max(c)), ["ignores the unconditional"]),
    "wrong way round": (
        lambda c, u: max(range(len(c)), key=lambda i: u[i] - c[i]),
        ["wrong way round"],
    ),
}


@pytest.mark.parametrize("answer, words", MI_WRONG.values(), ids=list(MI_WRONG))
def test_mutual_info_checker_explains(explain, answer, words):
    explain(check_mutual_info, answer, words)
