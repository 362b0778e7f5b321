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
from numbers import Real

import torch
import torch.nn.functional as F

from demos.validation import check_finite_number, check_floating, check_log_probs

LOSS_TYPES = ("sigmoid", "hinge", "ipo")


def _check_same_shape(**tensors: torch.Tensor) -> None:
    check_floating(**tensors)  # a plain float or a list: say so, not AttributeError
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"inputs must have the same shape, got {shapes}")


def _check_beta(beta: float) -> None:
    check_finite_number("beta", beta)
    if not beta > 0:
        raise ValueError(f"beta ({beta!r}) must be > 0")


def _compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """One rule for every loss here: at least fp32 (bf16/fp16 are upcast, as TRL), fp64 stays fp64."""
    dtype = torch.float32
    for t in tensors:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def sequence_logps(
    logits: torch.Tensor,
    labels: torch.Tensor,
    ignore_index: int = -100,
    average: bool = False,
    allow_empty: bool = False,
) -> torch.Tensor:
    """Log-probability of each sequence's labelled tokens: ``(b, t, v), (b, t) -> (b,)``.

    The logits at position ``i`` predict the token at ``i + 1`` (the one-token shift), so the first label
    and the last logit are dropped. Labels equal to ``ignore_index`` (the prompt and the padding) do not
    count: their positions are *selected out* before the softmax, so NaN or -inf logits there change
    nothing (TRL's ``get_batch_logps`` multiplies by the mask instead, and ``0 * NaN`` is NaN).
    ``average=True`` divides by the number of counted tokens (ORPO's and IPO's length-normalised
    log-probability). Computed in ``promote_types(logits.dtype, float32)``.

    Raises:
        ValueError: shapes that do not fit; non-floating logits or non-integer labels; a label that is
            neither ``ignore_index`` nor in ``[0, v)`` (e.g. a padding id that is not ``ignore_index``);
            with ``average=True``, a row with no labelled token (every label after the first ignored,
            or ``t == 1``), unless ``allow_empty=True``, which gives such a row 0 as TRL's DPO trainer
            does (it divides by the count clamped to at least 1).
    """
    check_floating(logits=logits)
    if not isinstance(labels, torch.Tensor) or labels.dtype not in (torch.int32, torch.int64):
        got = labels.dtype if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be an integer tensor, got {got}")
    if logits.dim() != 3 or logits.shape[:-1] != labels.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} must be labels {tuple(labels.shape)} plus a vocabulary axis"
        )
    vocab = logits.shape[-1]
    logits, labels = logits[:, :-1], labels[:, 1:]  # (b, t-1, v), (b, t-1): position i predicts i+1
    mask = labels != ignore_index  # (b, t-1)
    bad = mask & ((labels < 0) | (labels >= vocab))
    if bad.any():
        row, pos = (int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"labels must lie in [0, {vocab}) or equal ignore_index ({ignore_index}), got "
            f"{int(labels[row, pos])} at row {row}, position {pos + 1} (a padding id must be ignore_index)"
        )
    count = mask.sum(-1)  # (b,)
    if average and not allow_empty and (count == 0).any():
        row = int((count == 0).nonzero()[0])
        raise ValueError(
            f"row {row} has no labelled token (labels[{row}, 1:] are all ignore_index {ignore_index}, "
            "or t == 1): its average log-probability is undefined"
        )
    dtype = torch.promote_types(logits.dtype, torch.float32)  # softmax in >= fp32
    picked = logits[mask].to(dtype).log_softmax(-1)  # (m, v): only the labelled positions
    picked = picked.gather(-1, labels[mask].unsqueeze(-1)).squeeze(-1)  # (m,)
    token_logps = torch.zeros(labels.shape, dtype=dtype, device=logits.device)
    token_logps = token_logps.index_put((mask,), picked)  # (b, t-1): 0 where ignored
    total = token_logps.sum(-1)  # (b,)
    if average:
        return total / count.clamp(min=1)  # the clamp matters only for allow_empty rows (0 / 1)
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
    Computed in ``promote_types(dtype, float32)`` (bf16 -> fp32, fp64 stays), as :func:`orpo_loss`.

    Raises:
        ValueError: shapes differ, ``beta <= 0``, unknown ``loss_type``, ``label_smoothing`` outside
            ``[0, 0.5)`` or with a loss other than sigmoid, a log-probability > 0, NaN or infinite.
    """
    _check_same_shape(
        chosen_logps=chosen_logps,
        rejected_logps=rejected_logps,
        ref_chosen_logps=ref_chosen_logps,
        ref_rejected_logps=ref_rejected_logps,
    )
    _check_beta(beta)
    check_log_probs(
        chosen_logps=chosen_logps,
        rejected_logps=rejected_logps,
        ref_chosen_logps=ref_chosen_logps,
        ref_rejected_logps=ref_rejected_logps,
    )
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type ({loss_type!r}) must be one of {LOSS_TYPES}")
    if not isinstance(label_smoothing, Real) or not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing ({label_smoothing!r}) must be in [0, 0.5)")
    if label_smoothing and loss_type != "sigmoid":
        raise ValueError(
            f"label_smoothing ({label_smoothing!r}) applies to loss_type='sigmoid' only"
        )

    dtype = _compute_dtype(chosen_logps, rejected_logps, ref_chosen_logps, ref_rejected_logps)
    chosen_logps, rejected_logps = chosen_logps.to(dtype), rejected_logps.to(dtype)
    ref_chosen_logps, ref_rejected_logps = ref_chosen_logps.to(dtype), ref_rejected_logps.to(dtype)
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
    Each branch sees only the inputs it serves (the others are replaced by ``-log 2``), so the branch
    not taken cannot send ``0 * inf = NaN`` into the gradient (``log1p(-exp(x))`` is -inf for
    ``|x| < 6e-8`` in fp32). ``log1mexp(0) = -inf``.

    Raises:
        ValueError: ``x`` holds a value > 0 (``1 - exp(x) < 0``) or NaN (-inf is fine: it gives 0).
    """
    check_log_probs(finite=False, x=x)
    far = x < -math.log(2)
    middle = torch.full_like(x, -math.log(2))
    return torch.where(
        far,
        torch.log1p(-torch.exp(torch.where(far, x, middle))),
        torch.log(-torch.expm1(torch.where(far, middle, x))),
    )


