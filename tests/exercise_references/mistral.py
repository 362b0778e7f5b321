"""References and known mistakes for the Mistral chapter's exercises: the sliding-window mask, the
reach and cache size of a windowed model, and which position each slot of a rolling-buffer cache
holds (transfer)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, Mistake, check_function
from demos.exercises.mistral import (  # shared with the package
    CONVENTIONS,
    _where,
)
from demos.layers.kv_cache import kv_cache_bytes_per_token
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
