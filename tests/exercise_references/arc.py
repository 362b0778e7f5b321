"""References and known mistakes for the ARC chapter: the gold index from ARC's own labels, and the
accuracy of guessing."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from demos.exercises.core import Check, Mistake, check_function


def gold_index_reference(labels: Sequence[str], answer_key: str) -> int:
    """The position of ``answer_key`` among the row's ``choices.label`` (the harness's
    ``doc_to_target: "{{choices.label.index(answerKey)}}"``)."""
    return list(labels).index(answer_key)


GOLD_MISTAKES = [
    Mistake(
        lambda labels, key: "ABCDE".index(key) if key in "ABCDE" else -1,
        "this assumes the labels are letters; some ARC rows are labelled 1, 2, 3, 4: look the key "
        "up in the row's own labels.",
    ),
    Mistake(
        lambda labels, key: int(key) if key.isdigit() else "ABCDE".index(key) + 1,
        "this counts from 1; Python (and the harness) index the choices from 0.",
    ),
]


def check_gold_index(fn: Callable[[Sequence[str], str], int]) -> Check:
    """Check ``fn(labels, answer_key) -> int``."""
    cases = {
        "letters": (["A", "B", "C", "D"], "C"),
        "digits": (["1", "2", "3", "4"], "2"),
        "three choices": (["A", "B", "C"], "A"),
        "five choices, digits": (["1", "2", "3", "4", "5"], "5"),
    }
    return check_function(
        fn, gold_index_reference, cases, ("labels", "answer_key"), mistakes=GOLD_MISTAKES
    )


def random_baseline_reference(num_choices: Sequence[int]) -> float:
    """Expected accuracy of a uniform guess: the mean of ``1 / n`` over the questions."""
    return sum(1 / n for n in num_choices) / len(num_choices)


BASELINE_MISTAKES = [
    Mistake(lambda ns: 0.25, "0.25 holds only when every question has 4 choices."),
    Mistake(
        lambda ns: len(ns) / sum(ns),
        "this is 1 / (mean number of choices); the expected accuracy is the mean of 1 / n, "
        "which is larger (Jensen's inequality).",
    ),
]


def check_random_baseline(fn: Callable[[Sequence[int]], float]) -> Check:
    """Check ``fn(num_choices) -> float``, the expected accuracy of uniform guessing."""
    cases = {
        "all four": ([4, 4, 4, 4],),
        "three to five": ([3, 3, 5],),
        "two questions": ([5, 2],),
    }
    return check_function(
        fn,
        random_baseline_reference,
        cases,
        ("num_choices",),
        mistakes=BASELINE_MISTAKES,
        atol=1e-12,
        rtol=1e-9,
    )
