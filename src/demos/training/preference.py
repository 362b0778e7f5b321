"""Preference losses as pure functions of tensors: DPO (sigmoid, hinge, IPO) and ORPO's odds-ratio term.

A preference pair is a prompt with a *chosen* (preferred) and a *rejected* completion. DPO trains a policy
against a frozen reference model; ORPO needs no reference model and adds its odds-ratio term to the usual
next-token loss on the chosen completion. The trainers (ours in the chapter, TRL's) only call these functions.

Axes:
    b  batch (preference pairs, or sequences for ``sequence_logps``)
    t  sequence length (prompt + completion, padded)
    v  vocabulary size

Notation (the papers'):
    pi, pi_ref   policy and frozen reference model
    y_w, y_l     chosen ("winning") and rejected ("losing") completion
    beta         DPO/ORPO strength; IPO's tau

References:
    rafailov2023dpo  DPO, Eq. (7); rewards r = beta * log(pi / pi_ref), Sec. 5.
    azar2023ipo      IPO, Eq. (17).
    hong2024orpo     ORPO, Eqs. (4) to (7).

Reference implementation:
    trl==1.16.0, trainer/dpo_trainer.py::DPOTrainer._compute_loss (sigmoid, hinge, ipo);
    trainer/utils.py::selective_log_softmax; experimental/orpo/orpo_trainer.py::ORPOTrainer.odds_ratio_loss,
    ::log1mexp, ::ORPOTrainer.get_batch_logps
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOSS_TYPES = ("sigmoid", "hinge", "ipo")


def _check_same_shape(**tensors: torch.Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"inputs must have the same shape, got {shapes}")


def _check_beta(beta: float) -> None:
    if not beta > 0:
        raise ValueError(f"beta ({beta!r}) must be > 0")


def sequence_logps(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100, average: bool = False
) -> torch.Tensor:
    """Log-probability of each sequence's labelled tokens: ``(b, t, v), (b, t) -> (b,)``.

    The logits at position ``i`` predict the token at ``i + 1`` (the one-token shift), so the first label
    and the last logit are dropped. Labels equal to ``ignore_index`` (the prompt and the padding) do not
    count. ``average=True`` divides by the number of counted tokens (ORPO's and IPO's length-normalised
    log-probability).
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} must be labels {tuple(labels.shape)} plus a vocabulary axis"
        )
    logits, labels = logits[:, :-1], labels[:, 1:]  # (b, t-1, v), (b, t-1): position i predicts i+1
    mask = labels != ignore_index  # (b, t-1)
    safe = labels.masked_fill(~mask, 0)  # any valid index; masked out below
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # softmax in >= fp32
    token_logps = logits.log_softmax(-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)  # (b, t-1)
    total = (token_logps * mask).sum(-1)  # (b,)
    if average:
        return total / mask.sum(-1)
    return total


def dpo_loss(
    chosen_logps: torch.Tensor,
    rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair DPO loss and implicit rewards: four ``(b,)`` tensors -> ``(losses, chosen_r, rejected_r)``.

    With ``h = (log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l))``:

    * ``sigmoid`` (DPO, Eq. (7) of [rafailov2023dpo]): ``-log sigma(beta h)``. With ``label_smoothing = e > 0``
      it is the conservative variant ``-(1 - e) log sigma(beta h) - e log sigma(-beta h)``, which assumes
      labels are flipped with probability ``e``. (TRL 1.16's ``sigmoid`` ignores ``label_smoothing``; the two
      agree at ``e = 0``.)
    * ``hinge`` (SLiC-style): ``relu(1 - beta h)``.
    * ``ipo`` (Eq. (17) of [azar2023ipo], ``beta`` is the paper's tau): ``(h - 1 / (2 beta))**2``. TRL divides
      each completion's summed log-ratio by its number of completion tokens before taking ``h``; since the
      policy and the reference score the same tokens, that equals passing **length-averaged** log-probs
      (``sequence_logps(..., average=True)``) here, which is what the caller must do to match TRL.

    Rewards are ``beta * (log pi - log pi_ref)`` per completion (Sec. 5 of [rafailov2023dpo]), detached.
    """
    _check_same_shape(
        chosen_logps=chosen_logps,
        rejected_logps=rejected_logps,
        ref_chosen_logps=ref_chosen_logps,
        ref_rejected_logps=ref_rejected_logps,
    )
    _check_beta(beta)
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type ({loss_type!r}) must be one of {LOSS_TYPES}")
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing ({label_smoothing!r}) must be in [0, 0.5)")
    if label_smoothing and loss_type != "sigmoid":
        raise ValueError(
            f"label_smoothing ({label_smoothing!r}) applies to loss_type='sigmoid' only"
        )

    chosen_logratios = chosen_logps - ref_chosen_logps  # log pi/pi_ref (y_w)
    rejected_logratios = rejected_logps - ref_rejected_logps  # log pi/pi_ref (y_l)
    h = chosen_logratios - rejected_logratios
    if loss_type == "sigmoid":  # Eq. (7) of [rafailov2023dpo]
        losses = -(1 - label_smoothing) * F.logsigmoid(beta * h)
        if label_smoothing:
            losses = losses - label_smoothing * F.logsigmoid(-beta * h)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * h)
    else:  # ipo, Eq. (17) of [azar2023ipo]
        losses = (h - 1 / (2 * beta)) ** 2
    return losses, beta * chosen_logratios.detach(), beta * rejected_logratios.detach()


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(x))`` for ``x < 0``, accurate near 0 and for very negative ``x``.

    Branches at ``-log 2``: ``log(-expm1(x))`` for x close to 0, ``log1p(-exp(x))`` below [Maechler 2012].
    """
    return torch.where(x < -math.log(2), torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def orpo_loss(
    chosen_logps: torch.Tensor, rejected_logps: torch.Tensor, beta: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """ORPO's odds-ratio term per pair and the log-odds ratio: ``(b,), (b,) -> (losses, log_odds_ratio)``.

    The inputs are **length-averaged** log-probabilities ``log P(y|x)`` (Eqs. (3)-(4) of [hong2024orpo]), so
    ``P <= 1`` and ``odds(y) = P / (1 - P)``. With ``log odds = log P - log(1 - P)``, where
    ``log(1 - P) = log1mexp(log P)`` is computed stably,

        log_odds_ratio = log odds(y_w) - log odds(y_l)            (log of Eq. (5))
        losses = -beta * log sigma(log_odds_ratio)  >= 0          (Eq. (7), weighted by beta = lambda)

    The ORPO objective is ``NLL(chosen) + losses.mean()`` (Eq. (6)): no reference model appears anywhere.
    TRL's ``odds_ratio_loss`` returns ``beta * log sigma(...)`` (<= 0, the negative of ours) and subtracts it.
    """
    _check_same_shape(chosen_logps=chosen_logps, rejected_logps=rejected_logps)
    _check_beta(beta)
    if (chosen_logps > 0).any() or (rejected_logps > 0).any():
        raise ValueError("log-probabilities must be <= 0")
    dtype = torch.promote_types(
        chosen_logps.dtype, torch.float32
    )  # bf16 -> fp32, as TRL; fp64 stays
    chosen_logps, rejected_logps = chosen_logps.to(dtype), rejected_logps.to(dtype)
    log_odds_ratio = (chosen_logps - rejected_logps) - (
        log1mexp(chosen_logps) - log1mexp(rejected_logps)
    )  # log of Eq. (5): log [odds(y_w) / odds(y_l)]
    return -beta * F.logsigmoid(log_odds_ratio), log_odds_ratio
