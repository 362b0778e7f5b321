"""The Chatbot Arena chapter's checkers: one Elo update, and the two-model Bradley–Terry gap."""

from __future__ import annotations

import math

import pytest

from demos.exercises.chatbot_arena import check_elo_update, check_two_model_gap


def elo_update(r_a, r_b, score_a, k):  # written here, in another form: logistic in ln(10)/400
    e_a = 1.0 / (1.0 + math.exp(math.log(10.0) * (r_b - r_a) / 400.0))
    return r_a + k * (score_a - e_a), r_b - k * (score_a - e_a)


def two_model_gap(wins_a, wins_b, ties):  # written here as a difference of logs
    return 400.0 * (math.log10(2 * wins_a + ties) - math.log10(2 * wins_b + ties))


def my_elo_update(r_a, r_b, score_a, k):  # the chapter's stubs, untouched
    # your code here: return (new_r_a, new_r_b)
    return None


def my_two_model_gap(wins_a, wins_b, ties):
    # your code here: return R_a - R_b in Elo points
    return None


def test_right_answers_pass():
    for checker, answer in ((check_elo_update, elo_update), (check_two_model_gap, two_model_gap)):
        result = checker(answer)
        assert result.ok, result.message


def test_the_stub_is_not_attempted_yet():
    for checker, stub in (
        (check_elo_update, my_elo_update),
        (check_two_model_gap, my_two_model_gap),
    ):
        result = checker(stub)
        assert not result.ok and not result.attempted, result
        assert str(result).startswith("✏️ Not attempted yet.") and "still the template" in str(
            result
        )


ELO_WRONG = {
    "base e": (
        lambda a, b, s, k: elo_update(a * math.log(10), b * math.log(10), s, k),
        ["new_r_a"],
    ),
    "same direction": (
        lambda a, b, s, k: (elo_update(a, b, s, k)[0], 2 * b - elo_update(a, b, s, k)[1]),
        ["zero-sum"],
    ),
    "model b's expected score": (
        lambda a, b, s, k: elo_update(a, b, s - 1.0 + 2.0 / (1.0 + 10 ** ((b - a) / 400)), k),
        ["model b's expected score"],
    ),
    "tie as a loss": (
        lambda a, b, s, k: elo_update(a, b, 0.0 if s == 0.5 else s, k),
        ["half a win"],
    ),
    "returns one number": (lambda a, b, s, k: elo_update(a, b, s, k)[0], ["tuple of 2"]),
}


@pytest.mark.parametrize("answer, words", ELO_WRONG.values(), ids=list(ELO_WRONG))
def test_elo_update_checker_explains_wrong_answers(explain, answer, words):
    explain(check_elo_update, answer, words)


GAP_WRONG = {
    "ties dropped": (lambda w, lo, t: 400 * math.log10(w / lo), ["ties were dropped"]),
    "natural log": (lambda w, lo, t: 400 * math.log((2 * w + t) / (2 * lo + t)), ["base 10"]),
    "win-rate difference": (lambda w, lo, t: 400 * (w - lo) / (w + lo + t), ["observed odds"]),
    "sign flipped": (lambda w, lo, t: -two_model_gap(w, lo, t), ["expected"]),
}


@pytest.mark.parametrize("answer, words", GAP_WRONG.values(), ids=list(GAP_WRONG))
def test_two_model_gap_checker_explains_wrong_answers(explain, answer, words):
    explain(check_two_model_gap, answer, words)


@pytest.mark.parametrize("checker", [check_elo_update, check_two_model_gap])
def test_checkers_explain_any_wrong_answer(explain, any_wrong_answer, checker):
    answer, words = any_wrong_answer
    if words == ["got a list"] and checker is check_elo_update:  # two numbers: read as the pair
        words = ["new_r_a: expected"]
    explain(checker, answer, words)
