"""References and known mistakes for the TruthfulQA chapter: MC2 of a padded batch of questions, and MC2 for one
true and one false answer."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from demos.exercises.core import Check, Mistake, check_function

PAD = -1  # the label of a padded slot: no answer there


def batched_mc2_reference(loglikelihoods: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """MC2 of each question of a padded batch: ``(q, a)`` float64 log-likelihoods and ``(q, a)``
    integer labels (1 true, 0 false, -1 padding) -> ``(q,)`` float64, the share of each question's
    probability (over its real answers) that lands on its true answers, computed stably.

    Raises:
        ValueError: not two tensors of the same 2-D shape, log-likelihoods not float64, a label not
            -1, 0 or 1, a question without a true and a false answer, or a NaN or positive
            log-likelihood at a real answer.
    """
    if not isinstance(loglikelihoods, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise ValueError("loglikelihoods and labels must be tensors")
    if loglikelihoods.dim() != 2 or loglikelihoods.shape != labels.shape:
        raise ValueError(
            f"loglikelihoods {tuple(loglikelihoods.shape)} and labels {tuple(labels.shape)} must "
            "have the same shape (q, a)"
        )
    if loglikelihoods.dtype != torch.float64:
        raise ValueError(f"loglikelihoods must be float64, got {loglikelihoods.dtype}")
    if not bool(((labels == PAD) | (labels == 0) | (labels == 1)).all()):
        raise ValueError(
            f"labels must be -1 (padding), 0 (false) or 1 (true), got {labels.tolist()}"
        )
    real = labels != PAD
    if not bool(((labels == 1).any(1) & (labels == 0).any(1)).all()):
        raise ValueError("every question needs at least one true (1) and one false (0) answer")
    bad = real & (loglikelihoods.isnan() | (loglikelihoods > 0))
    if bool(bad.any()):
        raise ValueError("a real answer's log-likelihood must be a number <= 0 (not NaN)")
    # padding gets -inf: exp(-inf) = 0 in the softmax, whatever the tensor held there
    masked = loglikelihoods.masked_fill(~real, -math.inf)
    shares = torch.softmax(masked, dim=1)  # subtracts each question's largest real value first
    return (shares * (labels == 1)).sum(dim=1)


def _padding_counted(lls, labels):
    return (torch.softmax(lls, dim=1) * (labels == 1)).sum(dim=1)


def _naive(lls, labels):
    weights = torch.exp(lls) * (labels != PAD)
    return (weights * (labels == 1)).sum(dim=1) / weights.sum(dim=1)


def _mean_of_true_shares(lls, labels):
    true = labels == 1
    return (batched_mc2_reference(lls, labels) / true.sum(dim=1)).to(torch.float64)


def _shift_by_batch_max(lls, labels):
    real = labels != PAD
    weights = torch.exp(lls - lls[real].max()) * real
    return (weights * (labels == 1)).sum(dim=1) / weights.sum(dim=1)


def _shift_with_padding(lls, labels):
    weights = torch.exp(lls - lls.max(dim=1, keepdim=True).values) * (labels != PAD)
    return (weights * (labels == 1)).sum(dim=1) / weights.sum(dim=1)


BATCHED_MC2_MISTAKES = [
    Mistake(
        _padding_counted,
        "the padded slots (label -1) joined the denominator as if they were false answers: leave "
        "them out of the normalisation (set their log-likelihood to -inf, or multiply their weight "
        "by 0, before summing).",
        "padding after the answers",
    ),
    Mistake(
        _naive,
        "exp of a log-likelihood near -1000 is 0 in float64, and 0 / 0 is NaN: subtract each "
        "question's largest log-likelihood before exponentiating (torch.softmax does).",
        "every answer near -1000 nats",
    ),
    Mistake(
        _mean_of_true_shares,
        "this averages the true answers' shares; MC2 is their sum (the probability on all the "
        "true answers together).",
        "two questions, no padding",
    ),
    Mistake(
        _shift_by_batch_max,
        "the shift is the largest log-likelihood of the whole batch: a question whose answers all "
        "lie 1000 nats below another question's underflows to 0 / 0. Subtract each question's own "
        "maximum (max over dim 1, keepdim=True).",
        "one question near -1000, one near -3",
    ),
    Mistake(
        _shift_with_padding,
        "the maximum subtracted includes the padded slots: a padding value of 0.0 pushes every "
        "real answer near -1000 below exp's range (0 / 0). Take the maximum over the real answers "
        "only (mask the padding with -inf first).",
        "padding of 0.0 beside answers near -1000",
    ),
]


def _f64(rows):
    return torch.tensor(rows, dtype=torch.float64)


def _labels(rows):
    return torch.tensor(rows, dtype=torch.int64)


def check_batched_mc2(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Check:
    """Check ``fn(loglikelihoods (q, a) float64, labels (q, a) int64) -> (q,) float64``: the MC2 of
    each question, label -1 marking padding."""
    cases = {
        "two questions, no padding": (
            _f64([[-3.0, -4.0, -2.5, -6.0], [-10.0, -9.0, -11.0, -12.0]]),
            _labels([[1, 1, 0, 0], [0, 1, 0, 0]]),
        ),
        "padding after the answers": (
            _f64([[-2.0, -3.0, 0.0, 0.0], [-5.0, -4.0, -6.0, -1.5]]),
            _labels([[1, 0, -1, -1], [0, 0, 1, 0]]),
        ),
        "every answer near -1000 nats": (
            _f64([[-1000.0, -1001.0, -1003.0]]),
            _labels([[0, 1, 0]]),
        ),
        "one question near -1000, one near -3": (
            _f64([[-1000.0, -1002.0, -1001.0], [-3.0, -2.0, -4.0]]),
            _labels([[1, 0, 0], [0, 0, 1]]),
        ),
        "padding of 0.0 beside answers near -1000": (
            _f64([[-1000.0, -1001.0, 0.0, 0.0]]),
            _labels([[0, 1, -1, -1]]),
        ),
    }
    return check_function(
        fn,
        batched_mc2_reference,
        cases,
        ("loglikelihoods", "labels"),
        mistakes=BATCHED_MC2_MISTAKES,
        atol=1e-9,
        rtol=1e-9,
        exact_dtype=True,
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
