"""The Llama 3 chapter's checkers: Llama 3.1's scaled frequencies and the vocabulary's parameters."""

from __future__ import annotations

import math

import pytest
import torch

from demos.exercises.llama3 import check_llama3_frequencies, check_vocabulary_parameters


def frequencies(inv_freq, factor, low, high, L):  # written here: a loop, one frequency at a time
    out = []
    for theta in inv_freq.tolist():
        wavelength = 2 * math.pi / theta
        if wavelength < L / high:
            out.append(theta)
        elif wavelength > L / low:
            out.append(theta / factor)
        else:
            s = (L / wavelength - low) / (high - low)
            out.append((1 - s) * theta / factor + s * theta)
    return torch.tensor(out, dtype=inv_freq.dtype)


@pytest.mark.parametrize(
    "answer",
    [frequencies, lambda x, *a: frequencies(x.double(), *a)],
    ids=["loop", "float64"],
)
def test_frequencies_checker_accepts_right_answers(answer):
    result = check_llama3_frequencies(answer)
    assert result.ok, result.message


def my_llama3_frequencies(
    inv_freq, factor, low_freq_factor, high_freq_factor, original_max_position_embeddings
):  # the chapter's stub, untouched
    # your code here
    return inv_freq


FREQUENCIES_WRONG = {
    "the stub": (my_llama3_frequencies, ["still the template"]),
    "all scaled": (lambda inv_freq, f, *a: inv_freq / f, ["position interpolation"]),
    "hard cutoff": (
        lambda x, f, lo, hi, L: torch.where(2 * math.pi / x > L / lo, x / f, x),
        ["no blended band", "index (29,)"],
    ),
    "blend reversed": (
        lambda x, f, lo, hi, L: torch.where(
            (2 * math.pi / x >= L / hi) & (2 * math.pi / x <= L / lo),
            (1 - (L * x / (2 * math.pi) - lo) / (hi - lo)) * x
            + (L * x / (2 * math.pi) - lo) / (hi - lo) * x / f,
            torch.where(2 * math.pi / x > L / lo, x / f, x),
        ),
        ["blend runs the wrong way"],
    ),
}


@pytest.mark.parametrize("case", list(FREQUENCIES_WRONG))
def test_frequencies_checker_explains_wrong_answers(case, explain):
    answer, words = FREQUENCIES_WRONG[case]
    explain(check_llama3_frequencies, answer, words)


def test_frequencies_checker_never_raises(any_wrong_answer, explain):
    explain(check_llama3_frequencies, *any_wrong_answer)


def test_vocabulary_checker_accepts_right_answers():
    for answer in [
        lambda v, c, tied: v * c * (1 if tied else 2),
        lambda v, c, t: float(v * c * (2 - t)),
    ]:
        result = check_vocabulary_parameters(answer)
        assert result.ok, result.message


def my_vocabulary_parameters(vocab_size, hidden_size, tied):  # the chapter's stub, untouched
    # your code here
    return 0


VOCABULARY_WRONG = {
    "the stub": (my_vocabulary_parameters, ["still the template"]),
    "tied counted twice": (lambda v, c, tied: 2 * v * c, ["counted twice", "Gemma 2B"]),
    "no head": (lambda v, c, tied: v * c, ["output head is missing", "Llama 3 8B"]),
    "swapped": (lambda v, c, tied: v * c * (2 if tied else 1), ["swapped"]),
}


@pytest.mark.parametrize("case", list(VOCABULARY_WRONG))
def test_vocabulary_checker_explains_wrong_answers(case, explain):
    answer, words = VOCABULARY_WRONG[case]
    explain(check_vocabulary_parameters, answer, words)


def test_vocabulary_checker_never_raises(any_wrong_answer, explain):
    explain(check_vocabulary_parameters, *any_wrong_answer)