def _log_one_minus_p(logps: torch.Tensor) -> torch.Tensor:
    """``log(1 - P)`` from ``log P`` for ORPO's odds: ``log1mexp``'s value, with a finite gradient at P -> 1.

    At ``log P = 0`` exactly (a confident policy, its average log-prob rounded to 0.0), ``log(1 - P)``
    is -inf, and the loss or its gradient NaN. There the value is ``2 log(s)``, s the smallest positive
    number of the dtype (-207 in fp32): finite, and below ``log(1 - P)`` for every representable
    ``P < 1`` (at least ``log(s)``) with room to spare, so that P = 1 still beats P = 1 - s and a
    saturated loss (TRL's exact 0) stays 0 to within ``exp(-103)``. Everywhere else the value is
    ``log1mexp``'s, TRL's. The *gradient*, ``-P / (1 - P) ~ 1 / log P``, exceeds what fp32 can hold
    for ``|log P| < 3e-39``; it is taken at ``log P <= -sqrt(tiny)`` (-1.1e-19 in fp32), so it stays
    below 1e19. Below that threshold value and gradient are exactly ``log1mexp``'s.
    """
    info = torch.finfo(logps.dtype)
    smallest = info.smallest_normal * info.eps  # the smallest positive (subnormal) number
    exact = torch.where(
        logps < 0, log1mexp(logps.clamp(max=-smallest)), 2 * math.log(smallest)
    )  # log1mexp, finite at 0 (-0.0 included)
    steep = log1mexp(logps.clamp(max=-math.sqrt(info.smallest_normal)))
    return steep + (exact - steep).detach()  # exact's value (to 1 ulp), steep's gradient


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

    Where a log-probability is exactly 0 (P = 1), TRL's ``log1mexp`` gives -inf: its loss is then 0 with
    a NaN gradient (chosen at 0), -inf (rejected at 0) or NaN (both at 0). Ours stays finite there, loss and
    gradient (see ``_log_one_minus_p``), and equals TRL's wherever TRL's is finite.

    Raises:
        ValueError: shapes differ, ``beta <= 0``, a log-probability > 0, NaN or infinite.
    """
    _check_same_shape(chosen_logps=chosen_logps, rejected_logps=rejected_logps)
    _check_beta(beta)
    check_log_probs(chosen_logps=chosen_logps, rejected_logps=rejected_logps)
    dtype = _compute_dtype(chosen_logps, rejected_logps)  # bf16 -> fp32, as TRL; fp64 stays
    chosen_logps, rejected_logps = chosen_logps.to(dtype), rejected_logps.to(dtype)
    log1mexp_w, log1mexp_l = _log_one_minus_p(chosen_logps), _log_one_minus_p(rejected_logps)
    log_odds_ratio = (chosen_logps - rejected_logps) - (
        log1mexp_w - log1mexp_l
    )  # log of Eq. (5): log [odds(y_w) / odds(y_l)]
    return -beta * F.logsigmoid(log_odds_ratio), log_odds_ratio
