"""PPO's pieces: the clipped surrogate against TRL's GRPO term and hand-derived cases, the KL-penalised
rewards, GAE against its closed forms."""

from __future__ import annotations

import pytest
import torch
from exercise_references.chatgpt import baseline_advantages_reference, k3_reference

from demos.training.ppo import clipped_surrogate, gae_advantages, kl_penalised_rewards, masked_mean
from demos.traps.chatgpt import surrogate_case


@pytest.mark.parametrize("epsilon", [0.1, 0.2, 0.3])
@pytest.mark.parametrize("per_answer", [False, True], ids=["per-token A", "per-answer A"])
def test_clipped_surrogate_matches_trl_grpo_term(epsilon, per_answer):
    from demos.training.trl_reference import trl_clipped_surrogate_loss

    logps, old, advantages, mask = surrogate_case()
    if per_answer:
        advantages = advantages[:, :1]  # GRPO's own shape: one advantage per answer, (b, 1)
    ratio = torch.exp(logps - old)
    # the case reaches every branch: inside, above and below the clip range, both signs of A
    a = advantages.expand_as(ratio)
    for region in (ratio > 1 + epsilon, ratio < 1 - epsilon, (ratio - 1).abs() < epsilon):
        assert (region & (a > 0)).any() and (region & (a < 0)).any()
    ours_in, trl_in = logps.clone().requires_grad_(), logps.clone().requires_grad_()
    ours = masked_mean(clipped_surrogate(ours_in, old, advantages, epsilon), mask)
    ref = trl_clipped_surrogate_loss(trl_in, old, advantages.squeeze(-1) if per_answer else advantages,
                                     mask, epsilon)  # fmt: skip
    torch.testing.assert_close(ours, ref, atol=1e-7, rtol=0)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours_in.grad, trl_in.grad, atol=1e-7, rtol=0)


def test_trl_kl_term_is_k3():
    """With zero advantages, GRPO's loss is beta times the mean k3 estimate (exercise 2's answer)."""
    from demos.training.trl_reference import trl_clipped_surrogate_loss

    logps, _, _, mask = surrogate_case()
    ref_logps = logps + torch.randn_like(logps) * 0.5
    trl = trl_clipped_surrogate_loss(
        logps, logps, torch.zeros_like(logps), mask, 0.2, 0.3, ref_logps
    )
    torch.testing.assert_close(trl, 0.3 * masked_mean(k3_reference(logps, ref_logps), mask))


@pytest.mark.parametrize(
    "ratio, advantage, expected_loss, moves",
    [
        (1.0, 2.0, -2.0, True),  # on-policy: -A, and the gradient is -A
        (1.1, 2.0, -2.2, True),  # inside the range: unclipped
        (1.5, 2.0, -2.4, False),  # A > 0, ratio above 1 + eps: clipped at 1.2, no gradient
        (0.5, 2.0, -1.0, True),  # A > 0, ratio below 1 - eps: the unclipped term is the smaller
        (0.5, -2.0, 1.6, False),  # A < 0, ratio below 1 - eps: clipped at 0.8, no gradient
        (1.5, -2.0, 3.0, True),  # A < 0, ratio above 1 + eps: unclipped, pessimistic
    ],
)
def test_clipped_surrogate_hand_cases(ratio, advantage, expected_loss, moves):
    old = torch.tensor([[-1.0]])
    logps = (old + torch.log(torch.tensor(ratio))).requires_grad_()
    loss = clipped_surrogate(logps, old, torch.tensor([[advantage]]), 0.2)
    assert loss.item() == pytest.approx(expected_loss, abs=1e-6)
    loss.sum().backward()
    assert (logps.grad.abs().item() > 0) == moves


def test_kl_penalty_is_zero_when_policy_is_reference():
    logps = -torch.rand(3, 4)
    mask = torch.tensor([[1.0, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    score = torch.tensor([0.5, -1.0, 2.0])
    rewards = kl_penalised_rewards(logps, logps.clone(), score, mask, beta=0.7)
    expected = torch.zeros(3, 4)
    expected[0, 3], expected[1, 1], expected[2, 0] = 0.5, -1.0, 2.0  # the score on the last token
    torch.testing.assert_close(rewards, expected)


def test_kl_penalised_rewards_sum_to_eq2_of_instructgpt():
    """Row sum: score - beta * log(pi(y) / pi_ref(y)), the sequence-level objective."""
    logps, ref = -torch.rand(2, 5) * 3, -torch.rand(2, 5) * 3
    mask = torch.tensor([[1.0, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    score = torch.tensor([1.5, -0.5])
    rewards = kl_penalised_rewards(logps, ref, score, mask, beta=0.2)
    torch.testing.assert_close(rewards.sum(-1), score - 0.2 * ((logps - ref) * mask).sum(-1))
    assert (rewards[mask == 0] == 0).all()


def test_gae_closed_forms():
    gen = torch.Generator().manual_seed(0)
    rewards, values = torch.randn(3, 6, generator=gen), torch.randn(3, 6, generator=gen)
    mask = (torch.arange(6) < torch.tensor([[6], [4], [1]])).float()
    rewards = rewards * mask
    for gamma in (1.0, 0.9):
        a, returns = gae_advantages(rewards, values, mask, gamma, lam=1.0)
        torch.testing.assert_close(a, baseline_advantages_reference(rewards, values, mask, gamma))
        torch.testing.assert_close(returns, (a + values) * mask)
        a0, _ = gae_advantages(rewards, values, mask, gamma, lam=0.0)  # one-step TD error
        next_v = torch.cat([values[:, 1:] * mask[:, 1:], torch.zeros(3, 1)], -1)
        torch.testing.assert_close(a0, (rewards + gamma * next_v - values) * mask)


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: clipped_surrogate(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 3)), "(b, t)"),
        (lambda: clipped_surrogate(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3)), "advantages"),
        (lambda: clipped_surrogate(torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1), 0.0), "epsilon"),
        (lambda: kl_penalised_rewards(*[torch.zeros(1, 2)] * 2, torch.zeros(1), torch.ones(1, 2), -1.0), "beta"),
        (lambda: kl_penalised_rewards(*[torch.zeros(1, 2)] * 2, torch.zeros(2), torch.ones(1, 2), 0.1), "score"),
        (lambda: kl_penalised_rewards(*[torch.zeros(1, 2)] * 2, torch.zeros(1), torch.zeros(1, 2), 0.1), "row with no"),
        (lambda: gae_advantages(*[torch.zeros(1, 2)] * 3, gamma=1.5), "gamma"),
        (lambda: masked_mean(torch.ones(2), torch.zeros(2)), "selects no position"),
    ],
)  # fmt: skip
def test_bad_input_raises(call, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_gradcheck_float64():
    old = -torch.rand(2, 3, dtype=torch.float64)
    logps = (old + torch.randn(2, 3, dtype=torch.float64) * 0.05).requires_grad_()  # off the kinks
    adv = torch.randn(2, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: clipped_surrogate(x, old, adv, 0.2), (logps,))
