"""References and known mistakes for the Open LLM Leaderboard chapter: acc_norm as the harness computes it, and the
probability of each choice normalised over the choices."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.eval.metrics import multiple_choice_scores
from demos.exercises.core import Check, Mistake, check_function
from demos.exercises.open_llm_leaderboard import ACC_NORM_ARGS  # shared with the package


def acc_norm_reference(loglikelihoods, choices, gold) -> float:
    """lm-eval 0.4.13's acc_norm: argmax of log-likelihood / characters, first on a tie."""
    return multiple_choice_scores(loglikelihoods, choices, gold).acc_norm


def _argmax(values):
    return max(range(len(values)), key=lambda i: (values[i], -i))


def _normalised(lls, choices, length):
    """``ll / length(choice)`` for each choice: the shape of the mistakes below."""
    return [ll / length(c) for ll, c in zip(lls, choices, strict=True)]


ACC_NORM_MISTAKES = [
    Mistake(
        lambda lls, cs, g: float(_argmax(lls) == g),
        "this is acc: the log-likelihoods are compared without dividing by the choices' lengths.",
    ),
    Mistake(
        lambda lls, cs, g: float(_argmax(_normalised(lls, cs, lambda c: len(c.encode()))) == g),
        "this divides by UTF-8 bytes (the harness's acc_bytes); acc_norm divides by len(choice), "
        "the number of characters. They differ on non-ASCII text.",
    ),
    Mistake(
        lambda lls, cs, g: float(_argmax(_normalised(lls, cs, lambda c: len(c) + 1)) == g),
        "the length counts the leading space of the continuation; the harness divides by the "
        "length of the choice text itself.",
    ),
    Mistake(
        lambda lls, cs, g: float(_argmax(_normalised(lls, cs, lambda c: 1 / len(c))) == g),
        "this multiplies by the length; acc_norm divides the log-likelihood by it.",
    ),
]


def check_acc_norm(fn: Callable[..., float]) -> Check:
    """Check ``fn(loglikelihoods, choices, gold) -> 1.0 or 0.0``, the harness's acc_norm."""
    cases = {
        "the long answer wins per character": ([-12.0, -3.0], ["a very long answer", "short"], 0),
        "non-ASCII: characters, not bytes": ([-10.0, -9.0], ["ééééé", "abcde"], 1),
        "a tie goes to the first choice": ([-4.0, -8.0, -2.0], ["ab", "abcd", "a"], 0),
        "four choices": ([-7.0, -6.5, -9.0, -8.0], ["seven", "six", "nine!!!!", "eight"], 2),
        "gold is wrong even unnormalised": ([-1.0, -20.0], ["yes", "a long no"], 1),
        "the long choice is likelier outright": ([-5.0, -6.0], ["a long reply", "no"], 0),
    }
    return check_function(fn, acc_norm_reference, cases, ACC_NORM_ARGS, mistakes=ACC_NORM_MISTAKES)


def choice_probabilities_reference(loglikelihoods: torch.Tensor) -> torch.Tensor:
    """``softmax`` of the choices' log-likelihoods: each choice's share of the probability the
    model puts on the choices (the harness's ``prob_norm``; TruthfulQA's MC2 sums it over the true
    answers)."""
    return torch.softmax(loglikelihoods, dim=-1)


CHOICE_PROB_MISTAKES = [
    Mistake(
        lambda lls: torch.exp(lls),
        "exp(log-likelihood) is each choice's probability as a continuation; divide by their sum "
        "so that the shares add up to 1.",
    ),
    Mistake(
        lambda lls: torch.exp(lls) / torch.exp(lls).sum(-1, keepdim=True),
        "exp of a log-likelihood near -1000 underflows to 0, and 0 / 0 is NaN: subtract the "
        "largest log-likelihood first (torch.softmax or torch.logsumexp do).",
    ),
    Mistake(
        lambda lls: lls / lls.sum(-1, keepdim=True),
        "log-likelihoods are not probabilities: exponentiate (stably) before normalising.",
    ),
]


def check_choice_probabilities(fn: Callable[[torch.Tensor], torch.Tensor]) -> Check:
    """Check ``fn(loglikelihoods (n,) float64) -> (n,)``, probabilities normalised over the choices."""
    cases = {
        "four choices": (torch.tensor([-3.0, -1.5, -7.0, -2.0], dtype=torch.float64),),
        "one choice": (torch.tensor([-5.0], dtype=torch.float64),),
        "long answers: around -1000 nats": (
            torch.tensor([-1002.0, -1000.0, -1010.0], dtype=torch.float64),
        ),
    }
    return check_function(
        fn,
        choice_probabilities_reference,
        cases,
        ("loglikelihoods",),
        mistakes=CHOICE_PROB_MISTAKES,
        atol=1e-9,
        rtol=1e-9,
    )
