"""What every checker must do with any wrong answer: explain it in a Check(ok=False), never raise."""

from __future__ import annotations

import pytest
import torch

from demos.exercises.core import Check


class Stubborn:
    """An object that cannot be compared, printed as a number or turned into a bool."""

    def __eq__(self, other):
        raise RuntimeError("no comparing me")

    __hash__ = None

    def __bool__(self):
        raise RuntimeError("no truth value")


# answers wrong for any checker: (answer, words the message must contain)
ANY_CHECKER = {
    "returns None": (lambda *a: None, ["got None"]),
    "returns a str": (lambda *a: "42", ["got a str"]),
    "returns a list of numbers": (lambda *a: [1.0, 2.0], ["got a list"]),
    "returns a dict": (lambda *a: {"answer": 1}, ["got a dict"]),
    "returns an odd object": (lambda *a: Stubborn(), ["Stubborn"]),
    "raises": (lambda *a: 1 / 0, ["raised ZeroDivisionError"]),
    "takes the wrong number of arguments": (lambda: None, ["raised TypeError"]),
    "is not a function": (torch.ones(3), ["Expected a function", "tensor"]),
}


@pytest.fixture(params=list(ANY_CHECKER))
def any_wrong_answer(request):
    return ANY_CHECKER[request.param]


def explains(checker, answer, words) -> Check:
    """Run ``checker(answer)``: it must return Check(ok=False) whose message holds every word."""
    result = checker(answer)
    assert isinstance(result, Check), result
    assert not result.ok, result.message
    missing = [w for w in words if w not in result.message]
    assert not missing, f"{missing} not in: {result.message}"
    return result


@pytest.fixture
def explain():
    return explains
