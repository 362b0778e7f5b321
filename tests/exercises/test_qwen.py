"""The Qwen chapter's checkers: LogN's first position for a factor, the base that slows one RoPE
channel, and cutting c_attn."""

from __future__ import annotations

import math

import pytest
import torch

from demos.exercises.qwen import check_base_for_channel, check_logn_position, check_split_c_attn
from demos.layers.long_context import ntk_scaled_base


def first_position(factor, train_len):  # written here: log_L(p + 1) >= factor, p + 1 = L ** f
    return math.ceil(train_len**factor) - 1


def first_position_by_search(factor, train_len):  # written here: walk Qwen's 1-based list
    i = train_len + 1
    while math.log(i) / math.log(train_len) < factor:
        i += 1
    return i - 1


def base_for_channel(base, head_dim, channel, slowdown):  # b'^(-2i/d) = b^(-2i/d) / slowdown
    return base * slowdown ** (head_dim / (2 * channel))


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
        (check_logn_position, first_position),
        (check_logn_position, first_position_by_search),
        (check_base_for_channel, base_for_channel),
        (check_split_c_attn, split),
    ):
        result = checker(answer)
        assert result.ok, result.message


def test_base_for_the_slowest_channel_is_ntk_aware_interpolation():
    assert math.isclose(base_for_channel(1e4, 128, 63, 7), ntk_scaled_base(1e4, 7, 128))


def my_logn_position(factor, train_len):  # the chapter's stub, untouched
    # your code here
    return 0


POSITION_WRONG = {
    "stub": (my_logn_position, ["still the template", "should return an int"]),
    "1-based": (lambda f, L: math.ceil(L**f), ["1-based position i = p + 1"]),
    "rounded down": (lambda f, L: math.floor(L**f) - 1, ["rounded down"]),
    "linear": (lambda f, L: math.ceil(f * L) - 1, ["not factor * L"]),
    "natural log": (lambda f, L: math.ceil(math.exp(f)) - 1, ["to base L"]),
    "a float": (lambda f, L: float(math.ceil(L**f) - 1), ["the float 92681", "Python int"]),
    "a tensor": (
        lambda f, L: torch.tensor(L**f, dtype=torch.float64).ceil().long() - 1,
        ["int64 tensor", "Python int"],
    ),
    "the numpy float of np.ceil": (
        lambda f, L: __import__("numpy").ceil(L**f) - 1,
        ["Python int"],
    ),
    "floor, one past for a whole L ** factor": (
        lambda f, L: math.floor(L**f),
        ["factor 2, L = 2048", "expected 4,194,303", "only while L ** factor is not a whole"],
    ),
}


@pytest.mark.parametrize("answer, words", POSITION_WRONG.values(), ids=list(POSITION_WRONG))
def test_logn_position_checker_explains_wrong_answers(explain, answer, words):
    explain(check_logn_position, answer, words)


def my_base_for_channel(base, head_dim, channel, slowdown):  # the chapter's stub, untouched
    # your code here
    return base


BASE_WRONG = {
    "stub": (my_base_for_channel, ["still the template"]),
    "NTK's exponent for every channel": (
        lambda b, d, i, s: ntk_scaled_base(b, s, d),
        ["right for the slowest channel only"],
    ),
    "no exponent": (lambda b, d, i, s: b * s, ["slows channel i by slowdown ** (2i / d)"]),
    "exponent inverted": (lambda b, d, i, s: b * s ** (2 * i / d), ["upside down"]),
    "channel from 1": (lambda b, d, i, s: b * s ** (d / (2 * (i + 1))), ["counted from 1"]),
    "faster": (lambda b, d, i, s: b / s ** (d / (2 * i)), ["turns faster"]),
    "exponent d / i": (
        lambda b, d, i, s: b * s ** (d / i),
        ["slowest channel (63 of 64)", "expected 72195.9, got 521224"],
    ),
}


@pytest.mark.parametrize("answer, words", BASE_WRONG.values(), ids=list(BASE_WRONG))
def test_base_for_channel_checker_explains_wrong_answers(explain, answer, words):
    explain(check_base_for_channel, answer, words)


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


@pytest.mark.parametrize(
    "checker", [check_logn_position, check_base_for_channel, check_split_c_attn]
)
def test_checkers_explain_any_wrong_answer(explain, any_wrong_answer, checker):
    explain(checker, *any_wrong_answer)
