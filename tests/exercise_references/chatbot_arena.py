"""References and known mistakes for the Chatbot Arena chapter's exercises: one Elo update, and the Bradley–Terry gap
between two models in closed form."""

from __future__ import annotations

import math
from collections.abc import Callable

from demos.exercises.core import Check, Mistake, check_function


def _expected(r_a: float, r_b: float, base: float = 10.0) -> float:
    return 1.0 / (1.0 + base ** ((r_b - r_a) / 400.0))


def elo_update(r_a: float, r_b: float, score_a: float, k: float) -> tuple[float, float]:
    """The reference: one Elo step, scale 400 and base 10, zero-sum."""
    delta = k * (score_a - _expected(r_a, r_b))
    return r_a + delta, r_b - delta


def _natural_base(r_a, r_b, score_a, k):
    delta = k * (score_a - _expected(r_a, r_b, base=math.e))
    return r_a + delta, r_b - delta


def _same_direction(r_a, r_b, score_a, k):
    delta = k * (score_a - _expected(r_a, r_b))
    return r_a + delta, r_b + delta


def _expected_of_b(r_a, r_b, score_a, k):
    delta = k * (score_a - _expected(r_b, r_a))
    return r_a + delta, r_b - delta


def _tie_as_loss(r_a, r_b, score_a, k):
    return elo_update(r_a, r_b, 0.0 if score_a == 0.5 else score_a, k)


def check_elo_update(fn: Callable[[float, float, float, float], tuple[float, float]]) -> Check:
    """Check ``elo_update(r_a, r_b, score_a, k) -> (new_r_a, new_r_b)``: Elo with scale 400, base 10;
    ``score_a`` is 1 (a wins), 0 (b wins) or 0.5 (a tie)."""
    cases = {
        "equal ratings, a wins": (1000.0, 1000.0, 1.0, 4.0),
        "the favourite loses": (1100.0, 1000.0, 0.0, 4.0),
        "a tie, K = 32": (1200.0, 1000.0, 0.5, 32.0),
        "the underdog wins, K = 16": (1000.0, 1300.0, 1.0, 16.0),
    }
    mistakes = [
        Mistake(_natural_base, "the expected score uses e^(gap / 400); the Elo scale is base 10."),
        Mistake(
            _same_direction,
            "both ratings moved the same way: what model a gains, model b loses (zero-sum).",
        ),
        Mistake(
            _expected_of_b,
            "that is model b's expected score: E_a = 1 / (1 + 10^((R_b - R_a) / 400)), near 1 "
            "when a is rated higher.",
        ),
        Mistake(_tie_as_loss, "a tie was scored as a loss: it counts half a win (score 0.5)."),
    ]
    return check_function(
        fn,
        elo_update,
        cases,
        ("r_a", "r_b", "score_a", "k"),
        mistakes=mistakes,
        atol=1e-9,
        names=("new_r_a", "new_r_b"),
    )


def two_model_gap(wins_a: int, wins_b: int, ties: int) -> float:
    """The reference: the maximum-likelihood gap R_a - R_b (Elo points) from one pair's record."""
    return 400.0 * math.log10((wins_a + ties / 2) / (wins_b + ties / 2))


def _ties_dropped(wins_a, wins_b, ties):
    return 400.0 * math.log10(wins_a / wins_b)


def _natural_log(wins_a, wins_b, ties):
    return 400.0 * math.log((wins_a + ties / 2) / (wins_b + ties / 2))


def _win_rate_gap(wins_a, wins_b, ties):
    n = wins_a + wins_b + ties
    return 400.0 * ((wins_a + ties / 2) - (wins_b + ties / 2)) / n


def check_two_model_gap(fn: Callable[[int, int, int], float]) -> Check:
    """Check ``two_model_gap(wins_a, wins_b, ties) -> R_a - R_b``: the Bradley–Terry maximum
    likelihood on the Elo scale when only two models have met, a tie half a win for each."""
    cases = {
        "3 wins to 1": (3, 1, 0),
        "even record with ties": (5, 5, 4),
        "b ahead, some ties": (20, 60, 20),
        "1,000 battles, 100 ties": (550, 350, 100),
    }
    mistakes = [
        Mistake(_ties_dropped, "the ties were dropped; each counts half a win for both sides."),
        Mistake(_natural_log, "ln was used; the Elo scale's odds are base 10: 400 log10(odds)."),
        Mistake(
            _win_rate_gap,
            "the gap was made proportional to the difference in win rates; the likelihood is "
            "maximal where the predicted odds equal the observed odds.",
        ),
    ]
    return check_function(
        fn,
        two_model_gap,
        cases,
        ("wins_a", "wins_b", "ties"),
        mistakes=mistakes,
        atol=1e-9,
    )
