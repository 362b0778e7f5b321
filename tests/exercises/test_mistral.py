"""The Mistral chapter's checker: the sliding-window mask, in every convention a learner may use."""

from __future__ import annotations

import pytest
import torch

from demos.exercises.mistral import (
    check_reach_and_cache,
    check_sliding_window_mask,
    check_slot_positions,
)
from demos.layers.masks import sliding_window_mask


def positions(t, s):
    return torch.arange(s - t, s)[:, None], torch.arange(s)[None, :]


def mask(t, s, window):  # written here: causal, and at most window - 1 keys back
    q, k = positions(t, s)
    return (k <= q) & (k > q - window)


def mask_from_triangles(t, s, window):  # the same band, from two triangular matrices
    ones = torch.ones(t, s, dtype=torch.bool)
    return ones.tril(s - t) & ~ones.tril(s - t - window)


def window_plus_one(t, s, window):  # the paper's wording: window + 1 keys
    q, k = positions(t, s)
    return (k <= q) & (k >= q - window)


def not_causal(t, s, window):
    q, k = positions(t, s)
    return (k - q).abs() < window


def queries_from_zero(t, s, window):  # queries at 0..t-1 instead of s-t..s-1
    q, k = torch.arange(t)[:, None], torch.arange(s)[None, :]
    return (k <= q) & (k > q - window)


def additive(pattern, hidden=float("-inf")):
    return lambda *a: torch.zeros(a[0], a[1]).masked_fill(~pattern(*a), hidden)


@pytest.mark.parametrize("answer", [mask, mask_from_triangles], ids=["positions", "triangles"])
def test_sliding_window_mask_checker_accepts_right_answers(answer):
    result = check_sliding_window_mask(answer)
    assert result.ok, result.message


MASK_WRONG = {
    "window + 1 keys": (window_plus_one, ["window + 1 keys"]),
    "not causal": (not_causal, ["looks ahead"]),
    "queries from zero": (queries_from_zero, ["*last* t positions"]),
    "everything visible": (
        lambda t, s, w: torch.ones(t, s, dtype=torch.bool),
        ["query 0 (position 0) and key 1: expected False, got True"],
    ),
    "inverted": (lambda *a: ~mask(*a), ["inverted", "otherwise right"]),
    "additive, -inf": (additive(mask), ["additive", "otherwise right"]),
    "additive, finfo.min": (
        additive(mask, torch.finfo(torch.float32).min),
        ["additive", "otherwise right"],
    ),
    "float 0/1": (lambda *a: mask(*a).float(), ["0/1", "otherwise right", "float32"]),
    "int 0/1": (lambda *a: mask(*a).long(), ["0/1", "otherwise right"]),
    "inverted and window + 1": (lambda *a: ~window_plus_one(*a), ["inverted", "window + 1 keys"]),
    "additive and not causal": (additive(not_causal), ["additive", "looks ahead"]),
    "inverted and wrong otherwise": (
        lambda *a: ~mask(*a) & torch.ones(a[0], a[1], dtype=torch.bool).triu(1),
        ["inverted", "still differs"],
    ),
    "wrong shape": (
        lambda t, s, w: torch.ones(2, 2, dtype=torch.bool),
        ["shape (2, 2), expected (6, 6)"],
    ),
    "float ones of the wrong shape": (
        lambda t, s, w: torch.ones(2, 2),
        ["shape (2, 2), expected (6, 6)"],
    ),
    "transposed": (lambda *a: mask(*a).T, ["query"]),
    "float with NaN": (lambda *a: mask(*a).float() * float("nan"), ["float32", "boolean"]),
    "numpy": (lambda *a: mask(*a).numpy(), ["numpy", "values are right"]),
}


@pytest.mark.parametrize("answer, words", MASK_WRONG.values(), ids=list(MASK_WRONG))
def test_sliding_window_mask_checker_explains_wrong_answers(explain, answer, words):
    explain(check_sliding_window_mask, answer, words)


def test_sliding_window_mask_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_sliding_window_mask, *any_wrong_answer)


# ---------------------------------------------------------------------------- reach and cache size


def reach_and_cache(num_hidden_layers, window, num_key_value_heads, head_dim, bytes_per_value):
    per_position = 2 * num_hidden_layers * num_key_value_heads * head_dim * bytes_per_value
    return num_hidden_layers * (window - 1), per_position * window


