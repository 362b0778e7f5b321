"""The Zephyr chapter's trap: ``log(1 - P)`` as ``log1p(-exp(log P))`` when P is close to 1.

ORPO's odds ``P / (1 - P)`` need ``log(1 - P)`` from a length-averaged ``log P`` [hong2024orpo].
For a confident policy ``log P`` is close to 0, ``exp(log P)`` rounds to a float near 1, and
``1 - exp(log P)`` keeps only the rounding: the naive form loses most of its digits. ``log1mexp``
(``log(-expm1(x))`` near 0) keeps them (Maechler 2012,
"Accurately computing log(1 - exp(-|a|))"). Measured on ORPO's log-odds ratio
(``demos.training.preference.orpo_loss``) in fp32 for pairs with ``log P`` from -1e-6 to -2, against
its exact value (decimal arithmetic at 200 digits from the same fp32 inputs). TRL computes the
stable form too (``tests/training/test_preference.py`` compares ours with it).

Reference implementation: trl==1.16.0, trl/experimental/orpo/orpo_trainer.py::log1mexp,
::ORPOTrainer.odds_ratio_loss.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

import torch

from demos.traps import Measured, Trap

QUANTITY = "ORPO's log-odds ratio (log of Eq. (5)), fp32, log P from -1e-6 to -2"
TOLERANCE = 1e-5  # fp32 log-odds of size ~1: the stable form is within a few ulps (~1e-7)
CHOSEN = (-1e-6, -2e-5, -3e-4, -0.01)  # log P of the preferred answers: P close to 1
REJECTED = (-3e-6, -1e-4, -0.5, -2.0)


def exact_log_odds_ratio(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """``(c - r) - (log(1 - e^c) - log(1 - e^r))`` at 200 digits, rounded once to float64."""
    out = []
    with localcontext() as ctx:
        ctx.prec = 200
        for c, r in zip(chosen.tolist(), rejected.tolist(), strict=True):
            c, r = Decimal(c), Decimal(r)  # the fp32 inputs, exactly
            out.append(float((c - r) - ((1 - c.exp()).ln() - (1 - r.exp()).ln())))
    return torch.tensor(out, dtype=torch.float64)


def naive_log_odds_ratio(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """The wrong version: ``log(1 - P) = log1p(-exp(log P))``."""
    log1m_w, log1m_l = torch.log1p(-torch.exp(chosen)), torch.log1p(-torch.exp(rejected))
    return (chosen - rejected) - (log1m_w - log1m_l)


def measure() -> Measured:
    from demos.training.preference import orpo_loss

    chosen, rejected = torch.tensor(CHOSEN), torch.tensor(REJECTED)  # fp32
    expected = exact_log_odds_ratio(chosen, rejected)
    _, right = orpo_loss(chosen, rejected)
    wrong = naive_log_odds_ratio(chosen, rejected)
    return Measured.of(right, wrong, expected, TOLERANCE, QUANTITY)


TRAPS = [
    Trap(
        chapter="zephyr",
        title="log(1 - P) as log1p(-exp(log P)) when P -> 1",
        wrong="log1m = torch.log1p(-torch.exp(logps))",
        right="log1m = log1mexp(logps)  # log(-expm1(x)) near 0",
        shows="ORPO's odds for confident answers (log P > -1e-3); above log P = -2.7e-8 "
        "the naive form returns -inf and the loss or its gradient is no longer finite",
        measure=measure,
    ),
]
