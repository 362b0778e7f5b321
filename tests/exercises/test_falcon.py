"""The Falcon chapter's checkers: the row of the fused query_key_value output that holds a head's
channel, how many sequences fit in a KV-cache budget, and fusing separate q/k/v weights."""

from __future__ import annotations

import pytest
import torch

from demos.exercises.falcon import (
    check_fuse_qkv_weight,
    check_qkv_row,
    check_sequences_that_fit,
)


def qkv_row(kind, head, channel, num_heads, num_kv_heads, head_dim):  # written here: count heads
    r = num_heads // num_kv_heads
    if kind == "q":
        group, place = head // r, head % r
    else:
        group, place = head, r if kind == "k" else r + 1
    return (group * (r + 2) + place) * head_dim + channel


def qkv_row_by_listing(kind, head, channel, num_heads, num_kv_heads, head_dim):
    """The same, by listing the heads in layout order and finding this one."""
    r = num_heads // num_kv_heads
    order = []
    for group in range(num_kv_heads):
        order += [("q", j) for j in range(group * r, (group + 1) * r)] + [
            ("k", group),
            ("v", group),
        ]
    return order.index((kind, head)) * head_dim + channel


def blocks(kind, head, channel, h, g, d):  # [all queries | all keys | all values]
    return ({"q": 0, "k": h, "v": h + g}[kind] + head) * d + channel


@pytest.mark.parametrize(
    "answer",
    [qkv_row, qkv_row_by_listing, lambda *a: torch.tensor(qkv_row(*a))],
    ids=["arithmetic", "listing", "0-d tensor"],
)
def test_qkv_row_checker_accepts_right_answers(answer):
    result = check_qkv_row(answer)
    assert result.ok, result.message


def test_qkv_row_reference_is_where_split_fused_qkv_reads_each_head():
    """Every (kind, head, channel) of the reference is the row the chapter's split reads it from:
    a fused output that holds its own row numbers, split, gives back those numbers."""
    from exercise_references.falcon import qkv_row_reference

    from demos.layers.fused_qkv import split_fused_qkv

    for h, g, d in [(4, 1, 3), (8, 2, 4), (3, 3, 2), (6, 3, 5), (16, 2, 2)]:
        rows = torch.arange((h + 2 * g) * d, dtype=torch.float64).view(1, 1, -1)
        q, k, v = split_fused_qkv(rows, h, g, d)  # (1, heads, 1, d) each
        for kind, split, heads in (("q", q, h), ("k", k, g), ("v", v, g)):
            for head in range(heads):
                for channel in range(d):
                    row = qkv_row_reference(kind, head, channel, h, g, d)
                    assert row == int(split[0, head, 0, channel]), (kind, head, channel, h, g)


def test_qkv_row_reference_for_falcon_40b_key_head_3():
    """The exercise's question, on Falcon-40B's released shape (h = 128, g = 8, d = 64)."""
    from exercise_references.falcon import qkv_row_reference

    from demos.models.falcon import FalconLMConfig
    from demos.registry import released_config

    cfg = FalconLMConfig.from_hf(released_config("Falcon-40B"))
    assert (cfg.num_attention_heads, cfg.kv_heads, cfg.head_dim) == (128, 8, 64)
    assert qkv_row_reference("k", 3, 0, 128, 8, 64) == (3 * 18 + 16) * 64 == 4480


@pytest.mark.parametrize(
    "bad, name",
    [
        (("x", 0, 0, 4, 1, 2), "kind"),
        (("q", 4, 0, 4, 1, 2), "head"),
        (("k", 1, 0, 4, 1, 2), "head"),
        (("v", -1, 0, 4, 1, 2), "head"),
        (("q", 0, 2, 4, 1, 2), "channel"),
        (("q", 0, 0, 4, 3, 2), "num_kv_heads"),
        (("q", 0, 0, 4, 0, 2), "num_kv_heads"),
        (("q", 0, 0, 4, 1, 0), "head_dim"),
    ],
)
def test_qkv_row_reference_rejects_invalid_arguments_by_name(bad, name):
    from exercise_references.falcon import qkv_row_reference

    with pytest.raises(ValueError, match=name):
        qkv_row_reference(*bad)


def my_qkv_row(kind, head, channel, num_heads, num_kv_heads, head_dim):
    # your code here: return an int
    return 0


QKV_WRONG = {
    "the stub": (my_qkv_row, ["still the template", "kind = 'q', head = 2", "an int"]),
    "block layout": (blocks, ["group by group"]),
    "queries tiled": (
        lambda kind, head, c, h, g, d: qkv_row(
            kind, (head % g) * (h // g) + head // g if kind == "q" else head, c, h, g, d
        ),
        ["j // r"],
    ),
    "one row off": (lambda *a: qkv_row(*a) + 1, ["1 more than expected"]),
    "a float": (lambda *a: qkv_row(*a) + 0.5, ["expected 7, got 7.5"]),
    "NaN": (lambda *a: float("nan"), ["nan"]),
    "a string": (lambda *a: str(qkv_row(*a)), ["a str"]),
    "a bool": (lambda *a: True, ["got the bool True"]),
    "a tensor of rows": (lambda *a: torch.arange(3), ["3 elements"]),
}


@pytest.mark.parametrize("answer, words", QKV_WRONG.values(), ids=list(QKV_WRONG))
def test_qkv_row_checker_explains_wrong_answers(explain, answer, words):
    explain(check_qkv_row, answer, words)


def test_qkv_row_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_qkv_row, *any_wrong_answer)


