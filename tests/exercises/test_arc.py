"""The ARC chapter's checkers: the gold index and the random-guess baseline."""

from __future__ import annotations

import pytest

from demos.exercises.arc import check_gold_index, check_random_baseline


def test_gold_index_solution_passes():
    result = check_gold_index(lambda labels, key: list(labels).index(key))
    assert result.ok, result.message


def my_gold_index(labels, answer_key):  # the chapter's stub, untouched
    # your code here
    return 0


GOLD_WRONG = {
    "the stub": (my_gold_index, ["still the template"]),
    "letters only": (lambda labels, key: "ABCD".index(key) if key in "ABCD" else -1, ["1, 2, 3"]),
    "from 1": (lambda labels, key: list(labels).index(key) + 1, ["counts from 1"]),
}


@pytest.mark.parametrize("answer, words", GOLD_WRONG.values(), ids=list(GOLD_WRONG))
def test_gold_index_checker_explains(explain, answer, words):
    explain(check_gold_index, answer, words)


def test_gold_index_checker_never_raises(explain, any_wrong_answer):
    explain(check_gold_index, *any_wrong_answer)


def test_random_baseline_solution_passes():
    result = check_random_baseline(lambda ns: sum(1 / n for n in ns) / len(ns))
    assert result.ok, result.message


def my_random_baseline(num_choices):  # the chapter's stub, untouched
    # your code here
    return 0.0


BASELINE_WRONG = {
    "the stub": (my_random_baseline, ["still the template"]),
    "a quarter": (lambda ns: 0.25, ["4 choices"]),
    "one over the mean": (lambda ns: len(ns) / sum(ns), ["Jensen"]),
}


@pytest.mark.parametrize("answer, words", BASELINE_WRONG.values(), ids=list(BASELINE_WRONG))
def test_random_baseline_checker_explains(explain, answer, words):
    explain(check_random_baseline, answer, words)
