"""Checkers for the TruthfulQA chapter: MC2 of a padded batch of questions, and MC2 for one true and one
false answer."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded


def check_batched_mc2(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Check:
    """Check ``fn(loglikelihoods (q, a) float64, labels (q, a) int64) -> (q,) float64``: the MC2 of
    each question, label -1 marking padding."""
    return check_recorded(
        fn,
        recorded(__name__, "check_batched_mc2"),
        ("loglikelihoods", "labels"),
        atol=1e-9,
        rtol=1e-9,
        exact_dtype=True,
    )


def check_binary_mc2(fn: Callable[[float, float], float]) -> Check:
    """Check ``fn(ll_true, ll_false) -> float``."""
    return check_recorded(
        fn, recorded(__name__, "check_binary_mc2"), ("ll_true", "ll_false"), atol=1e-9, rtol=1e-9
    )
