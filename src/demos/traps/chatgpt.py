"""The ChatGPT chapter's traps: four one-line slips in the InstructGPT recipe and its evaluation.

The reward loss with the pair swapped and PPO's ratio left unclipped are measured against TRL
(``RewardTrainer.compute_loss`` on a tiny ``LlamaForSequenceClassification``; ``GRPOTrainer``'s
clipped term on given log-probs, trl==1.16.0). The KL penalty with its sign flipped is measured
against the exact KL divergence of two categorical distributions (``torch.distributions``), and
reading the first number of an output instead of its answer line against the answers written for
the book (:data:`demos.eval.simple_evals.BOOK_NUMBERS`).
"""

from __future__ import annotations

import torch

from demos.traps import Measured, Trap
from demos.traps.tiny import seeded


def measure_reward_pair_swapped() -> Measured:
    """Right: ``-log sigma(r_c - r_r)``; wrong: ``-log sigma(r_r - r_c)``; both against TRL's loss."""
    from demos.training.reward import pairwise_reward_loss, sequence_rewards
    from demos.training.trl_reference import tiny_reward_model, trl_reward_loss_on_one_batch

    with seeded(0):
        model = tiny_reward_model()
        with torch.no_grad():  # an untrained head gives rewards within 0.01 of each other;
            model.score.weight.mul_(
                300.0
            )  # scaled, they differ by about a nat, as a trained one's do
        reference, batch = trl_reward_loss_on_one_batch(model, num_pairs=4)
        with torch.no_grad():
            rewards = sequence_rewards(model, batch["input_ids"], batch["attention_mask"])
    chosen, rejected = rewards.chunk(2)
    right = pairwise_reward_loss(chosen, rejected).mean()
    wrong = pairwise_reward_loss(rejected, chosen).mean()  # the wrong line: pair swapped
    quantity = "RewardTrainer's loss, tiny LlamaForSequenceClassification, 4 pairs, fp32"
    return Measured.of([float(right)], [float(wrong)], [float(reference.detach())], 1e-5, quantity)


def surrogate_case() -> tuple[torch.Tensor, ...]:
    """Log-probs whose ratios lie inside and outside [0.8, 1.2], advantages of both signs."""
    gen = torch.Generator().manual_seed(0)
    old = -torch.rand(8, 6, generator=gen) * 3
    logps = old + torch.randn(8, 6, generator=gen) * 0.5  # ratios from about 0.4 to 5.5
    advantages = torch.randn(8, 6, generator=gen)
    mask = torch.ones(8, 6)
    mask[1, 4:] = 0
    return logps, old, advantages, mask


def measure_ratio_unclipped() -> Measured:
    """Right: ``-min(rho A, clip(rho) A)``; wrong: ``-rho A``; both against GRPOTrainer's term."""
    from demos.training.ppo import clipped_surrogate, masked_mean
    from demos.training.trl_reference import trl_clipped_surrogate_loss

    logps, old, advantages, mask = surrogate_case()
    reference = trl_clipped_surrogate_loss(logps, old, advantages, mask, 0.2)
    right = masked_mean(clipped_surrogate(logps, old, advantages, 0.2), mask)
    wrong = masked_mean(-torch.exp(logps - old) * advantages, mask)  # the wrong line: no clip
    quantity = "GRPOTrainer._compute_loss (bnpo, beta = 0), 8 x 6 tokens, ratios 0.4 to 5.5, fp32"
    return Measured.of([float(right)], [float(wrong)], [float(reference)], 1e-5, quantity)


def measure_kl_sign_flipped() -> Measured:
    """Right: reward ``-beta (log pi - log pi_ref)``; wrong: ``+beta (...)``. The expected penalty
    under ``pi``, enumerated over the vocabulary, against ``-beta KL(pi || pi_ref)`` from
    ``torch.distributions.kl_divergence``, at 8 positions of a 10-word vocabulary."""
    from demos.training.ppo import kl_penalised_rewards

    beta = 0.1
    gen = torch.Generator().manual_seed(0)
    logp = torch.log_softmax(torch.randn(8, 10, generator=gen, dtype=torch.float64), -1)
    ref = torch.log_softmax(torch.randn(8, 10, generator=gen, dtype=torch.float64), -1)
    mask, no_score = torch.ones(8, 10, dtype=torch.float64), torch.zeros(8, dtype=torch.float64)
    # every word as if sampled: the expectation under pi is the sum weighted by pi
    penalty = kl_penalised_rewards(logp, ref, no_score, mask, beta)  # (8, 10), score 0 everywhere
    right = (logp.exp() * penalty).sum(-1)
    wrong = (logp.exp() * beta * (logp - ref)).sum(-1)  # the wrong line: sign flipped
    reference = -beta * torch.distributions.kl_divergence(
        torch.distributions.Categorical(logits=logp), torch.distributions.Categorical(logits=ref)
    )
    quantity = "expected per-token penalty vs -beta KL(pi || pi_ref), 8 positions, float64"
    return Measured.of(right, wrong, reference, 1e-9, quantity)


def measure_first_number() -> Measured:
    """Right: the first number of the last ``Answer:`` line; wrong: the first number anywhere.
    Both against the answers written for the book's outputs that give one."""
    import re

    from demos.eval.simple_evals import BOOK_NUMBERS, extract_number

    cases = [(text, answer) for _, text, answer in BOOK_NUMBERS if answer is not None]
    right = [extract_number(text) for text, _ in cases]
    wrong = [float(re.search(r"-?\d+(?:\.\d+)?", text.replace(",", "")).group())
             for text, _ in cases]  # fmt: skip
    quantity = f"the answers of the book's {len(cases)} numeric outputs that give one"
    return Measured.of(right, wrong, [a for _, a in cases], 1e-9, quantity)


TRAPS = [
    Trap(
        chapter="chatgpt",
        title="Reward-model loss with chosen and rejected swapped",
        wrong="loss = -F.logsigmoid(r_rejected - r_chosen).mean()",
        right="loss = -F.logsigmoid(r_chosen - r_rejected).mean()",
        shows="a loss that falls as the reward model learns the opposite preference",
        measure=measure_reward_pair_swapped,
    ),
    Trap(
        chapter="chatgpt",
        title="PPO's probability ratio left unclipped",
        wrong="loss = -(ratio * advantages)",
        right="loss = -torch.min(ratio * A, ratio.clamp(1 - eps, 1 + eps) * A)",
        shows="every token whose ratio left [1 - eps, 1 + eps]: steps no longer stay small",
        measure=measure_ratio_unclipped,
    ),
    Trap(
        chapter="chatgpt",
        title="KL penalty with its sign flipped",
        wrong="rewards = +beta * (logps - ref_logps)",
        right="rewards = -beta * (logps - ref_logps)",
        shows="a bonus for drifting from the SFT model instead of a cost",
        measure=measure_kl_sign_flipped,
    ),
    Trap(
        chapter="chatgpt",
        title="Extraction picking the first number of the reply",
        wrong="float(re.search(NUMBER, text).group())",
        right="extract_number(text)  # the first number on the last Answer: line",
        shows="every reply whose reasoning mentions a number before the answer",
        measure=measure_first_number,
    ),
]
