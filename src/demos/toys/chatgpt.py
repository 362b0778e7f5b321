"""RLHF in miniature: a reward model trained on preference pairs, then PPO against it with a KL penalty.

The policy writes answers of ``length`` tokens from a ``vocab``-word vocabulary; it is a table of
logits indexed by (position, previous token), so every token depends on its context and the sequence
KL is exact to compute. A hidden "true" reward (one value per word, summed over the answer) labels
pairs of answers sampled from the reference policy, a labeller choosing the better one with
Bradley-Terry probability; a linear reward model on word counts learns from those pairs with
:func:`demos.training.reward.pairwise_reward_loss`. Then PPO (:mod:`demos.training.ppo`) trains a
copy of the reference against the reward model, once for each KL coefficient ``beta``. The history
records, per iteration, the exact expected reward-model score and true reward, and the exact
``KL(pi || pi_ref)`` of whole answers (forward recursion over the previous token's distribution).

References: ouyang2022instructgpt (the recipe), schulman2017ppo (the loss and GAE).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from demos.training.ppo import clipped_surrogate, gae_advantages, kl_penalised_rewards, masked_mean
from demos.training.reward import pairwise_reward_loss


@dataclass(frozen=True)
class RLHFToyConfig:
    vocab: int = 6  # words 0..vocab-1; the "previous token" of position 0 is a start symbol
    length: int = 5  # tokens per answer
    betas: tuple[float, ...] = (0.0, 0.1, 0.3, 1.0)  # the knob: KL coefficients, one PPO run each
    pairs: int = 512  # preference pairs the reward model learns from
    reward_steps: int = 150  # Adam steps on the pairwise loss
    iterations: int = 30  # PPO iterations (sample, score, advantages, update)
    batch: int = 64  # answers sampled per iteration
    epochs: int = 2  # PPO epochs on each batch
    epsilon: float = 0.2  # clip range
    lr: float = 0.1
    gamma: float = 1.0
    lam: float = 0.95
    seed: int = 0
    true_reward: tuple[float, ...] = field(default=(1.0, 0.5, 0.0, 0.0, -0.5, -1.0))

    def __post_init__(self) -> None:
        if len(self.true_reward) != self.vocab:
            raise ValueError(
                f"true_reward has {len(self.true_reward)} values for vocab {self.vocab}"
            )
        if any(b < 0 for b in self.betas):
            raise ValueError(f"betas {self.betas} must all be >= 0")


def log_policy(logits: torch.Tensor) -> torch.Tensor:
    """``(t, v + 1, v)`` logits -> log-probs of the next word at each (position, previous token)."""
    return torch.log_softmax(logits, dim=-1)


def sample(
    logits: torch.Tensor, batch: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` answers ``(b, t)`` and their previous tokens ``(b, t)`` (the start symbol is ``v``)."""
    t, _, v = logits.shape
    probs = log_policy(logits).exp()
    prev = torch.full((batch,), v, dtype=torch.long)
    words, prevs = [], []
    for pos in range(t):
        word = torch.multinomial(probs[pos, prev], 1, generator=gen).squeeze(-1)  # (b,)
        words.append(word)
        prevs.append(prev)
        prev = word
    return torch.stack(words, 1), torch.stack(prevs, 1)


def token_logps(logits: torch.Tensor, words: torch.Tensor, prevs: torch.Tensor) -> torch.Tensor:
    """Log-probs ``(b, t)`` of the sampled words under ``logits``."""
    positions = torch.arange(words.shape[1]).expand_as(words)
    return log_policy(logits)[positions, prevs, words]


def exact_kl_and_counts(
    logits: torch.Tensor, ref_logits: torch.Tensor
) -> tuple[float, torch.Tensor]:
    """Exact ``KL(pi || pi_ref)`` of whole answers and the expected count of each word, ``(v,)``."""
    t, _, v = logits.shape
    logp, ref = log_policy(logits), log_policy(ref_logits)
    prev = torch.zeros(v + 1, dtype=logits.dtype)
    prev[v] = 1.0  # position 0 follows the start symbol
    kl, counts = 0.0, torch.zeros(v, dtype=logits.dtype)
    for pos in range(t):
        step_kl = (logp[pos].exp() * (logp[pos] - ref[pos])).sum(-1)  # (v + 1,)
        kl += float(prev @ step_kl)
        word = prev @ logp[pos].exp()  # (v,) distribution of this position's word
        counts = counts + word
        prev = torch.cat([word, torch.zeros(1, dtype=logits.dtype)])
    return kl, counts