# ---------------------------------------------------------------------------- sequences in a budget


def sequences_that_fit(budget_bytes, num_hidden_layers, num_kv_heads, head_dim, seq_len, nbytes):
    per_sequence = 2 * num_hidden_layers * num_kv_heads * head_dim * seq_len * nbytes
    return budget_bytes // per_sequence


def my_sequences_that_fit(
    budget_bytes, num_hidden_layers, num_kv_heads, head_dim, seq_len, bytes_per_value
):
    # your code here: return an int
    return 0


def test_sequences_that_fit_checker_accepts_the_answer():
    assert check_sequences_that_fit(sequences_that_fit).ok


FIT_WRONG = {
    "the stub": (my_sequences_that_fit, ["still the template", "budget_bytes = 1,048,576"]),
    "no factor 2": (lambda b, L, g, d, t, n: b // (L * g * d * t * n), ["keys and values"]),
    "true division": (
        lambda b, L, g, d, t, n: b / (2 * L * g * d * t * n),
        ["too small for one sequence", "expected 0, got 0.0305", "whole sequences"],
    ),
    "no layers": (lambda b, L, *rest: sequences_that_fit(b, 1, *rest), ["every layer"]),
}


@pytest.mark.parametrize("answer, words", FIT_WRONG.values(), ids=list(FIT_WRONG))
def test_sequences_that_fit_checker_explains_wrong_answers(explain, answer, words):
    explain(check_sequences_that_fit, answer, words)


# ---------------------------------------------------------------------------- fusing q/k/v weights


def fuse(q_weight, k_weight, v_weight, num_heads, num_kv_heads):  # written here: row by row
    d = q_weight.shape[0] // num_heads
    r = num_heads // num_kv_heads
    rows = []
    for group in range(num_kv_heads):
        for j in range(group * r, (group + 1) * r):
            rows.append(q_weight[j * d : (j + 1) * d])
        rows.append(k_weight[group * d : (group + 1) * d])
        rows.append(v_weight[group * d : (group + 1) * d])
    return torch.cat(rows)


def my_fuse_qkv_weight(q_weight, k_weight, v_weight, num_heads, num_kv_heads):
    # your code here: return a tensor of shape ((h + 2 g) d, c)
    return q_weight


def test_fuse_checker_accepts_the_answer():
    result = check_fuse_qkv_weight(fuse)
    assert result.ok, result.message


def test_fused_weight_splits_back_into_the_same_projections():
    """The reference is the inverse of the chapter's split: x @ fused.T, split the Falcon way,
    gives x @ q.T, x @ k.T, x @ v.T head by head."""
    from exercise_references.falcon import fuse_qkv_weight_reference

    from demos.layers.fused_qkv import split_fused_qkv

    h, g, d, c = 8, 2, 4, 6
    q_w, k_w, v_w = torch.randn(h * d, c), torch.randn(g * d, c), torch.randn(g * d, c)
    x = torch.randn(2, 5, c)
    q, k, v = split_fused_qkv(x @ fuse_qkv_weight_reference(q_w, k_w, v_w, h, g).T, h, g, d)
    torch.testing.assert_close(q, (x @ q_w.T).view(2, 5, h, d).transpose(1, 2))
    torch.testing.assert_close(k, (x @ k_w.T).view(2, 5, g, d).transpose(1, 2))
    torch.testing.assert_close(v, (x @ v_w.T).view(2, 5, g, d).transpose(1, 2))


FUSE_WRONG = {
    "the stub": (my_fuse_qkv_weight, ["still the template", "q_weight of shape (8, 3)"]),
    "Phi-3 blocks": (
        lambda q, k, v, h, g: torch.cat([q, k, v]),
        ["Phi-3's layout", "row 2 (group 0, the key head, channel 0)"],
    ),
    "key and value first": (
        lambda q, k, v, h, g: (
            fuse(q, k, v, h, g)
            .view(g, h // g + 2, -1, q.shape[1])
            .roll(2, dims=1)
            .reshape(-1, q.shape[1])
        ),
        ["starts with its key and value"],
    ),
    "queries tiled across groups": (
        lambda q, k, v, h, g: fuse(
            q.view(h // g, g, -1, q.shape[1]).transpose(0, 1).reshape(q.shape), k, v, h, g
        ),
        ["j // (h / g)"],
    ),
}


@pytest.mark.parametrize("answer, words", FUSE_WRONG.values(), ids=list(FUSE_WRONG))
def test_fuse_checker_explains_wrong_answers(explain, answer, words):
    explain(check_fuse_qkv_weight, answer, words)


def test_fuse_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_fuse_qkv_weight, *any_wrong_answer)
