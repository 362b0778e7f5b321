"""Checkers for the HellaSwag chapter: the acc_norm prediction, and mutual-information scoring."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded


def check_pred_norm(fn: Callable[[Sequence[float], Sequence[str]], int]) -> Check:
    """Check ``fn(loglikelihoods, endings) -> int``, the index acc_norm picks."""
    return check_recorded(fn, recorded(__name__, "check_pred_norm"), ("loglikelihoods", "endings"))


def check_mutual_info(fn: Callable[[Sequence[float], Sequence[float]], int]) -> Check:
    """Check ``fn(conditional, unconditional) -> int``, the acc_mutual_info pick."""
    return check_recorded(
        fn, recorded(__name__, "check_mutual_info"), ("conditional", "unconditional")
    )
