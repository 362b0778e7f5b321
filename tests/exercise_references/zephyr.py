"""References and known mistakes for the Zephyr chapter's exercises: the DPO loss, ORPO's log-odds,
the active parameters of a mixture of experts, and a preference loss the chapter does not derive
(transfer): TRL's ``loss_type="apo_zero"``, whose per-answer form the tests prove equal to
``trl.DPOTrainer``."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from demos.exercises.core import Check, Mistake, check_function
from demos.exercises.zephyr import ACTIVE_ARGS, DPO_ARGS  # shared with the package
from demos.training.preference import dpo_loss, log1mexp


def _h(lw, ll, rw, rl):
    """DPO's margin: the chosen answer's log-ratio minus the rejected one's."""
    return (lw - rw) - (ll - rl)


def dpo_loss_reference(lw, ll, rw, rl, beta):
    """Per-pair sigmoid DPO loss ``-log sigma(beta h)``, ``(b,)``."""
    return dpo_loss(lw, ll, rw, rl, beta)[0]


DPO_MISTAKES = [
    Mistake(
        lambda lw, ll, rw, rl, beta: -F.logsigmoid(beta * (lw - ll)),
        "the reference model was left out. DPO's margin is h = (log pi(y_w) - log pi_ref(y_w)) - "
        "(log pi(y_l) - log pi_ref(y_l)); without pi_ref the loss ignores where training started.",
    ),
    Mistake(
        lambda lw, ll, rw, rl, beta: -F.logsigmoid(-beta * _h(lw, ll, rw, rl)),
        "chosen and rejected are swapped: the loss must fall as the chosen answer gains.",
    ),
    Mistake(
        lambda lw, ll, rw, rl, beta: -torch.sigmoid(beta * _h(lw, ll, rw, rl)),
        "this is -sigma(beta h); the loss is -log sigma(beta h).",
    ),
    Mistake(
        lambda lw, ll, rw, rl, beta: -F.logsigmoid(_h(lw, ll, rw, rl)),
        "beta is missing: the loss is -log sigma(beta h).",
    ),
    Mistake(
        lambda lw, ll, rw, rl, beta: -torch.log(torch.sigmoid(beta * _h(lw, ll, rw, rl))),
        "-log(sigmoid(x)) underflows to log(0) = -inf for a very negative x: use "
        "torch.nn.functional.logsigmoid, which computes log sigma(x) without forming sigma(x).",
    ),
    Mistake(
        lambda *args: dpo_loss_reference(*args).mean(),
        "this is the mean over the batch; the exercise asks for one loss per pair, shape (b,).",
    ),
]


def check_dpo_loss(fn: Callable[..., torch.Tensor]) -> Check:
    """Check a learner's per-pair sigmoid DPO loss ``fn(chosen, rejected, ref_chosen, ref_rejected, beta)``:
    four ``(b,)`` tensors of sequence log-probabilities and a float -> ``(b,)`` losses."""
    gen = torch.Generator().manual_seed(0)

    def logps(b: int, scale: float) -> torch.Tensor:
        return -torch.rand(b, generator=gen) * scale - 0.1

    cases = {
        f"b=6, beta=0.1 (draw {i + 1})": (*(logps(6, 20) for _ in range(4)), 0.1) for i in range(2)
    }
    cases["b=3, beta=0.5"] = (*(logps(3, 5) for _ in range(4)), 0.5)
    lw = torch.tensor([-80.0, -75.0])  # the policy prefers the rejected answer: beta h near -120
    cases["a wide wrong margin"] = (
        lw,
        torch.tensor([-20.0, -15.0]),
        torch.tensor([-20.0, -16.0]),
        lw,
        1.0,
    )
    return check_function(
        fn, dpo_loss_reference, cases, DPO_ARGS, mistakes=DPO_MISTAKES, atol=1e-5, rtol=1e-5
    )


def log_odds_reference(logp: torch.Tensor) -> torch.Tensor:
    """``log(P / (1 - P)) = log P - log(1 - P)`` from ``log P <= 0``, elementwise."""
    return logp - log1mexp(logp)


LOG_ODDS_MISTAKES = [
    Mistake(
        lambda logp: logp - torch.log(1 - torch.exp(logp)),
        "log(1 - exp(log P)) rounds to log(0) when log P is close to 0 (P close to 1, exactly the "
        "well-trained case). Compute log(1 - P) as torch.log(-torch.expm1(log P)) near 0, or use "
        "demos.training.preference.log1mexp.",
    ),
    Mistake(
        lambda logp: torch.exp(logp) / (1 - torch.exp(logp)),
        "this is the odds P / (1 - P); take its logarithm.",
    ),
    Mistake(lambda logp: logp, "this is log P; the log-odds also subtract log(1 - P)."),
]


def check_log_odds(fn: Callable[[torch.Tensor], torch.Tensor]) -> Check:
    """Check a learner's ``log_odds(logp)``: ``log(P / (1 - P))`` from ``log P <= 0`` (ORPO's building
    block), elementwise, accurate for ``log P`` near 0 and very negative."""
    gen = torch.Generator().manual_seed(0)
    cases = {
        "8 random log-probabilities": (-torch.rand(8, generator=gen) * 4 - 0.01,),
        "near 0, log(1/2), very negative": (torch.tensor([-1e-8, -1e-4, -0.6931, -30.0, -80.0]),),
    }
    return check_function(
        fn, log_odds_reference, cases, ("logp",), mistakes=LOG_ODDS_MISTAKES, atol=1e-5, rtol=1e-5
    )


