"""The Mamba chapter's checker: one step of the selective SSM."""

from __future__ import annotations

import pytest
import torch

from demos.exercises.mamba import check_ssm_step, check_zoh


def step(x, u, delta, A, B, C):  # written independently of the reference: einsum form
    x_new = torch.exp(torch.einsum("be,en->ben", delta, A)) * x + torch.einsum(
        "be,bn->ben", delta * u, B
    )
    return x_new, torch.einsum("ben,bn->be", x_new, C)


def step_in_place(x, u, delta, A, B, C):  # the natural in-place update of the state
    x.mul_(torch.exp(delta[:, :, None] * A)).add_((delta * u)[:, :, None] * B[:, None, :])
    return x, (x * C[:, None, :]).sum(-1)


def euler(x, u, delta, A, B, C):
    x_new = (1 + torch.einsum("be,en->ben", delta, A)) * x + torch.einsum(
        "be,bn->ben", delta * u, B
    )
    return x_new, torch.einsum("ben,bn->be", x_new, C)


def old_state(x, u, delta, A, B, C):
    return step(x, u, delta, A, B, C)[0], torch.einsum("ben,bn->be", x, C)


def no_delta_on_B(x, u, delta, A, B, C):
    x_new = torch.exp(torch.einsum("be,en->ben", delta, A)) * x + torch.einsum("be,bn->ben", u, B)
    return x_new, torch.einsum("ben,bn->be", x_new, C)


@pytest.mark.parametrize(
    "answer",
    [
        step,
        lambda *a: list(step(*a)),
        lambda *a: step(*(t.double() for t in a)),
        lambda *a: tuple(t.half() for t in step(*a)),
        lambda *a: tuple(t.bfloat16() for t in step(*a)),
    ],
    ids=["einsum", "list", "float64", "float16", "bfloat16"],
)
def test_ssm_step_checker_accepts_right_answers(answer):
    result = check_ssm_step(answer)
    assert result.ok, result.message


SSM_WRONG = {
    "Euler for A": (euler, ["Euler"]),
    "y from the old state": (old_state, ["before this token's update", "y:"]),
    "no delta on B": (no_delta_on_B, ["without the step size"]),
    "Euler, in bfloat16": (lambda *a: tuple(t.bfloat16() for t in euler(*a)), ["Euler"]),
    "x_new only": (lambda *a: step(*a)[0], ["expected a tuple of 2 (x_new, y)"]),
    "three items": (lambda *a: (*step(*a), a[0]), ["got a tuple of 3 items"]),
    "dict": (lambda *a: dict(zip(("x_new", "y"), step(*a), strict=True)), ["got a dict"]),
    "y of the state's shape": (lambda x, *a: (x, x), ["y has shape (1, 2, 3), expected (1, 2)"]),
    "plain wrong values": (lambda x, u, *a: (x, u), ["x_new:", "differ"]),
    "NaN in y": (lambda *a: (step(*a)[0], step(*a)[1] * float("nan")), ["y has", "NaN"]),
    "integer dtype": (lambda *a: tuple(t.long() for t in step(*a)), ["int64", "floating-point"]),
    "updates the state in place": (step_in_place, ["modified its input x", "result is right"]),
}


@pytest.mark.parametrize("answer, words", SSM_WRONG.values(), ids=list(SSM_WRONG))
def test_ssm_step_checker_explains_wrong_answers(explain, answer, words):
    explain(check_ssm_step, answer, words)


def test_ssm_step_checker_names_no_cause_for_an_unknown_mistake(explain):
    assert "Likely cause" not in explain(check_ssm_step, lambda x, u, *a: (x, u), []).message


def test_ssm_step_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_ssm_step, *any_wrong_answer)


def zoh_B_step(x, u, delta, A, B, C):  # the paper's Eq. 4 for B too, written here
    dA = torch.einsum("be,en->ben", delta, A)
    B_bar = (torch.exp(dA) - 1) / dA * torch.einsum("be,bn->ben", delta, B)
    x_new = torch.exp(dA) * x + B_bar * u[:, :, None]
    return x_new, torch.einsum("ben,bn->be", x_new, C)


def test_ssm_step_checker_recognises_the_zero_order_hold_for_B(explain):
    result = explain(check_ssm_step, zoh_B_step, ["zero-order hold", "Euler's rule for B"])
    assert "Likely cause: B_bar was discretised with the zero-order hold" in result.message


# ---------------------------------------------------------------------------- the zero-order hold


def zoh(A, delta, B):  # written here: (delta A)^-1 (exp(delta A) - 1) delta B, elementwise
    dA = delta[:, :, None] * A  # (b, e, n)
    return torch.exp(dA), (torch.exp(dA) - 1) / dA * delta[:, :, None] * B[:, None, :]


def my_zoh(A, delta, B):
    # your code here: return (A_bar, B_bar), both of shape (b, e, n)
    return A, B


def test_zoh_checker_accepts_right_answers():
    for answer in (zoh, lambda *a: tuple(t.double() for t in zoh(*a))):
        result = check_zoh(answer)
        assert result.ok, result.message


ZOH_WRONG = {
    "the stub": (my_zoh, ["still the template", "A of shape (2, 3), delta of shape (1, 2)"]),
    "Euler for B (Mamba's code)": (
        lambda A, delta, B: (zoh(A, delta, B)[0], delta[:, :, None] * B[:, None, :]),
        ["B_bar:", "Euler's rule, what Mamba's code uses for B"],
    ),
    "Euler for both": (
        lambda A, delta, B: (1 + delta[:, :, None] * A, delta[:, :, None] * B[:, None, :]),
        ["A_bar:", "both are Euler's rule"],
    ),
    "an extra delta": (
        lambda A, delta, B: (zoh(A, delta, B)[0], zoh(A, delta, B)[1] * delta[:, :, None]),
        ["one delta too many"],
    ),
    "B_bar of shape (b, n)": (
        lambda A, delta, B: (zoh(A, delta, B)[0], B),
        ["B_bar has shape (1, 3), expected (1, 2, 3)"],
    ),
}


@pytest.mark.parametrize("answer, words", ZOH_WRONG.values(), ids=list(ZOH_WRONG))
def test_zoh_checker_explains_wrong_answers(explain, answer, words):
    explain(check_zoh, answer, words)


def test_zoh_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_zoh, *any_wrong_answer)


def test_zoh_reference_solves_the_continuous_system():
    """Over one step of length delta with the input held constant, h' = a h + b u has the exact
    solution exp(delta a) h0 + (exp(delta a) - 1) / a * b u: integrate it finely and compare."""
    from exercise_references.mamba import zoh_reference

    A = torch.tensor([[-0.5, -2.0]], dtype=torch.float64)  # (e, n) = (1, 2)
    delta = torch.tensor([[0.7]], dtype=torch.float64)  # (b, e)
    B = torch.tensor([[1.5, -1.0]], dtype=torch.float64)  # (b, n)
    h0, u, steps = torch.tensor([0.3, -0.2], dtype=torch.float64), 0.8, 20000
    h, dt = h0.clone(), 0.7 / steps
    for _ in range(steps):
        h = h + dt * (A[0] * h + B[0] * u)
    A_bar, B_bar = zoh_reference(A, delta, B)
    torch.testing.assert_close(A_bar[0, 0] * h0 + B_bar[0, 0] * u, h, atol=1e-4, rtol=1e-4)
