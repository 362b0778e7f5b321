"""Checkers for the MMLU chapter: the average that gives each category one vote, and the original
implementation's pick among the four letters."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from demos.exercises.core import Check, Convention, check_recorded
from demos.exercises.recorded import recorded

CATEGORY_ARGS = ("per_subject", "category_of")


def check_category_average(
    fn: Callable[[Mapping[str, Sequence[float]], Mapping[str, str]], float],
) -> Check:
    """Check ``fn(per_subject, category_of) -> float``: ``{subject: [1.0 or 0.0 per question]}``
    and ``{subject: category}``; the mean over the categories of each category's accuracy over its
    questions."""
    return check_recorded(
        fn, recorded(__name__, "check_category_average"), CATEGORY_ARGS, atol=1e-12
    )


def _from_letter(answer):
    """'C' -> 2 (the answer written as the letter), None for anything else."""
    if isinstance(answer, str) and answer.strip().upper() in ("A", "B", "C", "D"):
        return "ABCD".index(answer.strip().upper())
    return None


LETTER_CONVENTIONS = [
    Convention(
        _from_letter,
        "the answer is the letter itself (a str); the exercise asks for its position among the "
        "four letters as an int: 0 for 'A', 1 for 'B', 2 for 'C', 3 for 'D'.",
    ),
]


def check_letter_pick(fn: Callable[[torch.Tensor, Sequence[int]], int]) -> Check:
    """Check ``fn(next_token_logits (v,), letter_ids) -> int in 0..3``."""
    return check_recorded(
        fn,
        recorded(__name__, "check_letter_pick"),
        ("next_token_logits", "letter_ids"),
        conventions=LETTER_CONVENTIONS,
    )
