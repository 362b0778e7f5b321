"""Checkers for the Open LLM Leaderboard chapter: how far the gold answer is from winning acc_norm,
and the probability of each choice normalised over the choices."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded

NORM_MARGIN_ARGS = ("loglikelihoods", "choices", "gold")


def check_norm_margin(fn: Callable[..., float]) -> Check:
    """Check ``fn(loglikelihoods, choices, gold) -> float``: the nats the gold choice must gain to
    draw level under acc_norm, 0.0 when it is level or ahead."""
    return check_recorded(
        fn, recorded(__name__, "check_norm_margin"), NORM_MARGIN_ARGS, atol=1e-9, rtol=1e-9
    )


def check_choice_probabilities(fn: Callable[[torch.Tensor], torch.Tensor]) -> Check:
    """Check ``fn(loglikelihoods (n,) float64) -> (n,)``, probabilities normalised over the choices."""
    return check_recorded(
        fn,
        recorded(__name__, "check_choice_probabilities"),
        ("loglikelihoods",),
        atol=1e-9,
        rtol=1e-9,
    )
