"""Checkers for the Mistral chapter's exercises: a dilated sliding-window mask (Longformer's variant of
the window), the reach and cache size of a windowed model, and which position each slot of a
rolling-buffer cache holds (transfer)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, Convention, check_recorded
from demos.exercises.recorded import recorded


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
    t, s = args[0], args[1]
    return f"query {i} (position {s - t + i}) and key {j}"


def check_dilated_window_mask(fn: Callable[[int, int, int, int], torch.Tensor]) -> Check:
    """Check a learner's ``dilated_window_mask(t, s, window, dilation)``: a boolean ``(t, s)``
    tensor, True where the query (one of the last ``t`` of ``s`` positions) may attend to the key:
    ``window`` keys, itself included, ``dilation`` positions apart."""
    return check_recorded(
        fn,
        recorded(__name__, "check_dilated_window_mask"),
        ("t", "s", "window", "dilation"),
        conventions=CONVENTIONS,
        where=_where,
    )


# ---------------------------------------------------------------------------- reach and cache size


def check_reach_and_cache(fn: Callable[..., tuple[int, int]]) -> Check:
    """Check a learner's ``reach_and_cache(num_hidden_layers, window, num_key_value_heads, head_dim,
    bytes_per_value) -> (reach, cache_bytes)``: two ints."""
    return check_recorded(
        fn,
        recorded(__name__, "check_reach_and_cache"),
        ("num_hidden_layers", "window", "num_key_value_heads", "head_dim", "bytes_per_value"),
        names=("reach", "cache_bytes"),
    )


# ---------------------------------------------------------------------------- transfer: the slots


def check_slot_positions(fn: Callable[[int, int], torch.Tensor]) -> Check:
    """Check a learner's ``slot_positions(s, window)``: the position each slot of a rolling-buffer
    cache holds after ``s`` tokens, an int64 ``(window,)`` tensor, -1 where nothing was written."""

    def where(index: tuple, args: tuple) -> str:
        return f"slot {index[0]}"

    return check_recorded(
        fn, recorded(__name__, "check_slot_positions"), ("s", "window"), where=where
    )
