"""References and known mistakes for the HellaSwag chapter: the acc_norm prediction, and mutual-information scoring."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from demos.eval.metrics import multiple_choice_scores
from demos.exercises.core import Check, Mistake, check_function


def _argmax(values):
    return max(range(len(values)), key=lambda i: (values[i], -i))


def pred_norm_reference(loglikelihoods: Sequence[float], endings: Sequence[str]) -> int:
    """The ending acc_norm picks: argmax of log-likelihood per character, first on a tie."""
    return multiple_choice_scores(loglikelihoods, endings, 0).pred_norm


PRED_NORM_MISTAKES = [
    Mistake(lambda lls, es: _argmax(lls), "this is acc's pick: divide by each ending's length."),
    Mistake(
        lambda lls, es: _argmax([ll / len(e.split()) for ll, e in zip(lls, es, strict=True)]),
        "this divides by words; the harness divides by characters (len(ending)).",
    ),
    Mistake(
        lambda lls, es: min(range(len(lls)), key=lambda i: lls[i] / len(es[i])),
        "this takes the smallest normalised score; log-likelihoods are negative, the best is "
        "the largest (closest to 0).",
    ),
]


def check_pred_norm(fn: Callable[[Sequence[float], Sequence[str]], int]) -> Check:
    """Check ``fn(loglikelihoods, endings) -> int``, the index acc_norm picks."""
    cases = {
        "long right ending": (
            [-12.0, -14.0, -30.0, -9.0],
            ["eats it.", "flies away.", "pours the tea into two cups and sits down.", "sings."],
        ),
        "words of different length": (
            [-20.0, -21.0],
            ["extraordinarily unbelievable", "a b c d e f g h i j k"],
        ),
        "a tie goes first": ([-6.0, -2.0, -4.0], ["abc", "ab", "abcd"]),
    }
    return check_function(
        fn, pred_norm_reference, cases, ("loglikelihoods", "endings"), mistakes=PRED_NORM_MISTAKES
    )


def pred_mutual_info_reference(conditional: Sequence[float], unconditional: Sequence[float]) -> int:
    """The harness's ``acc_mutual_info`` pick: argmax of log P(ending | context) - log P(ending)."""
    return _argmax([c - u for c, u in zip(conditional, unconditional, strict=True)])


MUTUAL_INFO_MISTAKES = [
    Mistake(lambda c, u: _argmax(c), "this ignores the unconditional log-likelihoods."),
    Mistake(
        lambda c, u: _argmax([a + b for a, b in zip(c, u, strict=True)]),
        "subtract log P(ending): the score is how much the context raises the ending's "
        "probability, log P(ending | context) - log P(ending).",
    ),
    Mistake(
        lambda c, u: _argmax([b - a for a, b in zip(c, u, strict=True)]),
        "the difference is the wrong way round: conditional minus unconditional.",
    ),
]


def check_mutual_info(fn: Callable[[Sequence[float], Sequence[float]], int]) -> Check:
    """Check ``fn(conditional, unconditional) -> int``, the acc_mutual_info pick."""
    cases = {
        "a common ending loses": ([-5.0, -6.0, -9.0], [-3.0, -10.0, -12.0]),
        "context helps the second": ([-8.0, -7.0], [-8.5, -9.0]),
        "the second is likely anyway": ([-5.0, -6.0], [-9.0, -2.0]),
        "four endings": ([-11.0, -10.0, -12.0, -13.0], [-10.0, -9.5, -10.0, -13.5]),
    }
    return check_function(
        fn,
        pred_mutual_info_reference,
        cases,
        ("conditional", "unconditional"),
        mistakes=MUTUAL_INFO_MISTAKES,
    )
