"""References and known mistakes for the Mistral chapter's exercises: a dilated sliding-window mask
(Longformer's variant of the window), the reach and cache size of a windowed model, and which position
each slot of a rolling-buffer cache holds (transfer)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, Mistake, check_function
from demos.exercises.mistral import (  # shared with the package
    CONVENTIONS,
    _where,
)
from demos.layers.kv_cache import kv_cache_bytes_per_token


def _positions(t: int, s: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.arange(s - t, s)[:, None], torch.arange(s)[None, :]  # (t, 1), (1, s)


def dilated_window_mask_reference(t: int, s: int, window: int, dilation: int) -> torch.Tensor:
    """Longformer's dilated sliding window, causal, in this chapter's convention: a boolean
    ``(t, s)`` tensor, True where query ``i`` (position ``p = s - t + i``) may attend to key ``j``:
    ``p - j`` is one of ``0, dilation, ..., (window - 1) * dilation``. ``dilation = 1`` is
    Mistral's window."""
    for name, value in (("t", t), ("window", window), ("dilation", dilation)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(s, int) or s < t:
        raise ValueError(
            f"s must be an int >= t = {t} (the queries are the last t of s), got {s!r}"
        )
    q_pos, k_pos = _positions(t, s)
    back = q_pos - k_pos  # (t, s): how many positions back each key is
    return (back >= 0) & (back % dilation == 0) & (back // dilation < window)


def _back(t: int, s: int) -> torch.Tensor:
    q_pos, k_pos = _positions(t, s)
    return q_pos - k_pos  # (t, s)


def _mask_window_plus_one(t: int, s: int, window: int, dilation: int) -> torch.Tensor:
    back = _back(t, s)
    return (back >= 0) & (back % dilation == 0) & (back // dilation <= window)


def _mask_no_gaps(t: int, s: int, window: int, dilation: int) -> torch.Tensor:
    back = _back(t, s)
    return (back >= 0) & (back <= (window - 1) * dilation)


def _mask_not_stretched(t: int, s: int, window: int, dilation: int) -> torch.Tensor:
    back = _back(t, s)
    return (back >= 0) & (back % dilation == 0) & (back < window)


def _mask_gaps_from_zero(t: int, s: int, window: int, dilation: int) -> torch.Tensor:
    q_pos, k_pos = _positions(t, s)
    back = q_pos - k_pos
    return (back >= 0) & (k_pos % dilation == 0) & (back <= (window - 1) * dilation)


def _mask_two_sided(t: int, s: int, window: int, dilation: int) -> torch.Tensor:
    back = _back(t, s).abs()
    return (back % dilation == 0) & (back // dilation < window)


def _mask_queries_from_zero(t: int, s: int, window: int, dilation: int) -> torch.Tensor:
    back = torch.arange(t)[:, None] - torch.arange(s)[None, :]  # queries at 0 .. t - 1
    return (back >= 0) & (back % dilation == 0) & (back // dilation < window)


MISTAKES = [
    Mistake(
        _mask_window_plus_one,
        "each query sees window + 1 keys. The query itself is the first of its `window` keys, "
        "so the farthest is (window - 1) * dilation positions back: (i - j) / dilation < window, "
        "not <=.",
    ),
    Mistake(
        _mask_no_gaps,
        "the window was stretched to (window - 1) * dilation positions back but keeps every key "
        "in it. Dilation leaves gaps: a key is visible only when its distance from the query is "
        "a multiple of dilation.",
    ),
    Mistake(
        _mask_not_stretched,
        "the gaps are there but the window still ends window - 1 positions back, so a query "
        "sees fewer than `window` keys. With dilation d the keys are 0, d, ..., (window - 1) d "
        "positions back.",
    ),
    Mistake(
        _mask_gaps_from_zero,
        "the gaps were counted from position 0 (key j % dilation == 0). They are counted from "
        "each query: key j is visible when the distance i - j is a multiple of dilation.",
    ),
    Mistake(
        _mask_two_sided,
        "the window looks ahead too (Longformer's encoder window is two-sided). In a decoder a "
        "query must not see keys after it: i - j >= 0.",
    ),
    Mistake(
        _mask_queries_from_zero,
        "the queries were placed at positions 0 .. t - 1. They are the *last* t positions: "
        "query i sits at s - t + i (t < s when a KV cache holds earlier tokens).",
    ),
]


def check_dilated_window_mask(fn: Callable[[int, int, int, int], torch.Tensor]) -> Check:
    """Check a learner's ``dilated_window_mask(t, s, window, dilation)``: a boolean ``(t, s)``
    tensor, True where the query (one of the last ``t`` of ``s`` positions) may attend to the key:
    ``window`` keys, itself included, ``dilation`` positions apart."""
    cases = {
        "prompt, window 3, dilation 2": (8, 8, 3, 2),
        "dilation 1 (Mistral's window)": (6, 6, 3, 1),
        "window 1 (itself only), dilation 3": (5, 5, 1, 3),
        "window 2, dilation 3": (9, 9, 2, 3),
        "3 new tokens after 8 cached": (3, 11, 3, 3),
        "one decoding step after 12 cached": (1, 13, 4, 2),
    }
    return check_function(
        fn,
        dilated_window_mask_reference,
        cases,
        ("t", "s", "window", "dilation"),
        mistakes=MISTAKES,
        conventions=CONVENTIONS,
        where=_where,
    )


# ---------------------------------------------------------------------------- reach and cache size


def reach_and_cache_reference(
    num_hidden_layers: int,
    window: int,
    num_key_value_heads: int,
    head_dim: int,
    bytes_per_value: int,
) -> tuple[int, int]:
    """(positions back the last layer's output can reach, bytes of one sequence's full rolling
    cache): ``L (W - 1)`` and ``2 L g d W bytes``."""
    cache = kv_cache_bytes_per_token(
        num_hidden_layers, num_key_value_heads, head_dim, bytes_per_value
    )
    return num_hidden_layers * (window - 1), cache * window


REACH_MISTAKES = [
    Mistake(
        lambda L, W, g, d, n: (L * W, reach_and_cache_reference(L, W, g, d, n)[1]),
        "the reach counts W positions per layer. A query sees W keys, itself included, so each "
        "layer moves information W - 1 positions back: L (W - 1).",
    ),
    Mistake(
        lambda L, W, g, d, n: (L * (W - 1), reach_and_cache_reference(L, W, g, d, n)[1] // 2),
        "the cache counts only keys or only values: it holds both (a factor 2).",
    ),
    Mistake(
        lambda L, W, g, d, n: (L * (W - 1), reach_and_cache_reference(L, W, g, d, n)[1] // L),
        "the cache counts one layer: every layer keeps its own W keys and values.",
    ),
]


def check_reach_and_cache(fn: Callable[..., tuple[int, int]]) -> Check:
    """Check a learner's ``reach_and_cache(num_hidden_layers, window, num_key_value_heads, head_dim,
    bytes_per_value) -> (reach, cache_bytes)``: two ints."""
    cases = {
        "2 layers, W = 4, 1 head of 8, fp32": (2, 4, 1, 8, 4),
        "3 layers, W = 8, 2 heads of 16, fp16": (3, 8, 2, 16, 2),
        "W = 1 (each token sees itself only), int8": (5, 1, 4, 32, 1),
    }
    return check_function(
        fn,
        reach_and_cache_reference,
        cases,
        ("num_hidden_layers", "window", "num_key_value_heads", "head_dim", "bytes_per_value"),
        mistakes=REACH_MISTAKES,
        names=("reach", "cache_bytes"),
    )


# ---------------------------------------------------------------------------- transfer: the slots


def slot_positions_reference(s: int, window: int) -> torch.Tensor:
    """Which position each slot of a rolling buffer of ``window`` slots holds after ``s`` tokens
    were written (token ``i`` into slot ``i % window``): an int64 ``(window,)`` tensor, -1 for a
    slot never written."""
    held = torch.full((window,), -1, dtype=torch.int64)
    for i in range(max(0, s - window), s):
        held[i % window] = i
    return held


def _first_written(s: int, window: int) -> torch.Tensor:
    held = torch.full((window,), -1, dtype=torch.int64)
    n = min(s, window)
    held[:n] = torch.arange(n)
    return held


def _oldest_first(s: int, window: int) -> torch.Tensor:
    held = torch.full((window,), -1, dtype=torch.int64)
    positions = torch.arange(max(0, s - window), s)
    held[: len(positions)] = positions
    return held


SLOT_MISTAKES = [
    Mistake(
        _first_written,
        "each slot keeps the first position written into it. The buffer overwrites: token i "
        "replaces token i - W in slot i % W, so a slot holds the newest position that maps to it.",
    ),
    Mistake(
        _oldest_first,
        "this lists the held positions oldest first. The exercise asks for them by slot: slot j "
        "holds the position p with p % W == j.",
    ),
]


def check_slot_positions(fn: Callable[[int, int], torch.Tensor]) -> Check:
    """Check a learner's ``slot_positions(s, window)``: the position each slot of a rolling-buffer
    cache holds after ``s`` tokens, an int64 ``(window,)`` tensor, -1 where nothing was written."""
    cases = {
        "nothing written yet": (0, 4),
        "3 tokens in 4 slots": (3, 4),
        "exactly full": (4, 4),
        "10 tokens in 4 slots": (10, 4),
        "9 tokens in 3 slots": (9, 3),
        "one slot": (5, 1),
    }

    def where(index: tuple, args: tuple) -> str:
        return f"slot {index[0]}"

    return check_function(
        fn, slot_positions_reference, cases, ("s", "window"), mistakes=SLOT_MISTAKES, where=where
    )
