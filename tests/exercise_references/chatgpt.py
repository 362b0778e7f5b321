"""References and known mistakes for the ChatGPT chapter's exercises: InstructGPT's loss over K ranked answers, the "k3"
estimate of the KL divergence (the one GRPO adds to its loss, proven equal to TRL's in the tests),
and advantages as returns minus a value baseline, written as a sum rather than GAE's recursion."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
import torch.nn.functional as F

from demos.exercises.core import Check, Mistake, check_function

# ---------------------------------------------------------------------------- ranking loss


def ranking_loss_reference(rewards: torch.Tensor) -> torch.Tensor:
    """``(b, K)`` rewards of K answers in rank order (column 0 the best) -> ``(b,)`` losses: the mean
    of ``-log sigma(r_i - r_j)`` over the K(K-1)/2 pairs ``i < j`` (Eq. 1 of ouyang2022instructgpt)."""
    pairs = list(itertools.combinations(range(rewards.shape[1]), 2))
    better = rewards[:, [i for i, _ in pairs]]
    worse = rewards[:, [j for _, j in pairs]]
    return -F.logsigmoid(better - worse).mean(-1)


def _gaps(rewards):
    pairs = list(itertools.combinations(range(rewards.shape[1]), 2))
    return rewards[:, [i for i, _ in pairs]] - rewards[:, [j for _, j in pairs]]


def _adjacent_only(rewards):
    return -F.logsigmoid(rewards[:, :-1] - rewards[:, 1:]).mean(-1)


def _summed(rewards):
    k = rewards.shape[1]
    return ranking_loss_reference(rewards) * (k * (k - 1) / 2)


RANKING_MISTAKES = [
    Mistake(_adjacent_only, "only neighbouring ranks are compared (1 vs 2, 2 vs 3, ...); a ranking "
            "of K answers gives K(K-1)/2 pairs, 1 vs 3 included."),  # fmt: skip
    Mistake(lambda r: ranking_loss_reference(r.flip(-1)), "the order is reversed: column 0 is the "
            "best answer, so r[:, i] - r[:, j] with i < j must grow."),  # fmt: skip
    Mistake(_summed, "this is the sum over pairs; Eq. 1 divides by K(K-1)/2, the number of pairs, "
            "so that prompts with more answers do not weigh more."),  # fmt: skip
    Mistake(lambda r: ranking_loss_reference(r).mean(), "this is the mean over the batch; the "
            "exercise asks for one loss per prompt, shape (b,)."),  # fmt: skip
    Mistake(lambda r: -torch.log(torch.sigmoid(_gaps(r))).mean(-1),
            "-log(sigmoid(x)) is inf for a very negative x: use torch.nn.functional.logsigmoid."),
    Mistake(lambda r: -ranking_loss_reference(r), "the sign is flipped: the loss is -log sigma(r_i - "
            "r_j), which is positive; log sigma alone would be maximised, not minimised."),
    Mistake(lambda r: 0.5 * (ranking_loss_reference(r) + ranking_loss_reference(r.flip(-1))),
            "every ordered pair is counted, (j, i) as well as (i, j): half the terms reward the "
            "wrong order. Only pairs with i ranked above j (i < j) count."),
]  # fmt: skip


def check_ranking_loss(fn: Callable[[torch.Tensor], torch.Tensor]) -> Check:
    """Check a learner's ``ranking_loss(rewards)``: ``(b, K)`` rewards in rank order -> ``(b,)``."""
    gen = torch.Generator().manual_seed(0)
    cases = {
        "b=3, K=4": (torch.randn(3, 4, generator=gen),),
        "b=2, K=2 (one pair each)": (torch.randn(2, 2, generator=gen),),
        "b=2, K=5": (torch.randn(2, 5, generator=gen) * 3,),
        "a badly wrong ranking": (torch.tensor([[-60.0, 0.0, 50.0]]),),
    }
    return check_function(fn, ranking_loss_reference, cases, ("rewards",),
                          mistakes=RANKING_MISTAKES, atol=1e-5, rtol=1e-5)  # fmt: skip


# ---------------------------------------------------------------------------- k3 KL estimate


