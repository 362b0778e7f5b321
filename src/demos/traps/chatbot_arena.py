"""Chatbot Arena's trap: online Elo read as if it were the Bradley–Terry rating.

Both put models on the same Elo scale, and on a long log they rank alike, so it is tempting to
run the cheap online update and call the result the Arena's rating. Against the reference (the
maximum-likelihood fit that scikit-learn's unregularised logistic regression computes) the Elo
numbers are off by points, and by more when the order of the battles changes.
"""

from __future__ import annotations

from demos.traps import Measured, Trap

STRENGTHS = {"ant": 1250.0, "bee": 1120.0, "cat": 1060.0, "dog": 1000.0, "eel": 930.0, "fox": 790.0}


def _errors() -> Measured:
    from demos.eval.arena import bradley_terry, bradley_terry_sklearn, online_elo, simulate_battles

    battles = simulate_battles(STRENGTHS, 4000, tie_rate=0.3, seed=0)
    reference = bradley_terry_sklearn(battles)
    right = bradley_terry(battles)
    wrong = online_elo(battles)  # K = 4, the votes in the order they came
    wrong_mean = sum(wrong.values()) / len(wrong)  # put Elo on the reference's centre (1000)
    return Measured(
        right_error=max(abs(right[m] - reference[m]) for m in reference),
        wrong_error=max(abs(wrong[m] - wrong_mean + 1000.0 - reference[m]) for m in reference),
        tolerance=1e-4,
        quantity="ratings (Elo points) of 6 models from 4,000 simulated battles, against "
        "scikit-learn 1.9.1's unregularised LogisticRegression",
    )


TRAPS = [
    Trap(
        chapter="chatbot_arena",
        title="Online Elo taken for the Bradley-Terry rating",
        wrong="ratings = online_elo(battles)  # K = 4, in the order the votes came",
        right="ratings = bradley_terry(battles)  # all votes at once, by maximum likelihood",
        shows="every model's rating, and more so when the battles are reordered",
        measure=_errors,
    )
]
