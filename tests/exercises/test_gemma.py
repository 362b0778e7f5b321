"""The Gemma chapter's checkers: the (1 + w) RMSNorm and porting its weight to a Llama RMSNorm."""

from __future__ import annotations

import pytest
import torch

from demos.exercises.gemma import check_gemma_rms_norm, check_llama_norm_weight


def gemma_rms_norm(x, weight, eps):  # written here: the variance first, then divide
    xf = x.to(torch.float32)
    variance = (xf * xf).mean(dim=-1, keepdim=True)
    return (xf / torch.sqrt(variance + eps) * (weight.to(torch.float32) + 1)).to(x.dtype)


@pytest.mark.parametrize(
    "answer",
    [gemma_rms_norm, lambda x, w, e: gemma_rms_norm(x.double(), w.double(), e).to(x.dtype)],
    ids=["divide", "float64 inside"],
)
def test_norm_checker_accepts_right_answers(answer):
    result = check_gemma_rms_norm(answer)
    assert result.ok, result.message


def rms(x, eps):
    xf = x.float()
    return xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)


def my_gemma_rms_norm(x, weight, eps):  # the chapter's stub, untouched
    # your code here
    return x


NORM_WRONG = {
    "the stub": (my_gemma_rms_norm, ["still the template"]),
    "gain w": (lambda x, w, e: (rms(x, e) * w.float()).to(x.dtype), ["the gain is w", "(1 + w)"]),
    "cast, then multiply": (
        lambda x, w, e: rms(x, e).to(x.dtype) * (1 + w),
        ["bf16", "*before* multiplying", "round differently"],
    ),
    "no eps": (lambda x, w, e: (rms(x, 0.0) * (1 + w.float())).to(x.dtype), ["eps is missing"]),
    "float32 result for bf16 input": (
        lambda x, w, e: rms(x, e) * (1 + w.float()),
        ["bf16", "float32 tensor", "asks for torch.bfloat16", "cast the result"],
    ),
    "all in bf16": (
        lambda x, w, e: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + e) * (1 + w),
        ["bf16", "computed in x's dtype", "casts last"],
    ),
    "mean subtracted (LayerNorm)": (
        lambda x, w, e: (rms(x - x.mean(-1, keepdim=True), e) * (1 + w.float())).to(x.dtype),
        ["differ", "index"],
    ),
}


@pytest.mark.parametrize("case", list(NORM_WRONG))
def test_norm_checker_explains_wrong_answers(case, explain):
    answer, words = NORM_WRONG[case]
    explain(check_gemma_rms_norm, answer, words)


def test_norm_checker_never_raises(any_wrong_answer, explain):
    explain(check_gemma_rms_norm, *any_wrong_answer)


def test_weight_checker_accepts_right_answers():
    for answer in [lambda w: 1.0 + w, lambda w: w.add(1), lambda w: (w.double() + 1).float()]:
        result = check_llama_norm_weight(answer)
        assert result.ok, result.message


def my_to_llama_norm_weight(gemma_weight):  # the chapter's stub, untouched
    # your code here
    return gemma_weight


WEIGHT_WRONG = {
    "the stub": (my_to_llama_norm_weight, ["still the template"]),
    "minus one": (lambda w: w - 1, ["wrong way"]),
    "ones": (lambda w: torch.ones_like(w), ["offsets were dropped", "small offsets"]),
    "in place": (lambda w: w.add_(1), ["in place"]),
    "bf16 result": (lambda w: (1 + w).bfloat16(), ["bfloat16 tensor", "asks for torch.float32"]),
    "float64 result": (lambda w: w.double() + 1, ["float64 tensor", "asks for torch.float32"]),
}


@pytest.mark.parametrize("case", list(WEIGHT_WRONG))
def test_weight_checker_explains_wrong_answers(case, explain):
    answer, words = WEIGHT_WRONG[case]
    explain(check_llama_norm_weight, answer, words)


def test_weight_checker_never_raises(any_wrong_answer, explain):
    explain(check_llama_norm_weight, *any_wrong_answer)
