"""The Zephyr chapter's checkers: the DPO loss and ORPO's log-odds."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from demos.exercises.zephyr import (
    check_active_parameters,
    check_apo_zero_loss,
    check_dpo_loss,
    check_log_odds,
)


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


# ---------------------------------------------------------------------------- active parameters


def active_parameters(total, num_local_experts, per_expert, num_hidden_layers, top_k):
    idle = num_local_experts - top_k  # experts per layer this token does not use
    return total - idle * per_expert * num_hidden_layers


def my_active_parameters(total, num_local_experts, per_expert, num_hidden_layers, top_k):
    # your code here: return an int
    return total


def test_active_parameters_checker_accepts_the_answer():
    assert check_active_parameters(active_parameters).ok


def test_active_parameters_reference_matches_the_meta_device_count():
    """The reference's formula against moe_parameter_counts on tiny Mixtrals, for every top-k."""
    from exercise_references.zephyr import active_parameters_reference
    from transformers import MixtralConfig

    from demos.layers.moe import moe_parameter_counts

    base = dict(
        vocab_size=50,
        hidden_size=16,
        intermediate_size=24,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=4,
    )
    for k in (1, 2, 4):
        counts = moe_parameter_counts(MixtralConfig(**base, num_experts_per_tok=k))
        args = (counts.total, counts.experts, counts.per_expert, counts.layers, k)
        assert active_parameters_reference(*args) == counts.active


ACTIVE_WRONG = {
    "the stub": (my_active_parameters, ["still the template", "total = 10,000"]),
    "experts only": (lambda t, e, p, L, k: k * p * L, ["shared parameters"]),
    "whole model scaled": (lambda t, e, p, L, k: t * k // e, ["scales the whole model"]),
    "one layer": (lambda t, e, p, L, k: t - (e - k) * p, ["every layer has its own experts"]),
}


@pytest.mark.parametrize("answer, words", ACTIVE_WRONG.values(), ids=list(ACTIVE_WRONG))
def test_active_parameters_checker_explains_wrong_answers(explain, answer, words):
    explain(check_active_parameters, answer, words)


# ---------------------------------------------------------------------------- APO-zero (transfer)


def apo_zero(chosen_logps, rejected_logps, ref_chosen_logps, ref_rejected_logps, beta):
    chosen_reward = beta * (chosen_logps - ref_chosen_logps)
    rejected_reward = beta * (rejected_logps - ref_rejected_logps)
    return torch.sigmoid(-chosen_reward) + torch.sigmoid(rejected_reward)  # 1 - s(x) = s(-x)


def my_apo_zero_loss(chosen_logps, rejected_logps, ref_chosen_logps, ref_rejected_logps, beta):
    # your code here: return a (b,) tensor
    return torch.zeros_like(chosen_logps)


def test_apo_zero_checker_accepts_the_answer():
    result = check_apo_zero_loss(apo_zero)
    assert result.ok, result.message


def test_apo_zero_reference_matches_trl_dpotrainer():
    """The checker's reference, on log-probs of TRL's own batch, equals trl.DPOTrainer's loss for
    loss_type="apo_zero" (trl==1.16.0), so the exercise asks for what TRL computes."""
    from exercise_references.zephyr import apo_zero_loss_reference

    from demos.training.preference import sequence_logps
    from demos.training.trl_reference import trl_dpo_loss_on_one_batch
    from helpers import tiny_llama

    policy, reference = tiny_llama(2), tiny_llama(2)
    beta = 0.5
    trl_loss, batch = trl_dpo_loss_on_one_batch(policy, reference, "apo_zero", beta)
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    with torch.no_grad():
        logps = sequence_logps(policy(batch["input_ids"]).logits, labels)
        ref_logps = sequence_logps(reference(batch["input_ids"]).logits, labels)
    ours = apo_zero_loss_reference(*logps.chunk(2), *ref_logps.chunk(2), beta).mean()
    assert trl_loss.item() != pytest.approx(1.0)  # not the value at policy == reference
    assert abs(ours.item() - trl_loss.item()) <= 1e-6, (ours.item(), trl_loss.item())


APO_WRONG = {
    "the stub": (my_apo_zero_loss, ["still the template", "chosen_logps of shape (5,)"]),
    "the margin, as DPO": (
        lambda lw, ll, rw, rl, beta: torch.sigmoid(-beta * ((lw - rw) - (ll - rl))),
        ["scores the margin h"],
    ),
    "DPO's loss": (
        lambda lw, ll, rw, rl, beta: -F.logsigmoid(beta * ((lw - rw) - (ll - rl))),
        ["this is DPO's sigmoid loss"],
    ),
    "swapped": (lambda lw, ll, rw, rl, beta: apo_zero(ll, lw, rl, rw, beta), ["swapped"]),
    "no reference": (
        lambda lw, ll, rw, rl, beta: apo_zero(lw, ll, 0 * rw, 0 * rl, beta),
        ["reference model was left out"],
    ),
    "no beta": (lambda lw, ll, rw, rl, beta: apo_zero(lw, ll, rw, rl, 1.0), ["beta is missing"]),
}


@pytest.mark.parametrize("answer, words", APO_WRONG.values(), ids=list(APO_WRONG))
def test_apo_zero_checker_explains_wrong_answers(explain, answer, words):
    explain(check_apo_zero_loss, answer, words)


def test_apo_zero_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_apo_zero_loss, *any_wrong_answer)