def my_reach_and_cache(num_hidden_layers, window, num_key_value_heads, head_dim, bytes_per_value):
    # your code here: return (reach, cache_bytes)
    return 0, 0


def test_reach_and_cache_checker_accepts_the_answer():
    assert check_reach_and_cache(reach_and_cache).ok


REACH_WRONG = {
    "the stub": (my_reach_and_cache, ["still the template", "num_hidden_layers = 2, window = 4"]),
    "W per layer": (
        lambda L, W, *a: (L * W, reach_and_cache(L, W, *a)[1]),
        ["reach:", "W - 1 positions back"],
    ),
    "keys only": (
        lambda *a: (reach_and_cache(*a)[0], reach_and_cache(*a)[1] // 2),
        ["cache_bytes:", "a factor 2"],
    ),
    "one layer's cache": (
        lambda *a: (reach_and_cache(*a)[0], reach_and_cache(*a)[1] // a[0]),
        ["every layer keeps its own"],
    ),
}


@pytest.mark.parametrize("answer, words", REACH_WRONG.values(), ids=list(REACH_WRONG))
def test_reach_and_cache_checker_explains_wrong_answers(explain, answer, words):
    explain(check_reach_and_cache, answer, words)


def test_reach_and_cache_reference_agrees_with_the_measured_reach():
    """The reach L (W - 1) is what the chapter measures through gradients, and what the
    sliding-window mask composes to: check it on the mask itself, layer by layer."""
    from exercise_references.mistral import reach_and_cache_reference

    t, window = 30, 4
    mask = sliding_window_mask(t, t, window).float()
    visible = torch.eye(t)
    for layers in range(1, 6):
        visible = (mask @ visible > 0).float()
        farthest = t - 1 - int(visible[-1].nonzero().min())
        assert reach_and_cache_reference(layers, window, 1, 1, 1)[0] == farthest


# ---------------------------------------------------------------------------- slot positions


def slot_positions(s, window):  # written here: position i lives in slot i % window
    slots = torch.arange(window)
    newest = slots + window * ((s - 1 - slots) // window)  # the last p < s with p % W == slot
    return torch.where(slots < s, newest, torch.full_like(slots, -1))


def my_slot_positions(s, window):
    # your code here: return an int64 tensor of shape (window,)
    return torch.zeros(window, dtype=torch.int64)


def test_slot_positions_checker_accepts_the_answer():
    result = check_slot_positions(slot_positions)
    assert result.ok, result.message


def test_slot_positions_reference_is_what_the_rolling_cache_holds():
    """After s tokens, RollingKVCache's buffer holds in slot j the key written at the position the
    reference names (keys here carry their own position as value)."""
    from exercise_references.mistral import slot_positions_reference

    from demos.layers.kv_cache import RollingKVCache

    for window, s in [(4, 3), (4, 4), (4, 10), (3, 9), (1, 5)]:
        cache = RollingKVCache(window)
        for i in range(s):
            key = torch.full((1, 1, 1, 1), float(i))
            cache.update(key, key)
        held = cache.k[0, 0, :, 0].long()  # (window,): the buffer never grows
        expected = slot_positions_reference(s, window)
        written = expected >= 0
        assert held.shape == (window,) and int(written.sum()) == min(s, window)
        assert torch.equal(held[written], expected[written]), (window, s, held, expected)


SLOTS_WRONG = {
    "the stub": (my_slot_positions, ["still the template", "s = 0, window = 4"]),
    "first written kept": (
        lambda s, w: torch.where(torch.arange(w) < s, torch.arange(w), -1),
        ["slot", "The buffer overwrites"],
    ),
    "oldest first": (
        lambda s, w: torch.cat(
            [torch.arange(max(0, s - w), s), torch.full((w - min(s, w),), -1)]
        ).long(),
        ["oldest first"],
    ),
    "no -1 for empty slots": (
        lambda s, w: slot_positions(s, w).clamp(min=0),
        ["expected -1, got 0"],
    ),
    "float positions": (
        lambda s, w: slot_positions(s, w).float(),
        ["float32", "integer"],
    ),
}


@pytest.mark.parametrize("answer, words", SLOTS_WRONG.values(), ids=list(SLOTS_WRONG))
def test_slot_positions_checker_explains_wrong_answers(explain, answer, words):
    explain(check_slot_positions, answer, words)


def test_slot_positions_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_slot_positions, *any_wrong_answer)
