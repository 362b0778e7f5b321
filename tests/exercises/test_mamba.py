"""The Mamba chapter's checker: one step of the selective SSM."""

from __future__ import annotations

import pytest
import torch

from demos.exercises.mamba import check_ssm_step


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
