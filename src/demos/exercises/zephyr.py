"""Checkers for the Zephyr chapter's exercises: the DPO loss and ORPO's log-odds."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, check_tensor_function
from demos.training.preference import dpo_loss, log1mexp


def _dpo_h(lw, ll, rw, rl):
    return (lw - rw) - (ll - rl)


def _dpo_no_reference(lw, ll, rw, rl, beta):
    return -torch.nn.functional.logsigmoid(beta * (lw - ll))


def _dpo_swapped(lw, ll, rw, rl, beta):
    return -torch.nn.functional.logsigmoid(-beta * _dpo_h(lw, ll, rw, rl))


def _dpo_no_log(lw, ll, rw, rl, beta):
    return -torch.sigmoid(beta * _dpo_h(lw, ll, rw, rl))


def _dpo_no_beta(lw, ll, rw, rl, beta):
    return -torch.nn.functional.logsigmoid(_dpo_h(lw, ll, rw, rl))


def _dpo_log_of_sigmoid(lw, ll, rw, rl, beta):
    return -torch.log(torch.sigmoid(beta * _dpo_h(lw, ll, rw, rl)))


def check_dpo_loss(fn: Callable[..., torch.Tensor]) -> Check:
    """Check a learner's per-pair sigmoid DPO loss ``fn(chosen, rejected, ref_chosen, ref_rejected, beta)``:
    four ``(b,)`` tensors of sequence log-probabilities and a float -> ``(b,)`` losses."""
    gen = torch.Generator().manual_seed(0)

    def logps(b: int, scale: float) -> torch.Tensor:
        return -torch.rand(b, generator=gen) * scale - 0.1

    cases = [(logps(6, 20), logps(6, 20), logps(6, 20), logps(6, 20), 0.1) for _ in range(2)]
    cases.append((logps(3, 5), logps(3, 5), logps(3, 5), logps(3, 5), 0.5))
    # a policy that prefers the rejected answer by a wide margin: beta * h is about -120
    lw = torch.tensor([-80.0, -75.0])
    cases.append((lw, torch.tensor([-20.0, -15.0]), torch.tensor([-20.0, -16.0]), lw.clone(), 1.0))
    hints = [
        (
            _dpo_no_reference,
            "the reference model was left out. DPO's margin is h = (log pi(y_w) - log pi_ref(y_w)) - "
            "(log pi(y_l) - log pi_ref(y_l)); without pi_ref the loss ignores where training started.",
        ),
        (
            _dpo_swapped,
            "chosen and rejected are swapped: the loss must fall as the chosen answer gains.",
        ),
        (_dpo_no_log, "this is -sigma(beta h); the loss is -log sigma(beta h)."),
        (_dpo_no_beta, "beta is missing: the loss is -log sigma(beta h)."),
        (
            _dpo_log_of_sigmoid,
            "-log(sigmoid(x)) underflows to log(0) = -inf for a very negative x: use "
            "torch.nn.functional.logsigmoid, which computes log sigma(x) without forming sigma(x).",
        ),
    ]
    return check_tensor_function(
        fn, lambda *a: dpo_loss(*a)[0], cases, atol=1e-5, rtol=1e-5, hints=hints
    )


def _log_odds_naive(logp: torch.Tensor) -> torch.Tensor:
    return logp - torch.log(1 - torch.exp(logp))


def _odds_not_log(logp: torch.Tensor) -> torch.Tensor:
    return torch.exp(logp) / (1 - torch.exp(logp))


def _log_odds_without_denominator(logp: torch.Tensor) -> torch.Tensor:
    return logp


def check_log_odds(fn: Callable[[torch.Tensor], torch.Tensor]) -> Check:
    """Check a learner's ``log_odds(logp)``: ``log(P / (1 - P))`` from ``log P <= 0`` (ORPO's building
    block), elementwise, accurate for ``log P`` near 0 and very negative."""
    gen = torch.Generator().manual_seed(0)
    cases = [
        (-torch.rand(8, generator=gen) * 4 - 0.01,),
        (torch.tensor([-1e-8, -1e-4, -0.6931, -30.0, -80.0]),),  # near 0, log(1/2), very negative
    ]
    hints = [
        (
            _log_odds_naive,
            "log(1 - exp(log P)) rounds to log(0) when log P is close to 0 (P close to 1, exactly the "
            "well-trained case). Compute log(1 - P) as torch.log(-torch.expm1(log P)) near 0, or use "
            "demos.training.preference.log1mexp.",
        ),
        (_odds_not_log, "this is the odds P / (1 - P); take its logarithm."),
        (_log_odds_without_denominator, "this is log P; the log-odds also subtract log(1 - P)."),
    ]
    return check_tensor_function(
        fn, lambda lp: lp - log1mexp(lp), cases, atol=1e-5, rtol=1e-5, hints=hints
    )
