"""Checkers for the Mamba chapter's exercises: one step of the selective SSM, and the zero-order-hold
discretisation of ``A`` and ``B`` (transfer: the paper's Eq. 4, which Mamba's code keeps for ``A`` only).

Each checker recognises the other discretisation of ``B`` and says so: Euler's ``delta B`` where the
zero-order hold was asked for, and the zero-order hold where the step uses Euler, as Mamba's code does."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded


def check_ssm_step(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Check:
    """Check a learner's ``ssm_step(x, u, delta, A, B, C) -> (x_new, y)``: one token of Mamba's scan."""
    return check_recorded(
        fn,
        recorded(__name__, "check_ssm_step"),
        ("x", "u", "delta", "A", "B", "C"),
        atol=1e-5,
        rtol=1e-5,
        names=("x_new", "y"),
    )


# ---------------------------------------------------------------------------- transfer: the zero-order hold


def check_zoh(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Check:
    """Check a learner's ``zoh(A, delta, B) -> (A_bar, B_bar)``: the zero-order hold of Mamba's
    diagonal SSM, ``A (e, n)`` negative, ``delta (b, e)`` positive, ``B (b, n)``; both results
    ``(b, e, n)``, to 1e-5."""
    return check_recorded(
        fn,
        recorded(__name__, "check_zoh"),
        ("A", "delta", "B"),
        atol=1e-5,
        rtol=1e-5,
        names=("A_bar", "B_bar"),
    )
