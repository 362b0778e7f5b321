"""The Falcon chapter's checker: splitting the fused query_key_value output."""

from __future__ import annotations

import pytest

from demos.exercises.falcon import check_split_fused_qkv


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
        ["q has shape (1, 3, 4, 2), expected (1, 4, 3, 2)", "order of the axes"],
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
