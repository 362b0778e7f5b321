"""The Falcon chapter's checker: splitting the fused query_key_value output."""

from __future__ import annotations

import pytest
import torch

from demos.exercises.falcon import (
    check_fuse_qkv_weight,
    check_sequences_that_fit,
    check_split_fused_qkv,
)


def split(fused, h, g, d):  # written here: per group, r = h // g queries, then a key, then a value
    b, t, _ = fused.shape
    x = fused.view(b, t, g, h // g + 2, d)
    q = x[:, :, :, : h // g].reshape(b, t, h, d).transpose(1, 2)
    return q, x[:, :, :, -2].transpose(1, 2), x[:, :, :, -1].transpose(1, 2)


def blocks(fused, h, g, d):  # [all queries | all keys | all values]
    b, t, _ = fused.shape
    q = fused[..., : h * d].reshape(b, t, h, d).permute(0, 2, 1, 3)
    k = fused[..., h * d : (h + g) * d].reshape(b, t, g, d).permute(0, 2, 1, 3)
    v = fused[..., (h + g) * d :].reshape(b, t, g, d).permute(0, 2, 1, 3)
    return q, k, v


def split_and_wipe(fused, h, g, d):
    q, k, v = (x.clone() for x in split(fused, h, g, d))
    fused.zero_()
    return q, k, v


@pytest.mark.parametrize(
    "answer",
    [
        split,
        lambda *a: list(split(*a)),
        lambda f, *a: split(f.double(), *a),
        lambda *a: tuple(x.half() for x in split(*a)),
        lambda *a: tuple(x.bfloat16() for x in split(*a)),
    ],
    ids=["view", "list", "float64", "float16", "bfloat16"],
)
def test_split_fused_qkv_checker_accepts_right_answers(answer):
    result = check_split_fused_qkv(answer)
    assert result.ok, result.message


QKV_WRONG = {
    "block layout": (blocks, ["group by group"]),
    "block layout, float16": (lambda *a: tuple(x.half() for x in blocks(*a)), ["group by group"]),
    "returns fused": (lambda f, h, g, d: f, ["expected a tuple of 3 (q, k, v)"]),
    "q, k, v all fused": (lambda f, h, g, d: (f, f, f), ["q has shape"]),
    "k and v swapped": (lambda *a: (split(*a)[0], split(*a)[2], split(*a)[1]), ["k:", "differ"]),
    "q not transposed": (
        lambda *a: (split(*a)[0].transpose(1, 2), *split(*a)[1:]),
        ["q has shape (1, 3, 4, 2), expected (1, 4, 3, 2)", ".transpose(1, 2) fixes it"],
    ),
    "NaN in v": (lambda *a: (*split(*a)[:2], split(*a)[2] * float("nan")), ["v has", "NaN"]),
    "integer dtype": (lambda *a: tuple(x.long() for x in split(*a)), ["int64"]),
    "wipes fused": (split_and_wipe, ["modified its input fused"]),
}


@pytest.mark.parametrize("answer, words", QKV_WRONG.values(), ids=list(QKV_WRONG))
def test_split_fused_qkv_checker_explains_wrong_answers(explain, answer, words):
    explain(check_split_fused_qkv, answer, words)


def test_split_fused_qkv_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_split_fused_qkv, *any_wrong_answer)


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
