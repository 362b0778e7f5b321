"""Checkers for the GSM8K chapter's exercises: flexible-extract accuracy as the harness scores it,
and "any of the first k samples is right" (coverage), the cousin of maj@k."""

from __future__ import annotations

from collections.abc import Callable

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded


def check_flexible_accuracy(fn: Callable[[list[str], list[str]], float]) -> Check:
    """Check ``flexible_accuracy(outputs, answers) -> float``: the harness's flexible-extract
    answer of each output, compared by exact match (commas, $ and a trailing period removed) with
    the reference solution's ``#### N``; the mean over items."""
    return check_recorded(
        fn, recorded(__name__, "check_flexible_accuracy"), ("outputs", "answers"), atol=1e-12
    )


def check_any_of_k(fn: Callable[[list[list[str]], list[str], int], float]) -> Check:
    """Check ``any_of_k(samples, answers, k) -> float``: per item, whether any of the first ``k``
    samples' strict-match answers is right; the mean over items (coverage, not maj@k)."""
    return check_recorded(
        fn, recorded(__name__, "check_any_of_k"), ("samples", "answers", "k"), atol=1e-12
    )
