"""References and known mistakes for the Open LLM Leaderboard chapter: how far the gold answer is from winning
acc_norm, and the probability of each choice normalised over the choices."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.eval.metrics import check_multiple_choice
from demos.exercises.core import Check, Mistake, check_function
from demos.exercises.open_llm_leaderboard import NORM_MARGIN_ARGS  # shared with the package


def norm_margin_reference(loglikelihoods, choices, gold) -> float:
    """The nats the gold choice's log-likelihood must gain to draw level with the best other choice
    under acc_norm (log-likelihood per character of the choice text, as lm-eval 0.4.13 divides):
    ``max(0, len(choices[gold]) * max_{i != gold} ll_i / len(choices[i]) - ll_gold)``.

    Raises:
        ValueError: fewer than two choices, or what :func:`demos.eval.metrics.check_multiple_choice`
            rejects (an empty choice, a count mismatch, a NaN or positive log-likelihood, a gold
            index out of range).
    """
    check_multiple_choice(loglikelihoods, choices, gold)
    if len(choices) < 2:
        raise ValueError(f"got {len(choices)} choice: a margin needs a gold choice and a rival")
    return _margin(loglikelihoods, choices, gold, len)


def _margin(lls, choices, gold, length, scale=None, clip=True):
    """The shape of the reference and of the mistakes below: ``length`` measures a choice,
    ``scale(gold_len, rival_len)`` turns the per-unit gap into nats (the gold's length)."""
    per_unit = [float(ll) / length(c) for ll, c in zip(lls, choices, strict=True)]
    rival = max((i for i in range(len(choices)) if i != gold), key=lambda i: per_unit[i])
    gap = per_unit[rival] - per_unit[gold]
    size = (scale or (lambda g, r: g))(length(choices[gold]), length(choices[rival]))
    return max(0.0, size * gap) if clip else size * gap


NORM_MARGIN_MISTAKES = [
    Mistake(
        lambda lls, cs, g: _margin(lls, cs, g, lambda c: 1),
        "this is the margin for acc: the raw log-likelihoods are compared. acc_norm compares them "
        "per character of each choice.",
    ),
    Mistake(
        lambda lls, cs, g: _margin(lls, cs, g, len, scale=lambda gl, rl: 1),
        "this is the gap per character; x nats more on the gold choice raise its score by "
        "x / len(gold choice), so multiply the gap by the gold choice's length.",
    ),
    Mistake(
        lambda lls, cs, g: _margin(lls, cs, g, lambda c: len(c.encode())),
        "this divides by UTF-8 bytes (the harness's acc_bytes); acc_norm divides by len(choice), "
        "the number of characters. They differ on non-ASCII text.",
    ),
    Mistake(
        lambda lls, cs, g: _margin(lls, cs, g, len, clip=False),
        "when the gold choice is already ahead it needs to gain nothing: return 0.0, not a "
        "negative number.",
        "the gold answer already ahead",
    ),
    Mistake(
        lambda lls, cs, g: _margin(lls, cs, g, len, scale=lambda gl, rl: rl),
        "the gap per character is multiplied by the rival's length; it is the gold choice's "
        "log-likelihood that changes, so multiply by the gold choice's length.",
    ),
    Mistake(
        lambda lls, cs, g: _margin(lls, cs, g, lambda c: len(c) + 1),
        "the length counts the leading space of the continuation; the harness divides by the "
        "length of the choice text itself.",
    ),
]


def check_norm_margin(fn: Callable[..., float]) -> Check:
    """Check ``fn(loglikelihoods, choices, gold) -> float``: the nats the gold choice must gain to
    draw level under acc_norm, 0.0 when it is level or ahead."""
    cases = {
        "a short rival ahead per character": ([-12.0, -3.0], ["a very long answer", "short"], 0),
        "the gold answer already ahead": ([-5.0, -6.0], ["a long reply", "no"], 0),
        "non-ASCII gold: characters, not bytes": ([-10.0, -9.0], ["ééééé", "abcde"], 0),
        "the likeliest rival is not the best per character": (
            [-6.0, -4.0, -12.0],
            ["abcdef", "ab", "abcdefghi"],
            2,
        ),
        "the gold answer between two rivals": (
            [-8.0, -40.0, -3.0],
            ["eight", "a much longer gold answer", "no"],
            1,
        ),
    }
    return check_function(
        fn,
        norm_margin_reference,
        cases,
        NORM_MARGIN_ARGS,
        mistakes=NORM_MARGIN_MISTAKES,
        atol=1e-9,
        rtol=1e-9,
    )


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
