"""Checkers for the Mamba chapter's exercises: one step of the selective SSM."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, Mistake, check_function


def ssm_step_reference(x, u, delta, A, B, C):
    """One token of the selective SSM: returns ``(x_new, y)``; x (b, e, n), u and delta (b, e),
    A (e, n), B and C (b, n). ``x_new = exp(delta A) x + delta B u`` and ``y = C . x_new``."""
    deltaA = torch.exp(delta[:, :, None] * A)  # (b, e, n): zero-order hold for A
    x_new = deltaA * x + (delta * u)[:, :, None] * B[:, None, :]  # (b, e, n)
    return x_new, (x_new * C[:, None, :]).sum(-1)  # (b, e, n), (b, e)


def _ssm_step_euler_A(x, u, delta, A, B, C):
    x_new = (1 + delta[:, :, None] * A) * x + (delta * u)[:, :, None] * B[:, None, :]
    return x_new, (x_new * C[:, None, :]).sum(-1)


def _ssm_step_old_state(x, u, delta, A, B, C):
    x_new = ssm_step_reference(x, u, delta, A, B, C)[0]
    return x_new, (x * C[:, None, :]).sum(-1)


def _ssm_step_no_delta_on_B(x, u, delta, A, B, C):
    x_new = torch.exp(delta[:, :, None] * A) * x + u[:, :, None] * B[:, None, :]
    return x_new, (x_new * C[:, None, :]).sum(-1)


MISTAKES = [
    Mistake(
        _ssm_step_euler_A,
        "A was discretised with Euler's rule, 1 + delta A. Mamba uses the zero-order hold "
        "for A: A_bar = exp(delta A), which stays in (0, 1) for every step size.",
    ),
    Mistake(
        _ssm_step_old_state,
        "y was read from the state before this token's update; y_t = C_t . x_t uses the new state.",
    ),
    Mistake(
        _ssm_step_no_delta_on_B,
        "the input was written without the step size: B_bar = delta B, so a small delta "
        "both keeps the old state and writes little.",
    ),
]


def check_ssm_step(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Check:
    """Check a learner's ``ssm_step(x, u, delta, A, B, C) -> (x_new, y)``: one token of Mamba's scan."""
    gen = torch.Generator().manual_seed(0)
    cases = {
        f"b={b}, e={e}, n={n}": (
            torch.randn(b, e, n, generator=gen),  # x
            torch.randn(b, e, generator=gen),  # u
            torch.rand(b, e, generator=gen) + 0.05,  # delta > 0
            -torch.rand(e, n, generator=gen) * 3 - 0.1,  # A < 0
            torch.randn(b, n, generator=gen),  # B
            torch.randn(b, n, generator=gen),  # C
        )
        for b, e, n in [(1, 2, 3), (2, 5, 4), (3, 1, 8)]
    }
    return check_function(
        fn,
        ssm_step_reference,
        cases,
        ("x", "u", "delta", "A", "B", "C"),
        mistakes=MISTAKES,
        atol=1e-5,
        rtol=1e-5,
        names=("x_new", "y"),
    )
