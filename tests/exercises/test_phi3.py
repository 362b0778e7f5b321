"""The Phi-3 chapter's checkers: one NF4 block by hand, and a k-bit NormalFloat code book."""

from __future__ import annotations

import pytest
import torch

from demos.exercises.phi3 import check_normal_code, check_quantize_block
from demos.layers.quantization import NF4_CODE


def block_by_hand(block):  # written here: scale by the largest magnitude, nearest level
    absmax = block.abs().max()
    midpoints = (NF4_CODE[:-1] + NF4_CODE[1:]) / 2
    return torch.bucketize(block * (1 / absmax), midpoints), absmax


def block_argmin(block):  # nearest level by distance: ties go to the first (lower) level too
    absmax = block.abs().max()
    return (block[:, None] / absmax - NF4_CODE).abs().argmin(-1).to(torch.uint8), absmax


@pytest.mark.parametrize("answer", [block_by_hand, block_argmin], ids=["bucketize", "argmin"])
def test_quantize_block_checker_accepts_right_answers(answer):
    result = check_quantize_block(answer)
    assert result.ok, result.message


def by_max(block):
    scale = block.max()
    return (block[:, None] / scale - NF4_CODE).abs().argmin(-1), scale


def my_quantize_block(block):  # the chapter's stub, untouched
    # your code here
    return None


BLOCK_WRONG = {
    "stub": (my_quantize_block, ["still the template"]),
    "max, not abs max": (by_max, ["block.max()", "block.abs().max()"]),
    "int4 grid": (
        lambda b: (torch.round(b / b.abs().max() * 7).long() + 7, b.abs().max()),
        ["evenly spaced levels"],
    ),
    "no scaling": (
        lambda b: ((b[:, None] - NF4_CODE).abs().argmin(-1), b.abs().max()),
        ["not divided by absmax"],
    ),
    "signed codes": (lambda b: (block_by_hand(b)[0] - 7, block_by_hand(b)[1]), ["0..15"]),
    "codes only": (lambda b: block_by_hand(b)[0], ["expected a tuple of 2"]),
}


@pytest.mark.parametrize("answer, words", BLOCK_WRONG.values(), ids=list(BLOCK_WRONG))
def test_quantize_block_checker_explains_wrong_answers(explain, answer, words):
    explain(check_quantize_block, answer, words)


def test_quantize_block_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_quantize_block, *any_wrong_answer)


def normal_code(bits):  # written here: QLoRA's recipe for 2**bits levels
    n = 2**bits
    delta = (1 / (2 * (n - 1)) + 1 / (2 * n)) / 2
    p_pos = torch.linspace(1 - delta, 0.5, n // 2 + 1, dtype=torch.float64)[:-1]
    p_neg = torch.linspace(1 - delta, 0.5, n // 2, dtype=torch.float64)[:-1]
    normal = torch.distributions.Normal(0.0, 1.0)
    levels = torch.cat((normal.icdf(p_pos), -normal.icdf(p_neg), torch.zeros(1).double()))
    return (levels / levels.max()).sort().values.float()


def test_normal_code_checker_accepts_the_recipe():
    result = check_normal_code(normal_code)
    assert result.ok, result.message
    assert check_normal_code(lambda k: normal_code(k).double()).ok  # a wider dtype is fine


def even_quantiles(bits):
    n = 2**bits
    q = torch.special.ndtri((torch.arange(n, dtype=torch.float64) + 0.5) / n)
    return (q / q.abs().max()).float()


def my_normal_code(bits):  # the chapter's stub, untouched
    # your code here
    return None


CODE_WRONG = {
    "stub": (my_normal_code, ["still the template"]),
    "no exact zero": (even_quantiles, ["no exact zero"]),
    "not normalised": (
        lambda k: normal_code(k) * 1.7,
        ["differ"],
    ),
    "descending": (lambda k: normal_code(k).flip(0), ["differ"]),
    "always 16 levels": (lambda k: normal_code(4), ["shape"]),
}


@pytest.mark.parametrize("answer, words", CODE_WRONG.values(), ids=list(CODE_WRONG))
def test_normal_code_checker_explains_wrong_answers(explain, answer, words):
    explain(check_normal_code, answer, words)


def test_normal_code_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_normal_code, *any_wrong_answer)
