"""The StripedHyena chapter's checkers: the FFT length, the convolution by hand, the crossover."""

from __future__ import annotations

import math

import pytest
import torch
from exercise_references.stripedhyena import HAND_H, crossover_from_constants, min_fft_length

from demos.exercises.stripedhyena import (
    HAND_U,
    check_conv_by_hand,
    check_crossover_from_constants,
    check_min_fft_length,
)
from demos.layers.fft_conv import direct_causal_conv


def fft_length(n, k):  # written here: the full linear convolution has n + k - 1 entries
    return n + k - 1


def crossover(a, f):  # written here: solve a L >= f log2 L by stepping from 4
    L = 4
    while a * L < f * math.log2(L):
        L += 1
    return L


def test_solutions_pass():
    assert check_min_fft_length(fft_length).ok
    assert check_crossover_from_constants(crossover).ok
    y = direct_causal_conv(torch.tensor([[HAND_U]]).double(), torch.tensor([HAND_H]).double())
    assert check_conv_by_hand(lambda: tuple(y[0, 0].tolist())).ok


def test_min_fft_length_is_the_shortest_that_gives_the_linear_convolution():
    """Circular convolution of length n through torch.fft equals conv1d on the first l outputs
    exactly when n >= the reference; one shorter, it does not."""
    for L, k in [(8, 3), (8, 8), (7, 5), (16, 1)]:
        u, h = torch.randn(1, 1, L, dtype=torch.float64), torch.randn(1, k, dtype=torch.float64)
        want = direct_causal_conv(u, h)
        n = min_fft_length(L, k)
        for size, equal in ((n, True), (n - 1, False)):
            if size < L:
                continue
            got = torch.fft.irfft(torch.fft.rfft(u, n=size) * torch.fft.rfft(h, n=size), n=size)
            assert torch.allclose(got[..., :L], want, atol=1e-12) == equal, (L, k, size)


def test_crossover_reference_meets_its_definition():
    for a, f in [(2.7e-8, 1.5e-7), (1e-9, 1.5e-7), (1e-8, 1e-5), (3.0, 8.0)]:
        L = crossover_from_constants(a, f)
        assert a * L * L >= f * L * math.log2(L) and a * (L - 1) ** 2 < f * (L - 1) * math.log2(
            L - 1
        )


FFT_WRONG = {
    "2l": (lambda n, k: 2 * n, ["not the shortest"]),
    "no padding": (lambda n, k: n, ["circular"]),
    "one more": (lambda n, k: n + k, ["one more than needed"]),
    "one short": (lambda n, k: n + k - 2, ["one too short"]),
    "power of two": (lambda n, k: 2 ** math.ceil(math.log2(n + k - 1)), ["power of two"]),
    "float": (lambda n, k: float(n + k - 1), ["Python int"]),
    "nan": (lambda n, k: math.nan, ["expected"]),
    "tensor": (lambda n, k: torch.tensor(n + k - 1), ["Python int"]),
    "not a function": (10, ["Expected a function"]),
}


@pytest.mark.parametrize("name", FFT_WRONG)
def test_fft_length_checker_rejects_with_its_hint(name):
    fn, hints = FFT_WRONG[name]
    result = check_min_fft_length(fn)
    assert not result.ok
    for hint in hints:
        assert hint in result.message, result.message


def my_conv_by_hand():  # the stub, untouched
    # your code here: return (y_0, y_1, y_2, y_3, y_4), worked out on paper
    return (0.0, 0.0, 0.0, 0.0, 0.0)


HAND_WRONG = {
    "stub": (my_conv_by_hand, ["still the template"]),
    "nan": (lambda: (math.nan,) * 5, ["nan"]),
    "short": (lambda: (1.0, 2.0), ["expected"]),
    "tensor": (lambda: torch.zeros(5), ["expected"]),
    "strings": (lambda: ("1",) * 5, ["should be a number"]),
    "one wrong": (lambda: (2.0, 3.0, -1.5, -1.0, 6.0), ["y_4: expected 7"]),
    "not a function": ((2.0, 3.0, -1.5, -1.0, 7.0), ["Expected a function"]),
}


@pytest.mark.parametrize("name", HAND_WRONG)
def test_conv_by_hand_checker_rejects_with_its_hint(name):
    fn, hints = HAND_WRONG[name]
    result = check_conv_by_hand(fn)
    assert not result.ok
    for hint in hints:
        assert hint in result.message, result.message


def natural(a, f):
    L = 4
    while a * L * L < f * L * math.log(L):
        L += 1
    return L


def strictly_dearer(a, f):  # stops where attention is strictly dearer: wrong at a tie
    L = 4
    while a * L * L <= f * L * math.log2(L):
        L += 1
    return L


CROSS_WRONG = {
    "strict >": (strictly_dearer, ["at a tie"]),
    "natural log": (natural, ["natural log"]),
    "no log": (lambda a, f: max(4, math.ceil(f / a)), ["log2 L factor was dropped"]),
    "power of two": (lambda a, f: 2 ** math.ceil(math.log2(crossover(a, f))), ["power of two"]),
    "one short": (lambda a, f: crossover(a, f) - 1, ["one too short"]),
    "float": (lambda a, f: float(crossover(a, f)), ["Python int"]),
    "nan": (lambda a, f: math.nan, ["expected"]),
}


@pytest.mark.parametrize("name", CROSS_WRONG)
def test_crossover_checker_rejects_with_its_hint(name):
    fn, hints = CROSS_WRONG[name]
    result = check_crossover_from_constants(fn)
    assert not result.ok
    for hint in hints:
        assert hint in result.message, result.message
