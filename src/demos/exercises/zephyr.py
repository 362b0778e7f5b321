"""Checkers for the Zephyr chapter's exercises: the DPO loss, ORPO's log-odds, the active parameters of a
mixture of experts, and a preference loss the chapter does not derive (transfer): TRL's
``loss_type="apo_zero"``, whose per-answer form the tests prove equal to ``trl.DPOTrainer``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded

DPO_ARGS = ("chosen_logps", "rejected_logps", "ref_chosen_logps", "ref_rejected_logps", "beta")


def check_dpo_loss(fn: Callable[..., torch.Tensor]) -> Check:
    """Check a learner's per-pair sigmoid DPO loss ``fn(chosen, rejected, ref_chosen, ref_rejected, beta)``:
    four ``(b,)`` tensors of sequence log-probabilities and a float -> ``(b,)`` losses."""

    return check_recorded(fn, recorded(__name__, "check_dpo_loss"), DPO_ARGS, atol=1e-5, rtol=1e-5)


def check_log_odds(fn: Callable[[torch.Tensor], torch.Tensor]) -> Check:
    """Check a learner's ``log_odds(logp)``: ``log(P / (1 - P))`` from ``log P <= 0`` (ORPO's building
    block), elementwise, accurate for ``log P`` near 0 and very negative."""
    return check_recorded(fn, recorded(__name__, "check_log_odds"), ("logp",), atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------- active parameters


ACTIVE_ARGS = ("total", "num_local_experts", "per_expert", "num_hidden_layers", "top_k")


def check_active_parameters(fn: Callable[..., int]) -> Check:
    """Check a learner's ``active_parameters(total, num_local_experts, per_expert,
    num_hidden_layers, top_k)``: an int."""
    return check_recorded(fn, recorded(__name__, "check_active_parameters"), ACTIVE_ARGS)


# ---------------------------------------------------------------------------- transfer: APO-zero


def check_apo_zero_loss(fn: Callable[..., torch.Tensor]) -> Check:
    """Check a learner's per-pair APO-zero loss ``fn(chosen, rejected, ref_chosen, ref_rejected,
    beta)``: four ``(b,)`` tensors of sequence log-probabilities and a float -> ``(b,)``."""

    return check_recorded(
        fn, recorded(__name__, "check_apo_zero_loss"), DPO_ARGS, atol=1e-6, rtol=1e-5
    )
