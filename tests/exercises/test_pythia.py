"""The Pythia chapter's checkers: the parameter count of a GPT-NeoX shape, and partial rotary."""

from __future__ import annotations

import pytest
import torch

from demos.exercises.pythia import check_neox_parameter_count, check_partial_rope
from demos.layers.rope import rotate_half


def count(v, c, n, f):  # written here from the block: embeddings, per-layer matrices and biases
    per_layer = (3 * c * c + 3 * c) + (c * c + c) + (c * f + f) + (f * c + c) + 4 * c
    return 2 * v * c + n * per_layer + 2 * c


def partial(x, cos, sin):  # written here: rotate the first r channels, pass the rest
    r = cos.shape[-1]
    x_rot, x_pass = x[..., :r], x[..., r:]
    return torch.cat((x_rot * cos + rotate_half(x_rot) * sin, x_pass), dim=-1)


def test_solutions_pass():
    for checker, answer in ((check_neox_parameter_count, count), (check_partial_rope, partial)):
        result = checker(answer)
        assert result.ok, result.message


def my_neox_parameter_count(
    vocab_size, hidden_size, num_hidden_layers, intermediate_size
):  # the chapter's stub, untouched
    # your code here
    return 0


COUNT_WRONG = {
    "stub": (my_neox_parameter_count, ["still the template"]),
    "no biases": (
        lambda v, c, n, f: 2 * v * c + n * (4 * c * c + 2 * c * f + 4 * c) + 2 * c,
        ["the biases are missing"],
    ),
    "tied head": (lambda v, c, n, f: count(v, c, n, f) - v * c, ["does not tie"]),
    "no LayerNorms": (
        lambda v, c, n, f: count(v, c, n, f) - (2 * n + 1) * 2 * c,
        ["the LayerNorms are missing"],
    ),
    "Llama's SwiGLU": (lambda v, c, n, f: count(v, c, n, f) + n * c * f, ["expected 70,426,624"]),
}


@pytest.mark.parametrize("answer, words", COUNT_WRONG.values(), ids=list(COUNT_WRONG))
def test_count_checker_explains_wrong_answers(explain, answer, words):
    explain(check_neox_parameter_count, answer, words)


def rotate_all(x, cos, sin):  # the trap: tables stretched over every channel
    d = x.shape[-1]
    reps = d // cos.shape[-1]
    return x * cos.repeat(1, reps) + rotate_half(x) * sin.repeat(1, reps)


def my_partial_rope(x, cos, sin):  # the chapter's stub, untouched
    # your code here
    return x


ROPE_WRONG = {
    "stub": (my_partial_rope, ["still the template"]),
    "last r channels": (
        lambda x, cos, sin: torch.cat(
            (x[..., : -cos.shape[-1]], partial(x[..., -cos.shape[-1] :], cos, sin)), dim=-1
        ),
        ["the last r channels were rotated"],
    ),
    "all channels": (rotate_all, ["differ", "Pythia's share"]),
}


@pytest.mark.parametrize("answer, words", ROPE_WRONG.values(), ids=list(ROPE_WRONG))
def test_partial_rope_checker_explains_wrong_answers(explain, answer, words):
    explain(check_partial_rope, answer, words)


@pytest.mark.parametrize("checker", [check_neox_parameter_count, check_partial_rope])
def test_checkers_explain_any_wrong_answer(explain, any_wrong_answer, checker):
    explain(checker, *any_wrong_answer)