def k3_reference(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Per token, ``rho - log rho - 1`` with ``rho = pi_ref / pi``: an unbiased, never negative
    estimate of ``KL(pi || pi_ref)`` from tokens sampled from ``pi``. trl==1.16.0,
    trainer/grpo_trainer.py::GRPOTrainer._compute_loss (``per_token_kl``)."""
    log_rho = ref_logps - logps
    return torch.exp(log_rho) - log_rho - 1


K3_MISTAKES = [
    Mistake(lambda lp, ref: lp - ref, "this is k1 = log pi - log pi_ref: unbiased, but negative "
            "on many tokens. k3 adds rho - 1, whose mean under pi is 0, to make every term >= 0."),
    Mistake(lambda lp, ref: k3_reference(ref, lp), "the ratio is upside down: rho = pi_ref / pi "
            "(that one estimates KL(pi || pi_ref) from samples of pi)."),
    Mistake(lambda lp, ref: torch.exp(ref - lp) - (ref - lp), "the -1 is missing: a policy equal "
            "to the reference must give 0."),
    Mistake(lambda lp, ref: 0.5 * (lp - ref) ** 2, "this is k2 = (log rho)^2 / 2: never negative "
            "but biased."),
    Mistake(lambda lp, ref: torch.exp(ref - lp) + (ref - lp) - 1, "the log term's sign is flipped: "
            "k3 = rho - log rho - 1 subtracts log rho."),
]  # fmt: skip


def check_k3(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Check:
    """Check a learner's ``k3(logps, ref_logps)``: two ``(b, t)`` tensors -> ``(b, t)``."""
    gen = torch.Generator().manual_seed(0)
    logps = -torch.rand(3, 5, generator=gen) * 4
    cases = {
        "3 x 5 tokens": (logps, logps + torch.randn(3, 5, generator=gen) * 0.5),
        "policy equal to the reference": (logps, logps.clone()),
        "far apart": (torch.tensor([[-0.1, -6.0]]), torch.tensor([[-5.0, -0.2]])),
    }
    return check_function(fn, k3_reference, cases, ("logps", "ref_logps"), mistakes=K3_MISTAKES,
                          atol=1e-5, rtol=1e-5)  # fmt: skip


# ---------------------------------------------------------------------------- returns minus baseline


def baseline_advantages_reference(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float
) -> torch.Tensor:
    """``A_t = sum_{u >= t} gamma^(u - t) r_u - V_t`` on real tokens, 0 on padding: GAE with
    ``lam = 1`` (:func:`demos.training.ppo.gae_advantages`), written as a sum."""
    t = rewards.shape[1]
    u = torch.arange(t)
    discount = torch.where(u >= u.unsqueeze(-1), gamma ** (u - u.unsqueeze(-1)).clamp(min=0), 0)
    returns = (rewards * mask) @ discount.T.to(rewards.dtype)  # (b, t): row t sums u >= t
    return (returns - values) * mask


BASELINE_MISTAKES = [
    Mistake(lambda r, v, m, g: baseline_advantages_reference(r, torch.zeros_like(v), m, g),
            "the baseline is missing: subtract V_t from the return."),
    Mistake(lambda r, v, m, g: baseline_advantages_reference(r, v, m, 1.0),
            "gamma is not applied: a reward u - t tokens ahead counts gamma^(u - t)."),
    Mistake(lambda r, v, m, g: (torch.cumsum(r * m, -1) - v) * m,
            "this sums the rewards up to t (a forward cumsum); the return sums those from t on."),
    Mistake(lambda r, v, m, g: baseline_advantages_reference(r, v, torch.ones_like(m), g),
            "padding is not masked: advantages on padding must be 0 and its rewards must not "
            "count."),
    Mistake(lambda r, v, m, g: baseline_advantages_reference(r * m, v, torch.ones_like(m), g),
            "the advantages on padding are not zeroed: multiply the result by mask (there the "
            "return is 0, so -V_t is left)."),
    Mistake(lambda r, v, m, g: (baseline_advantages_reference(r, torch.zeros_like(v), torch.ones_like(m), g) - v) * m,
            "the rewards on padding are summed into the returns: multiply rewards by mask before "
            "summing (right padding sits after the answer, so it would leak into every token)."),
    Mistake(lambda r, v, m, g: -baseline_advantages_reference(r, v, m, g),
            "the sign is flipped: the advantage is the return minus the value, G_t - V_t."),
    Mistake(lambda r, v, m, g: baseline_advantages_reference(r, v, m, g) - r * m,
            "the return starts one token late (u > t): it includes r_t, the reward of token t itself "
            "(u >= t)."),
]  # fmt: skip


def check_baseline_advantages(fn: Callable[..., torch.Tensor]) -> Check:
    """Check a learner's ``advantages(rewards, values, mask, gamma)``: ``(b, t)`` each -> ``(b, t)``."""
    gen = torch.Generator().manual_seed(0)

    def case(b, t, lengths, gamma):
        rewards = torch.randn(b, t, generator=gen)
        mask = (torch.arange(t) < torch.tensor(lengths).unsqueeze(-1)).float()
        return rewards * mask, torch.randn(b, t, generator=gen), mask, gamma

    cases = {
        "2 x 4, no padding, gamma=0.9": case(2, 4, [4, 4], 0.9),
        "3 x 5, padded, gamma=0.5": case(3, 5, [5, 2, 3], 0.5),
        "1 x 3, gamma=1": case(1, 3, [3], 1.0),
    }
    cases["padding with leftover values, gamma=0.8"] = case(2, 4, [2, 3], 0.8)[:1] + (
        torch.ones(2, 4), torch.tensor([[1.0, 1, 0, 0], [1, 1, 1, 0]]), 0.8)  # fmt: skip
    # rewards left on the padding (a collator that does not zero them): they must not count
    cases["padding with leftover rewards, gamma=0.7"] = (
        torch.randn(2, 5, generator=gen), torch.randn(2, 5, generator=gen),
        torch.tensor([[1.0, 1, 1, 0, 0], [1, 1, 1, 1, 0]]), 0.7)  # fmt: skip
    return check_function(fn, baseline_advantages_reference, cases,
                          ("rewards", "values", "mask", "gamma"), mistakes=BASELINE_MISTAKES,
                          atol=1e-5, rtol=1e-5)  # fmt: skip
