"""The MMLU chapter's checkers: the average over categories and the original implementation's letter pick."""

from __future__ import annotations

import pytest
import torch

from demos.exercises.mmlu import check_category_average, check_letter_pick


def solution_category_average(per_subject, category_of):
    right, asked = {}, {}
    for subject, scores in per_subject.items():
        category = category_of[subject]
        right[category] = right.get(category, 0.0) + sum(scores)
        asked[category] = asked.get(category, 0) + len(scores)
    return sum(right[c] / asked[c] for c in right) / len(right)


def test_category_average_solution_passes():
    result = check_category_average(solution_category_average)
    assert result.ok, result.message


def my_category_average(per_subject, category_of):  # the chapter's stub, untouched
    # your code here
    return 0.0


def micro(per_subject, category_of):
    return sum(sum(v) for v in per_subject.values()) / sum(len(v) for v in per_subject.values())


CATEGORY_WRONG = {
    "the stub": (my_category_average, ["still the template"]),
    "micro": (micro, ["micro average", "categories play no part"]),
    "macro over subjects": (
        lambda d, c: sum(sum(v) / len(v) for v in d.values()) / len(d),
        ["macro average over subjects"],
    ),
    "a category per name in category_of": (
        lambda d, c: (
            sum(
                solution_category_average({s: v for s, v in d.items() if c[s] == k}, c)
                for k in set(c.values())
            )
            / len(set(c.values()))
        ),
        ["ZeroDivisionError"],
    ),
    "an int": (lambda d, c: round(solution_category_average(d, c)), ["expected"]),
    "NaN": (lambda d, c: float("nan"), ["the result is nan"]),
}


@pytest.mark.parametrize("answer, words", CATEGORY_WRONG.values(), ids=list(CATEGORY_WRONG))
def test_category_average_checker_explains(explain, answer, words):
    explain(check_category_average, answer, words)


def test_category_average_checker_never_raises(explain, any_wrong_answer):
    explain(check_category_average, *any_wrong_answer)


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


def test_category_average_messages_show_the_small_input_in_full():
    macro = check_category_average(lambda d, c: sum(sum(v) / len(v) for v in d.values()) / len(d))
    assert "per_subject = {'physics': [1.0, 0.0], 'biology'" in macro.message, macro.message
    assert "per_subject = a dict" not in macro.message


def test_letter_pick_messages_give_no_ratio_for_an_index_and_read_a_letter():
    off_by_one = check_letter_pick(lambda logits, ids: int(logits[list(ids)].argmax()) + 1)
    assert "letter_ids = [11, 12, 13, 14]" in off_by_one.message, off_by_one.message
    assert "1 more than expected" in off_by_one.message
    assert "x the expected" not in off_by_one.message
    letter = check_letter_pick(lambda logits, ids: "ABCD"[int(logits[list(ids)].argmax())])
    assert not letter.ok
    assert "the letter itself" in letter.message and "2 for 'C'" in letter.message
    assert "otherwise right" in letter.message, letter.message
