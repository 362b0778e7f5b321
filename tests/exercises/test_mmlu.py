"""The MMLU chapter's checkers: the micro average and the original implementation's letter pick."""

from __future__ import annotations

import pytest
import torch

from demos.exercises.mmlu import check_letter_pick, check_micro_average


def test_micro_average_solution_passes():
    def solution(per_subject):
        right = sum(sum(v) for v in per_subject.values())
        return right / sum(len(v) for v in per_subject.values())

    result = check_micro_average(solution)
    assert result.ok, result.message


def my_micro_average(per_subject):  # the chapter's stub, untouched
    # your code here
    return 0.0


MICRO_WRONG = {
    "the stub": (my_micro_average, ["still the template"]),
    "macro": (lambda d: sum(sum(v) / len(v) for v in d.values()) / len(d), ["macro average"]),
    "per subject count": (lambda d: sum(sum(v) for v in d.values()) / len(d), ["subjects"]),
}


@pytest.mark.parametrize("answer, words", MICRO_WRONG.values(), ids=list(MICRO_WRONG))
def test_micro_average_checker_explains(explain, answer, words):
    explain(check_micro_average, answer, words)


def test_micro_average_checker_never_raises(explain, any_wrong_answer):
    explain(check_micro_average, *any_wrong_answer)


def test_letter_pick_solution_passes():
    result = check_letter_pick(lambda logits, ids: int(torch.argmax(logits[list(ids)])))
    assert result.ok, result.message


def my_letter_pick(next_token_logits, letter_ids):  # the chapter's stub, untouched
    # your code here
    return 0


LETTER_WRONG = {
    "the stub": (my_letter_pick, ["still the template"]),
    "whole vocabulary": (lambda logits, ids: int(logits.argmax()), ["whole vocabulary"]),
    "token id": (
        lambda logits, ids: ids[int(logits[list(ids)].argmax())],
        ["token id"],
    ),
}


@pytest.mark.parametrize("answer, words", LETTER_WRONG.values(), ids=list(LETTER_WRONG))
def test_letter_pick_checker_explains(explain, answer, words):
    explain(check_letter_pick, answer, words)
