"""The ChatGPT chapter's checkers: right answers in other forms pass, each named mistake is explained."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from demos.exercises.chatgpt import check_baseline_advantages, check_k3, check_ranking_loss


def ranking_loop(rewards):  # written here: every pair i < j, averaged
    k = rewards.shape[1]
    terms = [F.softplus(rewards[:, j] - rewards[:, i]) for i in range(k) for j in range(i + 1, k)]
    return torch.stack(terms, -1).mean(-1)


def my_ranking_loss(rewards):
    # your code here: return a (b,) tensor
    return torch.zeros(rewards.shape[0])


@pytest.mark.parametrize("answer", [ranking_loop, lambda r: ranking_loop(r.double())],
                         ids=["float32", "float64"])  # fmt: skip
def test_ranking_checker_accepts_right_answers(answer):
    result = check_ranking_loss(answer)
    assert result.ok, result.message


RANKING_WRONG = {
    "the stub": (my_ranking_loss, ["still the template"]),
    "adjacent only": (lambda r: F.softplus(r[:, 1:] - r[:, :-1]).mean(-1), ["neighbouring ranks"]),
    "reversed": (lambda r: ranking_loop(r.flip(-1)), ["order is reversed"]),
    "summed": (lambda r: ranking_loop(r) * (r.shape[1] * (r.shape[1] - 1) / 2), ["sum over pairs"]),
    "mean over batch": (lambda r: ranking_loop(r).mean(), ["mean over the batch"]),
    "log of sigmoid": (
        lambda r: torch.stack(
            [
                -torch.log(torch.sigmoid(r[:, i] - r[:, j]))
                for i in range(r.shape[1])
                for j in range(i + 1, r.shape[1])
            ],
            -1,
        ).mean(-1),
        ["logsigmoid"],
    ),  # fmt: skip
    "NaN": (lambda r: ranking_loop(r) * float("nan"), ["NaN"]),
    "wrong shape": (lambda r: ranking_loop(r).unsqueeze(-1), ["shape"]),
    "sign flipped": (lambda r: -ranking_loop(r), ["sign is flipped"]),
    "every ordered pair": (
        lambda r: torch.stack(
            [
                F.softplus(r[:, j] - r[:, i])
                for i in range(r.shape[1])
                for j in range(r.shape[1])
                if i != j
            ],
            -1,
        ).mean(-1),
        ["every ordered pair"],
    ),  # fmt: skip
}


@pytest.mark.parametrize("answer, words", RANKING_WRONG.values(), ids=list(RANKING_WRONG))
def test_ranking_checker_explains_wrong_answers(explain, answer, words):
    explain(check_ranking_loss, answer, words)


def test_ranking_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_ranking_loss, *any_wrong_answer)


def k3_written_here(logps, ref_logps):
    log_rho = ref_logps - logps
    return torch.expm1(log_rho) - log_rho


@pytest.mark.parametrize("answer", [k3_written_here, lambda a, b: k3_written_here(a.double(), b.double())],
                         ids=["float32", "float64"])  # fmt: skip
def test_k3_checker_accepts_right_answers(answer):
    result = check_k3(answer)
    assert result.ok, result.message


K3_WRONG = {
    "k1": (lambda lp, ref: lp - ref, ["k1"]),
    "upside down": (lambda lp, ref: k3_written_here(ref, lp), ["upside down"]),
    "no -1": (lambda lp, ref: torch.exp(ref - lp) - (ref - lp), ["-1 is missing"]),
    "k2": (lambda lp, ref: 0.5 * (lp - ref) ** 2, ["k2"]),
    "NaN": (lambda lp, ref: k3_written_here(lp, ref) * float("nan"), ["NaN"]),
    "a scalar": (lambda lp, ref: k3_written_here(lp, ref).mean(), ["shape ()"]),
    "in place": (lambda lp, ref: ref.sub_(lp).expm1() - (ref - 0), ["modified its input"]),
    "log term added": (lambda lp, ref: torch.exp(ref - lp) + (ref - lp) - 1, ["subtracts log rho"]),
}


@pytest.mark.parametrize("answer, words", K3_WRONG.values(), ids=list(K3_WRONG))
def test_k3_checker_explains_wrong_answers(explain, answer, words):
    explain(check_k3, answer, words)


def test_k3_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_k3, *any_wrong_answer)


def returns_loop(rewards, values, mask, gamma):  # written here: a backward running sum
    out, running = torch.zeros_like(rewards), torch.zeros(rewards.shape[0])
    for t in reversed(range(rewards.shape[1])):
        running = rewards[:, t] * mask[:, t] + gamma * running
        out[:, t] = running
    return (out - values) * mask


def test_baseline_checker_accepts_right_answers():
    from demos.training.ppo import gae_advantages

    for answer in (returns_loop, lambda r, v, m, g: gae_advantages(r, v, m, g, lam=1.0)[0]):
        result = check_baseline_advantages(answer)
        assert result.ok, result.message


BASELINE_WRONG = {
    "no baseline": (lambda r, v, m, g: returns_loop(r, torch.zeros_like(v), m, g), ["baseline is missing"]),
    "no discount": (lambda r, v, m, g: returns_loop(r, v, m, 1.0), ["gamma is not applied"]),
    "forward cumsum": (lambda r, v, m, g: (torch.cumsum(r * m, -1) - v) * m, ["forward cumsum"]),
    "padding kept": (lambda r, v, m, g: returns_loop(r, v, torch.ones_like(m), g), ["padding is not masked"]),
    "result not masked": (lambda r, v, m, g: returns_loop(r * m, v, torch.ones_like(m), g), ["not zeroed"]),
    "padding rewards summed": (
        lambda r, v, m, g: returns_loop(r, v, torch.ones_like(m), g) * m, ["rewards on padding are summed"]
    ),
    "sign flipped": (lambda r, v, m, g: -returns_loop(r, v, m, g), ["sign is flipped"]),
    "return from t + 1": (lambda r, v, m, g: returns_loop(r, v, m, g) - r * m, ["one token late"]),
    "NaN": (lambda r, v, m, g: returns_loop(r, v, m, g) * float("nan"), ["NaN"]),
    "per answer": (lambda r, v, m, g: returns_loop(r, v, m, g)[:, 0], ["shape"]),
}  # fmt: skip


@pytest.mark.parametrize("answer, words", BASELINE_WRONG.values(), ids=list(BASELINE_WRONG))
def test_baseline_checker_explains_wrong_answers(explain, answer, words):
    explain(check_baseline_advantages, answer, words)


def test_baseline_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_baseline_advantages, *any_wrong_answer)


def test_k3_reference_equals_trl_grpo_kl_term():
    """The docstring's claim: k3 is the KL term GRPOTrainer adds to its loss. With zero advantages
    the clipped term vanishes and TRL's bnpo loss is beta times the mean of k3 over real tokens."""
    from exercise_references.chatgpt import k3_reference

    from demos.training.ppo import masked_mean
    from demos.training.trl_reference import trl_clipped_surrogate_loss

    gen = torch.Generator().manual_seed(1)
    logps = -torch.rand(4, 6, generator=gen) * 3
    ref = logps + torch.randn(4, 6, generator=gen)  # log-ratios of about 1: k3 far from 0
    mask = torch.ones(4, 6)
    mask[1, 4:] = 0  # one padded answer
    ours_in, trl_in = logps.clone().requires_grad_(), logps.clone().requires_grad_()
    ours = 0.5 * masked_mean(k3_reference(ours_in, ref), mask)
    theirs = trl_clipped_surrogate_loss(
        trl_in, logps.clone(), torch.zeros(4, 6), mask, beta=0.5, ref_logps=ref
    )
    ours.backward(), theirs.backward()
    assert ours.item() > 0.05  # the term is on
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ours_in.grad, trl_in.grad, atol=1e-6, rtol=1e-6)
