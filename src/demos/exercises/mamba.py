"""Checkers for the Mamba chapter's exercises: one step of the selective SSM."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, first_mismatch


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


def check_ssm_step(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Check:
    """Check a learner's ``ssm_step(x, u, delta, A, B, C) -> (x_new, y)``: one token of Mamba's scan."""
    gen = torch.Generator().manual_seed(0)
    hints = [
        (
            _ssm_step_euler_A,
            "A was discretised with Euler's rule, 1 + delta A. Mamba uses the zero-order hold "
            "for A: A_bar = exp(delta A), which stays in (0, 1) for every step size.",
        ),
        (
            _ssm_step_old_state,
            "y was read from the state before this token's update; y_t = C_t . x_t uses the new state.",
        ),
        (
            _ssm_step_no_delta_on_B,
            "the input was written without the step size: B_bar = delta B, so a small delta "
            "both keeps the old state and writes little.",
        ),
    ]
    for b, e, n in [(1, 2, 3), (2, 5, 4), (3, 1, 8)]:
        args = (
            torch.randn(b, e, n, generator=gen),
            torch.randn(b, e, generator=gen),
            torch.rand(b, e, generator=gen) + 0.05,
            -torch.rand(e, n, generator=gen) * 3 - 0.1,
            torch.randn(b, n, generator=gen),
            torch.randn(b, n, generator=gen),
        )
        shapes = f"b={b}, e={e}, n={n}"
        expected = ssm_step_reference(*args)
        try:
            got = fn(*args)
        except Exception as error:  # the learner's code: report, don't crash the notebook
            return Check(False, f"With {shapes} it raised {type(error).__name__}: {error}")
        if not (isinstance(got, tuple) and len(got) == 2):
            return Check(
                False, f"With {shapes} it returned {type(got).__name__}; expected (x_new, y)."
            )
        for name, g, want in zip(("x_new", "y"), got, expected, strict=True):
            if not isinstance(g, torch.Tensor) or g.shape != want.shape:
                what = tuple(g.shape) if isinstance(g, torch.Tensor) else type(g).__name__
                return Check(
                    False, f"With {shapes}, {name} is {what}; expected shape {tuple(want.shape)}."
                )
        for name, g, want, i in (("x_new", got[0], expected[0], 0), ("y", got[1], expected[1], 1)):
            mismatch = first_mismatch(g.to(want.dtype), want, 1e-5, 1e-5)
            if mismatch:
                for wrong, why in hints:
                    if torch.allclose(g.to(want.dtype), wrong(*args)[i], atol=1e-5, rtol=1e-5):
                        return Check(
                            False, f"With {shapes}, {name}: {mismatch} Likely cause: {why}"
                        )
                return Check(False, f"With {shapes}, {name}: {mismatch}")
    return Check(True, "x_new and y match the reference on 3 random inputs.")
