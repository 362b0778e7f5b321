"""The Zephyr chapter's checkers: the DPO loss and ORPO's log-odds."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from demos.exercises.zephyr import check_dpo_loss, check_log_odds


def softplus_form(lw, ll, rw, rl, beta):  # -log sigma(x) = softplus(-x)
    return F.softplus(-beta * ((lw - ll) - (rw - rl)))


def logaddexp_form(lw, ll, rw, rl, beta):  # -log sigma(x) = log(1 + e^-x)
    x = beta * ((lw - rw) - (ll - rl))
    return torch.logaddexp(torch.zeros_like(x), -x)


def margin(lw, ll, rw, rl):
    return (lw - rw) - (ll - rl)


def in_place(lw, ll, rw, rl, beta):  # right values, but chosen_logps is overwritten
    return F.softplus(-beta * lw.sub_(rw).sub_(ll - rl))


@pytest.mark.parametrize(
    "answer",
    [
        softplus_form,
        logaddexp_form,
        lambda *a: softplus_form(*(x.double() if torch.is_tensor(x) else x for x in a)),
        lambda *a: softplus_form(*a).half(),
        lambda *a: softplus_form(*a).bfloat16(),
    ],
    ids=["softplus", "logaddexp", "float64", "float16", "bfloat16"],
)
def test_dpo_loss_checker_accepts_right_answers(answer):
    result = check_dpo_loss(answer)
    assert result.ok, result.message


DPO_WRONG = {
    "no reference model": (
        lambda lw, ll, rw, rl, b: F.softplus(-b * (lw - ll)),
        ["reference model was left out"],
    ),
    "swapped": (lambda lw, ll, rw, rl, b: F.softplus(b * margin(lw, ll, rw, rl)), ["swapped"]),
    "no log": (
        lambda lw, ll, rw, rl, b: -torch.sigmoid(b * margin(lw, ll, rw, rl)),
        ["-sigma(beta h)"],
    ),
    "no beta": (lambda lw, ll, rw, rl, b: F.softplus(-margin(lw, ll, rw, rl)), ["beta is missing"]),
    "log of sigmoid": (
        lambda lw, ll, rw, rl, b: -torch.log(torch.sigmoid(b * margin(lw, ll, rw, rl))),
        ["logsigmoid", "inf"],
    ),
    "mean over the batch": (
        lambda *a: softplus_form(*a).mean(),
        ["shape ()", "mean over the batch"],
    ),
    "mean of the policy margin": (lambda lw, ll, rw, rl, b: (-(lw - ll)).mean(), ["shape ()"]),
    "sum over the batch": (lambda *a: softplus_form(*a).sum(), ["shape (), expected (6,)"]),
    "(losses, rewards)": (lambda *a: (softplus_form(*a), a[0]), ["got a tuple of 2 items"]),
    "NaN": (lambda *a: softplus_form(*a) * float("nan"), ["NaN"]),
    "integer dtype": (lambda *a: softplus_form(*a).long(), ["int64", "floating-point"]),
    "modifies chosen_logps": (in_place, ["modified its input chosen_logps", "result is right"]),
    "float16 throughout": (
        lambda *a: softplus_form(*(x.half() if torch.is_tensor(x) else x for x in a)) + 1e-2,
        ["float16", "tolerance"],
    ),
}


@pytest.mark.parametrize("answer, words", DPO_WRONG.values(), ids=list(DPO_WRONG))
def test_dpo_loss_checker_explains_wrong_answers(explain, answer, words):
    explain(check_dpo_loss, answer, words)


def test_dpo_loss_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_dpo_loss, *any_wrong_answer)


def log_odds(logp):  # written here: log P - log(1 - P), with expm1 near 0 and log1p far from it
    near_zero = logp > -0.5
    log_1mp = torch.where(near_zero, torch.log(-torch.expm1(logp)), torch.log1p(-torch.exp(logp)))
    return logp - log_1mp


@pytest.mark.parametrize(
    "answer",
    [
        log_odds,
        lambda logp: log_odds(logp.double()),
        lambda logp: log_odds(logp).half(),
        lambda logp: log_odds(logp).bfloat16(),
    ],
    ids=["float32", "float64", "float16", "bfloat16"],
)
def test_log_odds_checker_accepts_right_answers(answer):
    result = check_log_odds(answer)
    assert result.ok, result.message


LOG_ODDS_WRONG = {
    "naive log(1 - exp)": (lambda logp: logp - torch.log(1 - torch.exp(logp)), ["expm1"]),
    "log1p everywhere": (lambda logp: logp - torch.log1p(-torch.exp(logp)), ["expm1"]),
    "odds, not log-odds": (lambda logp: logp.exp() / (1 - logp.exp()), ["take its logarithm"]),
    "log P only": (lambda logp: logp.clone(), ["also subtract"]),
    "NaN": (lambda logp: log_odds(logp) * float("nan"), ["NaN"]),
    "a scalar": (lambda logp: log_odds(logp).sum(), ["shape ()"]),
    "modifies logp": (
        lambda logp: logp.sub_(torch.log(-torch.expm1(logp))),
        ["modified its input logp"],
    ),
}


@pytest.mark.parametrize("answer, words", LOG_ODDS_WRONG.values(), ids=list(LOG_ODDS_WRONG))
def test_log_odds_checker_explains_wrong_answers(explain, answer, words):
    explain(check_log_odds, answer, words)


def test_log_odds_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_log_odds, *any_wrong_answer)
