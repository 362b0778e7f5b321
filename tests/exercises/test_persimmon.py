"""The Persimmon chapter's checkers: the per-head q/k LayerNorm, and squared ReLU's gradient."""

from __future__ import annotations

import pytest
import torch

from demos.exercises.persimmon import check_qk_layernorm, check_squared_relu_grad


def qk_norm(q, weight, bias):  # written here from the definition, over the last axis
    mean = q.mean(-1, keepdim=True)
    var = q.var(-1, unbiased=False, keepdim=True)
    return (q - mean) / torch.sqrt(var + 1e-5) * weight + bias


def grad(x):  # written here: d/dx relu(x)^2 = 2 relu(x)
    return 2 * x.clamp(min=0)


def test_solutions_pass():
    for checker, answer in ((check_qk_layernorm, qk_norm), (check_squared_relu_grad, grad)):
        result = checker(answer)
        assert result.ok, result.message


def across_heads(q, weight, bias):
    b, h, t, d = q.shape
    flat = q.transpose(1, 2).reshape(b, t, h * d)
    mean, var = flat.mean(-1, keepdim=True), flat.var(-1, unbiased=False, keepdim=True)
    normed = ((flat - mean) / torch.sqrt(var + 1e-5)).view(b, t, h, d).transpose(1, 2)
    return normed * weight + bias


def my_qk_layernorm(q, weight, bias):  # the chapter's stub, untouched
    # your code here
    return q


QK_WRONG = {
    "stub": (my_qk_layernorm, ["still the template"]),
    "over all heads": (across_heads, ["over all heads of a token"]),
    "RMSNorm": (
        lambda q, w, b: q * torch.rsqrt(q.pow(2).mean(-1, keepdim=True) + 1e-5) * w + b,
        ["that is RMSNorm"],
    ),
    "no affine": (lambda q, w, b: (qk_norm(q, w, b) - b) / w, ["weight and bias"]),
    "unbiased variance": (
        lambda q, w, b: (
            (q - q.mean(-1, keepdim=True)) / torch.sqrt(q.var(-1, keepdim=True) + 1e-5) * w + b
        ),
        ["differ"],
    ),
}


@pytest.mark.parametrize("answer, words", QK_WRONG.values(), ids=list(QK_WRONG))
def test_qk_checker_explains_wrong_answers(explain, answer, words):
    explain(check_qk_layernorm, answer, words)


def my_squared_relu_grad(x):  # the chapter's stub, untouched
    # your code here
    return x


GRAD_WRONG = {
    "stub": (my_squared_relu_grad, ["still the template"]),
    "ReLU's step": (lambda x: (x > 0).float(), ["that is ReLU's derivative"]),
    "2x everywhere": (lambda x: 2 * x, ["the derivative is 0"]),
    "no factor 2": (lambda x: x.clamp(min=0), ["the factor 2"]),
}


@pytest.mark.parametrize("answer, words", GRAD_WRONG.values(), ids=list(GRAD_WRONG))
def test_grad_checker_explains_wrong_answers(explain, answer, words):
    explain(check_squared_relu_grad, answer, words)


@pytest.mark.parametrize("checker", [check_qk_layernorm, check_squared_relu_grad])
def test_checkers_explain_any_wrong_answer(explain, any_wrong_answer, checker):
    explain(checker, *any_wrong_answer)
