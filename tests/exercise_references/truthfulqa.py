"""References and known mistakes for the TruthfulQA chapter: MC2, and MC2 for one true and one false answer."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from demos.eval.truthfulqa import mc2
from demos.exercises.core import Check, Mistake, check_function


def _naive(lls, labels):
    probs = [math.exp(ll) for ll in lls]
    total = sum(probs)
    return sum(p for p, t in zip(probs, labels, strict=True) if t) / total if total else math.nan


MC2_MISTAKES = [
    Mistake(
        lambda lls, labels: sum(math.exp(ll) for ll, t in zip(lls, labels, strict=True) if t),
        "the true answers' probabilities must be divided by the total over all answers offered.",
    ),
    Mistake(
        _naive,
        "exp of a log-likelihood near -1000 is 0 in floating point, and 0/0 is NaN: subtract the "
        "largest log-likelihood before exponentiating.",
    ),
    Mistake(
        lambda lls, labels: sum(labels) / len(labels),
        "this is the share of true answers among the choices; weight each by its probability.",
    ),
]


def check_mc2(fn: Callable[[Sequence[float], Sequence[int]], float]) -> Check:
    """Check ``fn(loglikelihoods, labels) -> float``: TruthfulQA's MC2."""
    cases = {
        "two true, two false": ([-3.0, -4.0, -2.5, -6.0], [1, 1, 0, 0]),
        "one true of three": ([-10.0, -9.0, -11.0], [0, 1, 0]),
        "long answers near -1000 nats": ([-1000.0, -1001.0, -1003.0], [1, 0, 0]),
    }
    return check_function(
        fn, mc2, cases, ("loglikelihoods", "labels"), mistakes=MC2_MISTAKES, atol=1e-9, rtol=1e-9
    )


def binary_mc2_reference(ll_true: float, ll_false: float) -> float:
    """MC2 with one true and one false answer: ``sigmoid(ll_true - ll_false)``."""
    return 1.0 / (1.0 + math.exp(ll_false - ll_true))


BINARY_MISTAKES = [
    Mistake(
        lambda t, f: 1.0 / (1.0 + math.exp(t - f)),
        "the sign is swapped: the true answer's share grows with ll_true - ll_false.",
    ),
    Mistake(lambda t, f: math.exp(t), "this is the true answer's probability, not its share."),
]


def check_binary_mc2(fn: Callable[[float, float], float]) -> Check:
    """Check ``fn(ll_true, ll_false) -> float``."""
    cases = {
        "the true answer likelier": (-2.0, -5.0),
        "the false answer likelier": (-9.0, -4.0),
        "both near -800": (-800.0, -801.5),
    }
    return check_function(
        fn,
        binary_mc2_reference,
        cases,
        ("ll_true", "ll_false"),
        mistakes=BINARY_MISTAKES,
        atol=1e-9,
        rtol=1e-9,
    )
