"""The pairwise reward-model loss against TRL's RewardTrainer, values and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from demos.training.reward import last_token_scores, pairwise_reward_loss, sequence_rewards
from demos.training.trl_reference import tiny_reward_model


def our_loss_from_batch(model, batch, margin=None):
    """Our rewards (the model's body, its score head, our last-token pick) and our loss."""
    rewards = sequence_rewards(model, batch["input_ids"], batch["attention_mask"])  # (2b,)
    chosen, rejected = rewards.chunk(2)
    return pairwise_reward_loss(chosen, rejected, margin).mean()


@pytest.mark.parametrize("margins", [None, [0.0, 0.5, 1.0, -0.3]], ids=["no margin", "margin"])
def test_loss_and_gradients_match_trl_reward_trainer(margins):
    from demos.training.trl_reference import trl_reward_loss_on_one_batch

    model = tiny_reward_model()
    with torch.no_grad():
        model.score.weight.mul_(300.0)  # rewards a nat apart, so the loss is far from log 2
    ref_loss, batch = trl_reward_loss_on_one_batch(model, num_pairs=4, margins=margins)
    assert (batch["attention_mask"] == 0).any()  # padded: the last-token pick is exercised
    assert ("margin" in batch) == (margins is not None)
    params = [p for p in model.parameters() if p.requires_grad]
    ref_grads = torch.autograd.grad(ref_loss, params)
    ours = our_loss_from_batch(model, batch, batch.get("margin"))
    grads = torch.autograd.grad(ours, params)
    assert abs(ref_loss.item() - math.log(2)) > 0.05  # not the trivial value
    torch.testing.assert_close(ours, ref_loss, atol=1e-6, rtol=0)
    for ours_g, ref_g in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(ours_g, ref_g, atol=1e-6, rtol=1e-5)


def test_last_token_scores_match_llama_for_sequence_classification():
    """HF pools at the last token that is not pad_token_id; ours at mask.sum() - 1."""
    model = tiny_reward_model()
    ids = torch.randint(1, 34, (3, 7))
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 4:] = 0
    mask[2, 1:] = 0
    ids = ids * mask  # pad id 0 on padding
    with torch.no_grad():
        hf = model(input_ids=ids, attention_mask=mask).logits.squeeze(-1)
        hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
        ours = last_token_scores(model.score(hidden).squeeze(-1), mask)
    torch.testing.assert_close(ours, hf, atol=1e-6, rtol=0)


def test_loss_is_log2_for_equal_rewards_and_finite_far_away():
    r = torch.tensor([0.3, -2.0])
    torch.testing.assert_close(pairwise_reward_loss(r, r), torch.full((2,), math.log(2)))
    far = pairwise_reward_loss(torch.tensor([-200.0]), torch.tensor([200.0]))
    assert torch.isfinite(far).all() and far.item() == pytest.approx(400.0)


def test_margin_shifts_the_difference():
    c, r = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.0])
    torch.testing.assert_close(pairwise_reward_loss(c, r, 0.5), pairwise_reward_loss(c - 0.5, r))


def test_gradcheck_float64():
    c = torch.randn(4, dtype=torch.float64, requires_grad=True)
    r = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: pairwise_reward_loss(a, b, 0.2), (c, r))


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: pairwise_reward_loss(torch.zeros(3), torch.zeros(2)), "must both be (b,)"),
        (lambda: pairwise_reward_loss(torch.zeros(2, 1), torch.zeros(2, 1)), "must both be (b,)"),
        (lambda: pairwise_reward_loss(torch.zeros(2), torch.zeros(2), torch.zeros(3)), "margin"),
        (lambda: last_token_scores(torch.zeros(2, 3), torch.ones(2, 4)), "(b, t)"),
        (lambda: last_token_scores(torch.zeros(1, 3), torch.zeros(1, 3)), "no real token"),
        (lambda: last_token_scores(torch.zeros(1, 3), torch.tensor([[0, 1, 1]])), "right"),
    ],
)
def test_bad_input_raises(call, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        call()
