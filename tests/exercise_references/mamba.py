"""References and known mistakes for the Mamba chapter's exercises: one step of the selective SSM,
and the zero-order-hold discretisation of ``A`` and ``B`` (transfer: the paper's Eq. 4, which
Mamba's code keeps for ``A`` only).

Each checker recognises the other discretisation of ``B`` and says so: Euler's ``delta B`` where the
zero-order hold was asked for, and the zero-order hold where the step uses Euler, as Mamba's code does."""

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


def _zoh_B(delta, A, B):
    """The zero-order hold's B_bar = (delta A)^-1 (exp(delta A) - 1) delta B, (b, e, n); for a
    diagonal A it is (exp(delta A) - 1) / A * B."""
    return torch.expm1(delta[:, :, None] * A) / A * B[:, None, :]


def _ssm_step_zoh_B(x, u, delta, A, B, C):
    x_new = torch.exp(delta[:, :, None] * A) * x + _zoh_B(delta, A, B) * u[:, :, None]
    return x_new, (x_new * C[:, None, :]).sum(-1)


ZOH_FOR_B = (
    "B_bar was discretised with the zero-order hold, (exp(delta A) - 1) / (delta A) * delta B, "
    "the paper's Eq. 4. Mamba's code, and this step, use Euler's rule for B: B_bar = delta B "
    "(the zero-order hold's first-order term; the two differ by about delta A / 2, relatively)."
)

MISTAKES = [
    Mistake(_ssm_step_zoh_B, ZOH_FOR_B),
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


# ---------------------------------------------------------------------------- transfer: the zero-order hold


def zoh_reference(A: torch.Tensor, delta: torch.Tensor, B: torch.Tensor):
    """The zero-order hold of a diagonal SSM (the paper's Eq. 4): ``A (e, n)``, ``delta (b, e)``,
    ``B (b, n)`` -> ``(A_bar, B_bar)``, both ``(b, e, n)``: ``A_bar = exp(delta A)`` and
    ``B_bar = (delta A)^-1 (exp(delta A) - 1) delta B = (exp(delta A) - 1) / A * B``."""
    return torch.exp(delta[:, :, None] * A), _zoh_B(delta, A, B)


ZOH_MISTAKES = [
    Mistake(
        lambda A, delta, B: (torch.exp(delta[:, :, None] * A), delta[:, :, None] * B[:, None, :]),
        "B_bar = delta B is Euler's rule, what Mamba's code uses for B (see the chapter). The "
        "zero-order hold asked for here is (exp(delta A) - 1) / (delta A) * delta B; the two agree "
        "only to first order in delta A.",
    ),
    Mistake(
        lambda A, delta, B: (1 + delta[:, :, None] * A, delta[:, :, None] * B[:, None, :]),
        "both are Euler's rule: A_bar = 1 + delta A, B_bar = delta B. The zero-order hold is "
        "A_bar = exp(delta A) and B_bar = (exp(delta A) - 1) / (delta A) * delta B.",
    ),
    Mistake(
        lambda A, delta, B: (
            torch.exp(delta[:, :, None] * A),
            _zoh_B(delta, A, B) * delta[:, :, None],
        ),
        "B_bar has one delta too many: (delta A)^-1 (exp(delta A) - 1) delta B simplifies to "
        "(exp(delta A) - 1) / A * B; the deltas cancel.",
    ),
    Mistake(
        lambda A, delta, B: (
            torch.exp(delta[:, :, None] * A),
            _zoh_B(delta, A, B) / delta[:, :, None],
        ),
        "B_bar lacks the final delta: (delta A)^-1 (exp(delta A) - 1) delta B = "
        "(exp(delta A) - 1) / A * B, not (exp(delta A) - 1) / (delta A) * B.",
    ),
]


def check_zoh(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Check:
    """Check a learner's ``zoh(A, delta, B) -> (A_bar, B_bar)``: the zero-order hold of Mamba's
    diagonal SSM, ``A (e, n)`` negative, ``delta (b, e)`` positive, ``B (b, n)``; both results
    ``(b, e, n)``, to 1e-5."""
    gen = torch.Generator().manual_seed(0)
    cases = {
        label: (
            -torch.rand(e, n, generator=gen) * 3 - 0.1,  # A < 0
            torch.rand(b, e, generator=gen) * scale + 0.01,  # delta > 0
            torch.randn(b, n, generator=gen),  # B
        )
        for label, (b, e, n, scale) in {
            "b=1, e=2, n=3, delta up to 1": (1, 2, 3, 1.0),
            "b=2, e=4, n=16, large steps": (2, 4, 16, 4.0),
            "b=3, e=1, n=2, small steps": (3, 1, 2, 0.05),
        }.items()
    }
    return check_function(
        fn,
        zoh_reference,
        cases,
        ("A", "delta", "B"),
        mistakes=ZOH_MISTAKES,
        atol=1e-5,
        rtol=1e-5,
        names=("A_bar", "B_bar"),
    )
