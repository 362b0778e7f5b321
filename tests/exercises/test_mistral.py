"""The Mistral chapter's checkers: the dilated window mask, in every convention a learner may use;
the reach and cache size of a windowed model; the slots of a rolling buffer."""

from __future__ import annotations

import pytest
import torch

from demos.exercises.mistral import (
    check_dilated_window_mask,
    check_reach_and_cache,
    check_slot_positions,
)
from demos.layers.masks import sliding_window_mask


def positions(t, s):
    return torch.arange(s - t, s)[:, None], torch.arange(s)[None, :]


def mask(t, s, window, dilation):  # written here: keys 0, d, ..., (window - 1) d positions back
    q, k = positions(t, s)
    back = q - k
    return (back >= 0) & (back % dilation == 0) & (back <= (window - 1) * dilation)


def mask_from_loop(t, s, window, dilation):  # the same keys, listed one by one
    out = torch.zeros(t, s, dtype=torch.bool)
    for i in range(t):
        for n in range(window):
            j = s - t + i - n * dilation
            if j >= 0:
                out[i, j] = True
    return out


def window_plus_one(t, s, window, dilation):
    q, k = positions(t, s)
    back = q - k
    return (back >= 0) & (back % dilation == 0) & (back <= window * dilation)


def no_gaps(t, s, window, dilation):  # stretched to (window - 1) d back, every key kept
    q, k = positions(t, s)
    return (q - k >= 0) & (q - k <= (window - 1) * dilation)


def not_causal(t, s, window, dilation):
    q, k = positions(t, s)
    back = (q - k).abs()
    return (back % dilation == 0) & (back <= (window - 1) * dilation)


def queries_from_zero(t, s, window, dilation):  # queries at 0..t-1 instead of s-t..s-1
    return mask(s, s, window, dilation)[:t]


def additive(pattern, hidden=float("-inf")):
    return lambda *a: torch.zeros(a[0], a[1]).masked_fill(~pattern(*a), hidden)


@pytest.mark.parametrize("answer", [mask, mask_from_loop], ids=["positions", "loop"])
def test_dilated_window_mask_checker_accepts_right_answers(answer):
    result = check_dilated_window_mask(answer)
    assert result.ok, result.message


def test_dilated_window_reference_is_mistrals_window_at_dilation_1():
    """With dilation 1 the reference is the chapter's sliding_window_mask, cache or not."""
    from exercise_references.mistral import dilated_window_mask_reference

    for t, s, window in [(6, 6, 3), (3, 10, 4), (1, 7, 3), (5, 5, 9), (8, 8, 1)]:
        expected = sliding_window_mask(t, s, window)
        assert torch.equal(dilated_window_mask_reference(t, s, window, 1), expected)


def test_dilated_window_reference_reaches_L_W_minus_1_d_back_through_L_W_minus_1_plus_1_inputs():
    """The exercise's question: composed over L layers, the last token is reached from
    L (W - 1) d positions back, but only by the L (W - 1) + 1 inputs a multiple of d back."""
    from exercise_references.mistral import dilated_window_mask_reference

    t = 40
    for window, dilation, layers in [(3, 2, 4), (4, 3, 2), (2, 1, 5), (3, 4, 3)]:
        step = dilated_window_mask_reference(t, t, window, dilation).float()
        visible = torch.eye(t)
        for _ in range(layers):
            visible = (step @ visible > 0).float()
        reached = visible[-1].nonzero().flatten()
        assert t - 1 - int(reached.min()) == layers * (window - 1) * dilation
        assert len(reached) == layers * (window - 1) + 1
        assert bool(((t - 1 - reached) % dilation == 0).all())


@pytest.mark.parametrize("bad", [(0, 4, 2, 1), (3, 2, 2, 1), (3, 4, 0, 1), (3, 4, 2, 0)])
def test_dilated_window_reference_rejects_invalid_arguments_by_name(bad):
    from exercise_references.mistral import dilated_window_mask_reference

    with pytest.raises(ValueError, match="must be"):
        dilated_window_mask_reference(*bad)


MASK_WRONG = {
    "window + 1 keys": (window_plus_one, ["window + 1 keys"]),
    "no gaps": (no_gaps, ["Dilation leaves gaps"]),
    "not causal": (not_causal, ["looks ahead"]),
    "queries from zero": (queries_from_zero, ["*last* t positions"]),
    "everything visible": (
        lambda t, s, w, d: torch.ones(t, s, dtype=torch.bool),
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
        lambda t, s, w, d: torch.ones(2, 2, dtype=torch.bool),
        ["shape (2, 2), expected (8, 8)"],
    ),
    "float ones of the wrong shape": (
        lambda t, s, w, d: torch.ones(2, 2),
        ["shape (2, 2), expected (8, 8)"],
    ),
    "transposed": (lambda *a: mask(*a).T, ["query"]),
    "float with NaN": (lambda *a: mask(*a).float() * float("nan"), ["float32", "boolean"]),
    "numpy": (lambda *a: mask(*a).numpy(), ["numpy", "values are right"]),
}


@pytest.mark.parametrize("answer, words", MASK_WRONG.values(), ids=list(MASK_WRONG))
def test_dilated_window_mask_checker_explains_wrong_answers(explain, answer, words):
    explain(check_dilated_window_mask, answer, words)


def test_dilated_window_mask_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_dilated_window_mask, *any_wrong_answer)


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