# ---------------------------------------------------------------------------- active parameters


def active_parameters_reference(
    total: int, num_local_experts: int, per_expert: int, num_hidden_layers: int, top_k: int
) -> int:
    """Parameters one token uses when the router picks ``top_k`` of ``num_local_experts`` experts
    per layer: everything but the unused experts (``demos.layers.moe.moe_parameter_counts``)."""
    return total - (num_local_experts - top_k) * per_expert * num_hidden_layers


ACTIVE_MISTAKES = [
    Mistake(
        lambda total, e, p, layers, k: k * p * layers,
        "that counts only the experts a token uses. The shared parameters (attention, embeddings, "
        "norms, routers) are used by every token too.",
    ),
    Mistake(
        lambda total, e, p, layers, k: total * k // e,
        "that scales the whole model by top_k / num_local_experts; only the experts are picked, "
        "the shared parameters are always used.",
    ),
    Mistake(
        lambda total, e, p, layers, k: total - (e - k) * p,
        "num_hidden_layers is missing: every layer has its own experts, and the unused ones sit "
        "idle in each layer.",
    ),
]


def check_active_parameters(fn: Callable[..., int]) -> Check:
    """Check a learner's ``active_parameters(total, num_local_experts, per_expert,
    num_hidden_layers, top_k)``: an int."""
    cases = {
        "8 experts, top-2, 2 layers": (10_000, 8, 500, 2, 2),
        "8 experts, top-1, 4 layers": (50_000, 8, 1_000, 4, 1),
        "all 4 experts used": (7_000, 4, 300, 3, 4),
        "16 experts, top-4, 1 layer": (100_000, 16, 5_000, 1, 4),
    }
    return check_function(
        fn, active_parameters_reference, cases, ACTIVE_ARGS, mistakes=ACTIVE_MISTAKES
    )


# ---------------------------------------------------------------------------- transfer: APO-zero


def apo_zero_loss_reference(lw, ll, rw, rl, beta):
    """TRL's ``loss_type="apo_zero"`` per pair, ``(b,)``: each answer's implicit reward
    ``beta (log pi - log pi_ref)`` on its own, ``1 - sigma(beta r_w) + sigma(beta r_l)``
    (trl==1.16.0, ``trainer/dpo_trainer.py``, which cites Eq. (7) of the APO paper)."""
    return 1 - torch.sigmoid(beta * (lw - rw)) + torch.sigmoid(beta * (ll - rl))


APO_MISTAKES = [
    Mistake(
        lambda lw, ll, rw, rl, beta: 1 - torch.sigmoid(beta * _h(lw, ll, rw, rl)),
        "this scores the margin h, the difference of the two log-ratios, as DPO does. APO-zero "
        "scores each answer on its own: 1 - sigma(beta r_w) pulls the chosen answer up, "
        "sigma(beta r_l) pushes the rejected one down.",
    ),
    Mistake(
        lambda lw, ll, rw, rl, beta: dpo_loss_reference(lw, ll, rw, rl, beta),
        "this is DPO's sigmoid loss, -log sigma(beta h). The exercise asks for APO-zero: "
        "1 - sigma(beta r_w) + sigma(beta r_l), with r = log pi - log pi_ref for each answer.",
    ),
    Mistake(
        lambda lw, ll, rw, rl, beta: (
            1 - torch.sigmoid(beta * (ll - rl)) + torch.sigmoid(beta * (lw - rw))
        ),
        "chosen and rejected are swapped: the loss must fall as the chosen answer gains.",
    ),
    Mistake(
        lambda lw, ll, rw, rl, beta: 1 - torch.sigmoid(beta * lw) + torch.sigmoid(beta * ll),
        "the reference model was left out: each reward is beta (log pi - log pi_ref).",
    ),
    Mistake(
        lambda lw, ll, rw, rl, beta: 1 - torch.sigmoid(lw - rw) + torch.sigmoid(ll - rl),
        "beta is missing: the rewards are beta (log pi - log pi_ref).",
    ),
]


def check_apo_zero_loss(fn: Callable[..., torch.Tensor]) -> Check:
    """Check a learner's per-pair APO-zero loss ``fn(chosen, rejected, ref_chosen, ref_rejected,
    beta)``: four ``(b,)`` tensors of sequence log-probabilities and a float -> ``(b,)``."""
    gen = torch.Generator().manual_seed(1)

    def logps(b: int, scale: float) -> torch.Tensor:
        return -torch.rand(b, generator=gen) * scale - 0.1

    cases = {
        "b=5, beta=0.1": (*(logps(5, 20) for _ in range(4)), 0.1),
        "b=3, beta=0.5": (*(logps(3, 5) for _ in range(4)), 0.5),
        "b=4, beta=2.0": (*(logps(4, 3) for _ in range(4)), 2.0),
    }
    return check_function(
        fn, apo_zero_loss_reference, cases, DPO_ARGS, mistakes=APO_MISTAKES, atol=1e-6, rtol=1e-5
    )
