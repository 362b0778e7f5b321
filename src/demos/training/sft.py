"""Supervised fine-tuning on conversations: the next-token loss counted only where the labels say.

A chat model is fine-tuned on whole conversations, but only the assistant's tokens are targets: the
labels copy the input ids where a token is trained on and hold ``IGNORE_INDEX`` (-100) everywhere
else (the user's turns, the system prompt, padding). The loss is then the mean cross-entropy of the
next-token prediction over the counted positions only, as transformers' ``ForCausalLMLoss`` computes
it when a model is called with ``labels=``. Vicuna was trained this way, its loss computed only on
the chatbot's output [chiang2023vicuna].

Axes:
    b  batch
    t  sequence length
    v  vocabulary size

References:
    chiang2023vicuna  the Vicuna blog, "Training": the loss is computed on the chatbot's output only.

Reference implementation:
    transformers==5.23.0, loss/loss_utils.py::ForCausalLMLoss (shift, float32 upcast, mean over the
    labels that are not -100). Deviation: where no position is counted transformers returns NaN;
    ours raises ``ValueError`` (a loss over nothing is a bug in the labels, not a number).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from demos.validation import check_floating

IGNORE_INDEX = -100  # transformers' (and PyTorch's) label for "not a target"


def _check_ids(name: str, ids: torch.Tensor) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dtype.is_floating_point or ids.dtype == torch.bool:
        got = ids.dtype if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise ValueError(f"{name} must be an integer tensor of shape (b, t), got {got}")
    if ids.dim() != 2:
        raise ValueError(f"{name} must have shape (b, t), got {tuple(ids.shape)}")


def masked_labels(input_ids: torch.Tensor, trained: torch.Tensor) -> torch.Tensor:
    """Labels for ``input_ids (b, t)``: the id where ``trained (b, t)`` is True, ``IGNORE_INDEX`` elsewhere.

    Raises:
        ValueError: ``input_ids`` not an integer ``(b, t)`` tensor, or ``trained`` not a boolean
            tensor of the same shape.
    """
    _check_ids("input_ids", input_ids)
    if not isinstance(trained, torch.Tensor) or trained.dtype != torch.bool:
        got = trained.dtype if isinstance(trained, torch.Tensor) else type(trained).__name__
        raise ValueError(f"trained must be a boolean tensor (True: a target), got {got}")
    if trained.shape != input_ids.shape:
        raise ValueError(
            f"trained {tuple(trained.shape)} must have input_ids' shape {tuple(input_ids.shape)}"
        )
    return input_ids.masked_fill(~trained, IGNORE_INDEX)  # (b, t)


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the positions whose *next* label is not ``IGNORE_INDEX``.

    Position ``i``'s logits predict ``labels[:, i + 1]``; the last position predicts nothing.
    Computed in float32 at least (float64 stays float64), as transformers upcasts.

    Args:
        logits: ``(b, t, v)`` floating point.
        labels: ``(b, t)`` integers, each in ``[0, v)`` or ``IGNORE_INDEX``.

    Returns:
        A 0-d tensor: the loss, in nats per counted token.

    Raises:
        ValueError: wrong shapes or dtypes, a label outside ``[0, v)`` other than ``IGNORE_INDEX``,
            or no counted position at all (transformers would return NaN).
    """
    check_floating(logits=logits)
    _check_ids("labels", labels)
    if logits.dim() != 3 or logits.shape[:2] != labels.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} must be (b, t, v) with labels' (b, t) = {tuple(labels.shape)}"
        )
    v = logits.shape[-1]
    bad = (labels != IGNORE_INDEX) & ((labels < 0) | (labels >= v))
    if bad.any():
        raise ValueError(
            f"labels must lie in [0, {v}) or be {IGNORE_INDEX}, got {labels[bad][0].item()}"
        )
    targets = labels[:, 1:]  # (b, t - 1): the token each position predicts
    if not (targets != IGNORE_INDEX).any():
        raise ValueError(
            f"no label to predict: every label after the first is {IGNORE_INDEX} (the loss over "
            "nothing would be NaN)"
        )
    work = torch.promote_types(logits.dtype, torch.float32)
    scores = logits[:, :-1].to(work)  # (b, t - 1, v)
    return F.cross_entropy(scores.reshape(-1, v), targets.reshape(-1), ignore_index=IGNORE_INDEX)
