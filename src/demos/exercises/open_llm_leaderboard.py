"""Checkers for the Open LLM Leaderboard chapter: acc_norm as the harness computes it, and the
probability of each choice normalised over the choices."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded

ACC_NORM_ARGS = ("loglikelihoods", "choices", "gold")


def check_acc_norm(fn: Callable[..., float]) -> Check:
    """Check ``fn(loglikelihoods, choices, gold) -> 1.0 or 0.0``, the harness's acc_norm."""
    return check_recorded(fn, recorded(__name__, "check_acc_norm"), ACC_NORM_ARGS)


def check_choice_probabilities(fn: Callable[[torch.Tensor], torch.Tensor]) -> Check:
    """Check ``fn(loglikelihoods (n,) float64) -> (n,)``, probabilities normalised over the choices."""
    return check_recorded(
        fn,
        recorded(__name__, "check_choice_probabilities"),
        ("loglikelihoods",),
        atol=1e-9,
        rtol=1e-9,
    )
