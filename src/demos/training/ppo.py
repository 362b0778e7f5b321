"""PPO for a language model, as InstructGPT used it: KL-penalised rewards, advantages, the clipped loss.

Each step samples answers from the policy, scores them with the reward model, and turns the score into
per-token rewards: every token pays ``beta * (log pi - log pi_ref)`` (a sample of the KL divergence from
the frozen SFT model, so the policy cannot drift into text the reward model was never trained on), and
the last token also receives the reward model's score. Advantages come from GAE with a value baseline,
and the policy then minimises PPO's clipped surrogate for a few epochs on the same samples.

Glossary: ``b`` sampled answers, ``t`` answer tokens (padded on the right; ``mask`` is 1 on real ones).
``logps`` are the log-probabilities of the sampled tokens under the policy being trained, ``old_logps``
under the policy that sampled them, ``ref_logps`` under the frozen reference (SFT) model.

References: ouyang2022instructgpt (Eq. 2: reward minus beta times the log-ratio to the SFT model),
schulman2017ppo (Eq. 7: the clipped surrogate; Eqs. 11-12: generalised advantage estimation),
openai2022chatgpt (ChatGPT trained with the InstructGPT method).
TRL comparison: trl==1.16.0, trainer/grpo_trainer.py::GRPOTrainer._compute_loss computes the same
clipped term per token (``-min(coef_1 * A, clamp(coef_1, 1 - eps, 1 + eps) * A)``) from its own
advantages; trl 1.16 ships no PPO trainer.
"""

from __future__ import annotations

import torch


def _check_same_shape(**tensors: torch.Tensor) -> None:
    shapes = {name: tuple(x.shape) for name, x in tensors.items()}
    if len(set(shapes.values())) != 1 or next(iter(tensors.values())).dim() != 2:
        raise ValueError(f"expected tensors of one (b, t) shape, got {shapes}")


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over the positions where ``mask`` is 1 (every real token of the batch).

    Raises:
        ValueError: if the mask selects nothing (a mean over nothing is no number).
    """
    total = mask.sum()
    if total == 0:
        raise ValueError("mask selects no position: the mean over nothing is undefined")
    return (x * mask).sum() / total


def kl_penalised_rewards(
    logps: torch.Tensor,
    ref_logps: torch.Tensor,
    score: torch.Tensor,
    mask: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Per-token rewards ``-beta (log pi - log pi_ref)``, plus ``score`` on each answer's last token.

    Args:
        logps, ref_logps: ``(b, t)`` log-probs of the sampled tokens under the sampling policy and
            the reference model.
        score: ``(b,)`` the reward model's score of each whole answer.
        mask: ``(b, t)`` 1 on real tokens, right-padded; each row has at least one.
        beta: the KL coefficient, ``>= 0``.

    Returns:
        ``(b, t)`` rewards, 0 on padding. Summed over a row: ``score - beta * log(pi(y)/pi_ref(y))``,
        Eq. (2) of ouyang2022instructgpt without its pretraining term. No gradient flows: rewards are
        data for the advantage estimate.

    Raises:
        ValueError: on mismatched shapes, a negative beta, or a row with no real token.
    """
    _check_same_shape(logps=logps, ref_logps=ref_logps, mask=mask)
    if score.shape != logps.shape[:1]:
        raise ValueError(f"score {tuple(score.shape)} must be (b,) = ({logps.shape[0]},)")
    if beta < 0:
        raise ValueError(f"beta ({beta}) must be >= 0: a negative beta rewards drifting away")
    lengths = mask.long().sum(-1)
    if (lengths == 0).any():
        raise ValueError("mask has a row with no real token")
    with torch.no_grad():
        rewards = -beta * (logps - ref_logps) * mask  # (b, t): the KL penalty, token by token
        last = (lengths - 1).unsqueeze(-1)  # (b, 1)
        rewards = rewards.scatter_add(-1, last, score.unsqueeze(-1).to(rewards.dtype))
    return rewards


def gae_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    gamma: float = 1.0,
    lam: float = 0.95,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over each answer's tokens (Eqs. 11-12 of schulman2017ppo).

    ``delta_t = r_t + gamma V_{t+1} - V_t`` (``V`` is 0 past the last real token) and
    ``A_t = delta_t + gamma lam A_{t+1}``. With ``lam = 1`` the advantage is the return minus the
    baseline, ``sum_{u>=t} gamma^(u-t) r_u - V_t``; with ``lam = 0`` it is the one-step ``delta_t``.

    Args:
        rewards, values, mask: ``(b, t)``, right-padded.
        gamma, lam: discount and GAE parameter, each in ``[0, 1]``.

    Returns:
        ``(advantages, returns)``, each ``(b, t)``, 0 on padding; ``returns = advantages + values``
        (the value head's regression target). Computed without gradient.

    Raises:
        ValueError: on mismatched shapes or ``gamma``/``lam`` outside ``[0, 1]``.
    """
    _check_same_shape(rewards=rewards, values=values, mask=mask)
    for name, x in (("gamma", gamma), ("lam", lam)):
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"{name} ({x}) must lie in [0, 1]")
    with torch.no_grad():
        mask = mask.to(values.dtype)
        values = values * mask
        advantages = torch.zeros_like(values)
        running = torch.zeros_like(values[:, 0])  # A_{t+1}, (b,)
        next_value = torch.zeros_like(values[:, 0])  # V_{t+1}, (b,)
        for t in reversed(range(values.shape[1])):
            delta = rewards[:, t] + gamma * next_value - values[:, t]
            running = (delta + gamma * lam * running) * mask[:, t]
            advantages[:, t] = running
            next_value = values[:, t]
    return advantages, (advantages + values) * mask


def clipped_surrogate(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    epsilon: float = 0.2,
) -> torch.Tensor:
    """PPO's per-token loss ``-min(rho A, clip(rho, 1 - eps, 1 + eps) A)``, ``rho = pi / pi_old``.

    Eq. (7) of schulman2017ppo, negated (a loss to minimise). Where the advantage is positive the
    ratio stops earning above ``1 + eps``; where it is negative, below ``1 - eps``; the ``min`` keeps
    the unclipped term whenever it is the more pessimistic one. Gradients flow through ``logps``
    only. Average it with :func:`masked_mean`.

    Args:
        logps, old_logps, advantages: ``(b, t)`` (advantages may also be ``(b, 1)``, one per answer).
        epsilon: the clip range, ``> 0``.

    Returns:
        ``(b, t)`` losses.

    Raises:
        ValueError: on mismatched shapes or ``epsilon <= 0``.
    """
    if logps.shape != old_logps.shape or logps.dim() != 2:
        raise ValueError(
            f"logps {tuple(logps.shape)} and old_logps {tuple(old_logps.shape)} must both be (b, t)"
        )
    if advantages.shape not in (logps.shape, logps.shape[:1] + (1,)):
        raise ValueError(
            f"advantages {tuple(advantages.shape)} must be (b, t) or (b, 1) for logps "
            f"{tuple(logps.shape)}"
        )
    if epsilon <= 0:
        raise ValueError(f"epsilon ({epsilon}) must be > 0")
    ratio = torch.exp(logps - old_logps.detach())  # (b, t)
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + epsilon)
    return -torch.min(ratio * advantages, clipped * advantages)
