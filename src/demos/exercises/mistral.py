"""Checkers for the Mistral chapter's exercises: the sliding-window mask."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, Convention, Mistake, check_function
from demos.layers.masks import sliding_window_mask


def _positions(t: int, s: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.arange(s - t, s)[:, None], torch.arange(s)[None, :]  # (t, 1), (1, s)


def _mask_paper_convention(t: int, s: int, window: int) -> torch.Tensor:
    """Keys ``p - window <= j <= p``: ``window + 1`` keys, as mistral-src's prefill mask."""
    q_pos, k_pos = _positions(t, s)
    return (k_pos <= q_pos) & (k_pos >= q_pos - window)


def _mask_not_causal(t: int, s: int, window: int) -> torch.Tensor:
    q_pos, k_pos = _positions(t, s)
    return (k_pos - q_pos).abs() < window


def _mask_queries_from_zero(t: int, s: int, window: int) -> torch.Tensor:
    q_pos, k_pos = torch.arange(t)[:, None], torch.arange(s)[None, :]
    return (k_pos <= q_pos) & (k_pos > q_pos - window)


MISTAKES = [
    Mistake(
        _mask_paper_convention,
        "each query sees window + 1 keys. transformers (and this book) let a query see "
        "`window` keys counting itself: key j is visible from position p when p - window < j <= p. "
        "(The paper's wording, 'positions between i - W and i', reads as W + 1.)",
    ),
    Mistake(_mask_not_causal, "the mask looks ahead too: a query must not see keys after it."),
    Mistake(
        _mask_queries_from_zero,
        "the queries were placed at positions 0 .. t - 1. They are the *last* t positions: "
        "query i sits at s - t + i (t < s when a KV cache holds earlier tokens).",
    ),
]


def _from_inverted(mask):
    """A boolean mask that hides every query's own key is written True = hidden."""
    if not (isinstance(mask, torch.Tensor) and mask.dtype == torch.bool and mask.dim() == 2):
        return None
    t, s = mask.shape
    if s < t or mask[torch.arange(t), torch.arange(s - t, s)].any():  # (t,): each query's own key
        return None
    return ~mask


def _from_additive(mask):
    """A float mask of 0 (visible) and -inf or a large negative number (hidden)."""
    if not (isinstance(mask, torch.Tensor) and mask.dtype.is_floating_point):
        return None
    hidden = mask <= -1e4
    return mask == 0 if bool(((mask == 0) | hidden).all()) else None


def _from_zero_one(mask):
    """A 0/1 mask of numbers (float or int) instead of booleans."""
    if not (isinstance(mask, torch.Tensor) and mask.dtype != torch.bool):
        return None
    return mask == 1 if bool(((mask == 0) | (mask == 1)).all()) else None


CONVENTIONS = [
    Convention(
        _from_inverted,
        "the mask is inverted: it marks hidden keys with True. Here True means 'may attend' "
        "(as torch's scaled_dot_product_attention's boolean attn_mask): return ~mask.",
    ),
    Convention(
        _from_additive,
        "this is an additive mask (0 where visible, -inf where hidden), the form added to the "
        "scores. The exercise asks for the boolean form, True where visible: return mask == 0.",
    ),
    Convention(
        _from_zero_one,
        "the mask holds numbers 0/1; the exercise asks for a boolean tensor: return mask.bool().",
    ),
]


def _where(index: tuple, args: tuple) -> str:
    i, j = index
    t, s, _ = args
    return f"query {i} (position {s - t + i}) and key {j}"


def check_sliding_window_mask(fn: Callable[[int, int, int], torch.Tensor]) -> Check:
    """Check a learner's ``sliding_window_mask(t, s, window)``: a boolean ``(t, s)`` tensor, True where
    the query (one of the last ``t`` of ``s`` positions) may attend to the key."""
    cases = {
        "prompt, window 3": (6, 6, 3),
        "window 1 (itself only)": (8, 8, 1),
        "window longer than the prompt": (5, 5, 9),
        "one decoding step after 6 cached tokens": (1, 7, 3),
        "3 new tokens after 7 cached": (3, 10, 4),
    }
    return check_function(
        fn,
        sliding_window_mask,
        cases,
        ("t", "s", "window"),
        mistakes=MISTAKES,
        conventions=CONVENTIONS,
        where=_where,
    )
