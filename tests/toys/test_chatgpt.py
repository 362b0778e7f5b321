"""The miniature RLHF run: the reward model learns the preference, PPO raises the reward, beta holds
the KL back; the exact KL and expected counts agree with sampling."""

from __future__ import annotations

import pytest
import torch

from demos.toys.chatgpt import RLHFToyConfig, exact_kl_and_counts, run, sample, token_logps


@pytest.fixture(scope="module")
def result():
    torch.manual_seed(0)
    return run(RLHFToyConfig(betas=(0.0, 1.0), iterations=20))


def test_reward_model_learns_the_preference(result):
    assert result["reward_model"]["held_out_accuracy"] > 0.7
    weights = result["reward_model"]["weights"]
    assert weights[0] > weights[-1]  # the best word scores above the worst


def test_reward_rises_and_kl_grows(result):
    free = result["runs"]["0.0"]
    assert free[0]["kl"] == pytest.approx(0.0, abs=1e-9)
    assert free[-1]["score"] > free[0]["score"] + 2
    assert free[-1]["true_reward"] > free[0]["true_reward"] + 2
    assert free[-1]["kl"] > 1.0


def test_beta_holds_the_kl_back(result):
    assert result["runs"]["1.0"][-1]["kl"] < 0.5 * result["runs"]["0.0"][-1]["kl"]


def test_exact_kl_and_counts_agree_with_sampling():
    gen = torch.Generator().manual_seed(0)
    logits, ref = torch.randn(4, 6, 5, generator=gen), torch.randn(4, 6, 5, generator=gen)
    kl, counts = exact_kl_and_counts(logits, ref)
    words, prevs = sample(logits, 20000, gen)
    sampled_kl = (token_logps(logits, words, prevs) - token_logps(ref, words, prevs)).sum(-1).mean()
    assert sampled_kl.item() == pytest.approx(kl, rel=0.05)
    sampled_counts = torch.nn.functional.one_hot(words, 5).sum(1).float().mean(0)
    torch.testing.assert_close(sampled_counts, counts, atol=0.05, rtol=0)
    assert exact_kl_and_counts(logits, logits)[0] == pytest.approx(0.0, abs=1e-9)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="true_reward"):
        RLHFToyConfig(vocab=4)
    with pytest.raises(ValueError, match="betas"):
        RLHFToyConfig(betas=(-0.1,))
