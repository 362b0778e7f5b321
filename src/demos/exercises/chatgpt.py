"""Checkers for the ChatGPT chapter's exercises: InstructGPT's loss over K ranked answers, the "k3"
estimate of the KL divergence (the one GRPO adds to its loss, proven equal to TRL's in the tests),
and advantages as returns minus a value baseline, written as a sum rather than GAE's recursion."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded

# ---------------------------------------------------------------------------- ranking loss


def check_ranking_loss(fn: Callable[[torch.Tensor], torch.Tensor]) -> Check:
    """Check a learner's ``ranking_loss(rewards)``: ``(b, K)`` rewards in rank order -> ``(b,)``."""
    return check_recorded(
        fn, recorded(__name__, "check_ranking_loss"), ("rewards",), atol=1e-5, rtol=1e-5
    )


# ---------------------------------------------------------------------------- k3 KL estimate


def check_k3(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Check:
    """Check a learner's ``k3(logps, ref_logps)``: two ``(b, t)`` tensors -> ``(b, t)``."""
    return check_recorded(
        fn, recorded(__name__, "check_k3"), ("logps", "ref_logps"), atol=1e-5, rtol=1e-5
    )


# ---------------------------------------------------------------------------- returns minus baseline


def check_baseline_advantages(fn: Callable[..., torch.Tensor]) -> Check:
    """Check a learner's ``advantages(rewards, values, mask, gamma)``: ``(b, t)`` each -> ``(b, t)``."""

    return check_recorded(
        fn,
        recorded(__name__, "check_baseline_advantages"),
        ("rewards", "values", "mask", "gamma"),
        atol=1e-5,
        rtol=1e-5,
    )