def train_reward_model(config: RLHFToyConfig, ref_logits: torch.Tensor, gen: torch.Generator):
    """Weights ``(v,)`` of a linear reward model on word counts, and its accuracy on fresh pairs."""
    true = torch.tensor(config.true_reward)

    def labelled_pairs(n: int):
        a, _ = sample(ref_logits, n, gen)
        b, _ = sample(ref_logits, n, gen)
        ca = torch.nn.functional.one_hot(a, config.vocab).sum(1).float()  # (n, v) word counts
        cb = torch.nn.functional.one_hot(b, config.vocab).sum(1).float()
        a_wins = torch.rand(n, generator=gen) < torch.sigmoid(
            ca @ true - cb @ true
        )  # Bradley-Terry
        chosen = torch.where(a_wins.unsqueeze(-1), ca, cb)
        rejected = torch.where(a_wins.unsqueeze(-1), cb, ca)
        return chosen, rejected

    chosen, rejected = labelled_pairs(config.pairs)
    w = torch.zeros(config.vocab, requires_grad=True)
    optimizer = torch.optim.Adam([w], lr=0.05)
    for _ in range(config.reward_steps):
        loss = pairwise_reward_loss(chosen @ w, rejected @ w).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    held_chosen, held_rejected = labelled_pairs(config.pairs)
    with torch.no_grad():
        accuracy = float((held_chosen @ w > held_rejected @ w).float().mean())
    return w.detach(), accuracy


def ppo_run(
    config: RLHFToyConfig, beta: float, ref_logits: torch.Tensor, w: torch.Tensor
) -> list[dict]:
    """PPO from the reference policy against the reward model ``w``; one history row per iteration."""
    gen = torch.Generator().manual_seed(config.seed + 1)
    true = torch.tensor(config.true_reward)
    logits = ref_logits.clone().requires_grad_(True)
    values = torch.zeros(
        config.length, config.vocab + 1, requires_grad=True
    )  # V(position, previous)
    optimizer = torch.optim.Adam([logits, values], lr=config.lr)
    mask = torch.ones(config.batch, config.length)
    positions = torch.arange(config.length).expand(config.batch, -1)
    history = []
    for iteration in range(config.iterations + 1):
        with torch.no_grad():
            kl, counts = exact_kl_and_counts(logits, ref_logits)
        history.append({"iteration": iteration, "kl": kl, "score": float(counts @ w),
                        "true_reward": float(counts @ true)})  # fmt: skip
        if iteration == config.iterations:
            break
        with torch.no_grad():
            words, prevs = sample(logits, config.batch, gen)
            old_logps = token_logps(logits, words, prevs)
            ref_logps = token_logps(ref_logits, words, prevs)
            score = torch.nn.functional.one_hot(words, config.vocab).sum(1).float() @ w  # (b,)
            rewards = kl_penalised_rewards(old_logps, ref_logps, score, mask, beta)
            advantages, returns = gae_advantages(
                rewards, values[positions, prevs], mask, config.gamma, config.lam
            )
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)  # whitened
        for _ in range(config.epochs):
            policy_loss = masked_mean(
                clipped_surrogate(token_logps(logits, words, prevs), old_logps, advantages,
                                  config.epsilon), mask)  # fmt: skip
            value_loss = masked_mean((values[positions, prevs] - returns) ** 2, mask)
            optimizer.zero_grad()
            (policy_loss + 0.5 * value_loss).backward()
            optimizer.step()
    return history


def run(config: RLHFToyConfig | None = None) -> dict:
    """The whole toy: the reward model, then one PPO run per ``beta``. Seconds on a CPU, on one
    torch thread (the caller's thread count is restored)."""
    config = config or RLHFToyConfig()
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the toy's tensors are tiny: one thread is fastest
    try:
        gen = torch.Generator().manual_seed(config.seed)
        ref_logits = torch.randn(config.length, config.vocab + 1, config.vocab, generator=gen) * 0.5
        w, accuracy = train_reward_model(config, ref_logits, gen)
        runs = {str(beta): ppo_run(config, beta, ref_logits, w) for beta in config.betas}
    finally:
        torch.set_num_threads(threads)
    return {
        "reward_model": {"weights": w.tolist(), "held_out_accuracy": accuracy},
        "runs": runs,
        "seconds": time.perf_counter() - start,
    }
