"""Checkers for the TruthfulQA chapter: MC2, and MC2 for one true and one false answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded


def check_mc2(fn: Callable[[Sequence[float], Sequence[int]], float]) -> Check:
    """Check ``fn(loglikelihoods, labels) -> float``: TruthfulQA's MC2."""
    return check_recorded(
        fn, recorded(__name__, "check_mc2"), ("loglikelihoods", "labels"), atol=1e-9, rtol=1e-9
    )


def check_binary_mc2(fn: Callable[[float, float], float]) -> Check:
    """Check ``fn(ll_true, ll_false) -> float``."""
    return check_recorded(
        fn, recorded(__name__, "check_binary_mc2"), ("ll_true", "ll_false"), atol=1e-9, rtol=1e-9
    )
