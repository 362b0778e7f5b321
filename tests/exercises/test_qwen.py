"""The Qwen chapter's checkers: LogN's factor, Qwen's dynamic NTK base, and cutting c_attn."""

from __future__ import annotations

import math

import pytest
import torch

from demos.exercises.qwen import check_logn_scale, check_ntk_base, check_split_c_attn


def logn(position, train_len):  # written here from Qwen's list: log_L(p + 1) past L, else 1
    i = position + 1
    return math.log(i) / math.log(train_len) if i > train_len else 1.0


def ntk_base(base, seq_len, train_len, head_dim):  # written here from QWenModel.get_ntk_alpha
    alpha = max(1, 2 ** math.ceil(math.log(seq_len / train_len, 2) + 1) - 1)
    return base * alpha ** (head_dim / (head_dim - 2))


def split(weight, bias):  # written here: three row blocks q, k, v
    c = weight.shape[1]
    return (
        weight[:c],
        weight[c : 2 * c],
        weight[2 * c :],
        bias[:c],
        bias[c : 2 * c],
        bias[2 * c :],
    )


def test_solutions_pass():
    for checker, answer in (
        (check_logn_scale, logn),
        (check_ntk_base, ntk_base),
        (check_split_c_attn, split),
    ):
        result = checker(answer)
        assert result.ok, result.message


def my_logn_scale(position, train_len):  # the chapter's stub, untouched
    # your code here
    return 1.0


LOGN_WRONG = {
    "stub": (my_logn_scale, ["still the template"]),
    "0-based log": (
        lambda p, L: math.log(p) / math.log(L) if p > L else 1.0,
        ["Qwen's list starts at i = 1"],
    ),
    "no clamp": (lambda p, L: math.log(p + 1) / math.log(L), ["must stay 1"]),
    "natural log": (lambda p, L: math.log(p + 1) if p + 1 > L else 1.0, ["to base L"]),
    "ratio": (lambda p, L: (p + 1) / L if p + 1 > L else 1.0, ["that is the ratio"]),
    "scaled from L on": (
        lambda p, L: max(1.0, math.log(p + 2) / math.log(L)),
        ["position 2047", "expected 1, got 1.00006"],
    ),
}


@pytest.mark.parametrize("answer, words", LOGN_WRONG.values(), ids=list(LOGN_WRONG))
def test_logn_checker_explains_wrong_answers(explain, answer, words):
    explain(check_logn_scale, answer, words)


def my_ntk_base(base, seq_len, train_len, head_dim):  # the chapter's stub, untouched
    # your code here
    return base


def power(alpha, d):
    return alpha ** (d / (d - 2))


NTK_WRONG = {
    "stub": (my_ntk_base, ["still the template"]),
    "transformers' 2r - 1": (
        lambda b, n, L, d: b * power(max(1.0, 2 * n / L - 1), d),
        ["by chunks"],
    ),
    "alpha = r": (lambda b, n, L, d: b * power(max(1.0, n / L), d), ["not the ratio"]),
    "no exponent": (
        lambda b, n, L, d: b * max(1, 2 ** math.ceil(math.log2(n / L) + 1) - 1),
        ["alpha ** (d / (d - 2))"],
    ),
    "power of two": (
        lambda b, n, L, d: b * power(max(1, 2 ** math.ceil(math.log2(n / L))), d),
        ["not the power of two"],
    ),
    "exponent d / (d - 1)": (
        lambda b, n, L, d: b * max(1, 2 ** math.ceil(math.log2(n / L) + 1) - 1) ** (d / (d - 1)),
        ["3,000 tokens", "expected 30527.7"],
    ),
}


@pytest.mark.parametrize("answer, words", NTK_WRONG.values(), ids=list(NTK_WRONG))
def test_ntk_checker_explains_wrong_answers(explain, answer, words):
    explain(check_ntk_base, answer, words)


def my_split_c_attn(weight, bias):  # the chapter's stub, untouched
    # your code here
    return weight, weight, weight, bias, bias, bias


def head_by_head(weight, bias):
    c = weight.shape[1]
    w, b = weight.view(4, 3, c // 4, c), bias.view(4, 3, c // 4)
    return (*(w[:, j].reshape(c, c) for j in range(3)), *(b[:, j].reshape(c) for j in range(3)))


SPLIT_WRONG = {
    "stub": (my_split_c_attn, ["still the template"]),
    "head by head": (head_by_head, ["head by head"]),
    "k, q, v": (
        lambda w, b: (lambda s: (s[1], s[0], s[2], s[4], s[3], s[5]))(split(w, b)),
        ["order q, k, v"],
    ),
    "transposed": (
        lambda w, b: (lambda s: (s[0].t(), s[1].t(), s[2].t(), *s[3:]))(split(w, b)),
        ["transposed"],
    ),
    "biases forgotten": (
        lambda w, b: (*split(w, b)[:3], *(torch.zeros_like(x) for x in split(w, b)[3:])),
        ["q_proj.bias"],
    ),
    "only three": (lambda w, b: split(w, b)[:3], ["expected a tuple of 6", "tuple of 3"]),
}


@pytest.mark.parametrize("answer, words", SPLIT_WRONG.values(), ids=list(SPLIT_WRONG))
def test_split_checker_explains_wrong_answers(explain, answer, words):
    explain(check_split_c_attn, answer, words)


@pytest.mark.parametrize("checker", [check_logn_scale, check_ntk_base, check_split_c_attn])
def test_checkers_explain_any_wrong_answer(explain, any_wrong_answer, checker):
    explain(checker, *any_wrong_answer)
