"""Checkers for the Chatbot Arena chapter's exercises: one Elo update, and the Bradley–Terry gap
between two models in closed form."""

from __future__ import annotations

from collections.abc import Callable

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded


def check_elo_update(fn: Callable[[float, float, float, float], tuple[float, float]]) -> Check:
    """Check ``elo_update(r_a, r_b, score_a, k) -> (new_r_a, new_r_b)``: Elo with scale 400, base 10;
    ``score_a`` is 1 (a wins), 0 (b wins) or 0.5 (a tie)."""
    return check_recorded(
        fn,
        recorded(__name__, "check_elo_update"),
        ("r_a", "r_b", "score_a", "k"),
        atol=1e-9,
        names=("new_r_a", "new_r_b"),
    )


def check_two_model_gap(fn: Callable[[int, int, int], float]) -> Check:
    """Check ``two_model_gap(wins_a, wins_b, ties) -> R_a - R_b``: the Bradley–Terry maximum
    likelihood on the Elo scale when only two models have met, a tie half a win for each."""
    return check_recorded(
        fn, recorded(__name__, "check_two_model_gap"), ("wins_a", "wins_b", "ties"), atol=1e-9
    )
