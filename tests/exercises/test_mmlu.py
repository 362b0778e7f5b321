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


def test_micro_average_messages_show_the_small_input_in_full():
    macro = check_micro_average(lambda d: sum(sum(v) / len(v) for v in d.values()) / len(d))
    assert "per_subject = {'law': [1.0, 0.0, 0.0, 0.0], 'physics': [1.0]}" in macro.message
    assert "a dict of" not in macro.message


def test_letter_pick_messages_give_no_ratio_for_an_index_and_read_a_letter():
    off_by_one = check_letter_pick(lambda logits, ids: int(logits[list(ids)].argmax()) + 1)
    assert "letter_ids = [11, 12, 13, 14]" in off_by_one.message, off_by_one.message
    assert "1 more than expected" in off_by_one.message
    assert "x the expected" not in off_by_one.message
    letter = check_letter_pick(lambda logits, ids: "ABCD"[int(logits[list(ids)].argmax())])
    assert not letter.ok
    assert "the letter itself" in letter.message and "2 for 'C'" in letter.message
    assert "otherwise right" in letter.message, letter.message
