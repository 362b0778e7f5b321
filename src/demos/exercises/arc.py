"""Checkers for the ARC chapter: the gold index from ARC's own labels, and the accuracy of guessing."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded


def check_gold_index(fn: Callable[[Sequence[str], str], int]) -> Check:
    """Check ``fn(labels, answer_key) -> int``."""
    return check_recorded(fn, recorded(__name__, "check_gold_index"), ("labels", "answer_key"))


def check_random_baseline(fn: Callable[[Sequence[int]], float]) -> Check:
    """Check ``fn(num_choices) -> float``, the expected accuracy of uniform guessing."""
    return check_recorded(
        fn, recorded(__name__, "check_random_baseline"), ("num_choices",), atol=1e-12, rtol=1e-9
    )
