"""The Pythia chapter's checkers: the parameter count of a GPT-NeoX shape, and partial rotary."""

from __future__ import annotations

import pytest
import torch
from exercise_references.pythia import partial_rope_interleaved
from transformers.models.gptj.modeling_gptj import apply_rotary_pos_emb, create_sinusoidal_positions

from demos.exercises.pythia import check_neox_parameter_count, check_partial_rope_interleaved
from demos.layers.rope import apply_rope


def count(v, c, n, f):  # written here from the block: embeddings, per-layer matrices and biases
    per_layer = (3 * c * c + 3 * c) + (c * c + c) + (c * f + f) + (f * c + c) + 4 * c
    return 2 * v * c + n * per_layer + 2 * c


def interleaved(x, cos, sin):  # written here: GPT-J's pairs (2i, 2i + 1) of the first r channels
    r = 2 * cos.shape[-1]
    x_rot = x[..., :r]
    c, s = cos.repeat_interleave(2, -1), sin.repeat_interleave(2, -1)  # (t, r): one angle per pair
    every_two = torch.stack((-x_rot[..., 1::2], x_rot[..., 0::2]), dim=-1).flatten(-2)
    return torch.cat((x_rot * c + every_two * s, x[..., r:]), dim=-1)


def test_solutions_pass():
    for checker, answer in (
        (check_neox_parameter_count, count),
        (check_partial_rope_interleaved, interleaved),
    ):
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


@pytest.mark.parametrize("b, h, t, d, r", [(1, 2, 5, 16, 4), (2, 3, 7, 8, 8), (1, 1, 1, 6, 2)])
def test_interleaved_reference_equals_gptj(b, h, t, d, r):
    """The reference against transformers' GPT-J: its (b, t, h, r) layout and (b, t, r/2) tables."""
    sincos = create_sinusoidal_positions(t, r).to(torch.float64)  # (t, r): sin then cos, r/2 each
    sin, cos = sincos[:, : r // 2], sincos[:, r // 2 :]
    x = torch.randn(b, h, t, d, dtype=torch.float64)
    ours = partial_rope_interleaved(x, cos, sin)
    x_rot = x[..., :r].transpose(1, 2)  # (b, t, h, r), as GPTJAttention rotates it
    theirs = apply_rotary_pos_emb(x_rot, sin.expand(b, t, r // 2), cos.expand(b, t, r // 2))
    torch.testing.assert_close(ours[..., :r], theirs.transpose(1, 2), atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(ours[..., r:], x[..., r:], atol=0, rtol=0)
    if t > 1:  # and it is not the page's pairing (i, i + r/2)
        neox = apply_rope(x, torch.cat((cos, cos), -1), torch.cat((sin, sin), -1))
        assert not torch.allclose(ours, neox)


def my_partial_rope_interleaved(x, cos, sin):  # the chapter's stub, untouched
    # your code here
    return x


ROPE_WRONG = {
    "stub": (my_partial_rope_interleaved, ["still the template"]),
    "NeoX's pairs": (
        lambda x, cos, sin: apply_rope(x, torch.cat((cos, cos), -1), torch.cat((sin, sin), -1)),
        ["channel i was paired with i + r/2"],
    ),
    "turned backwards": (lambda x, c, s: interleaved(x, c, -s), ["minus its angle"]),
    "float32": (lambda x, c, s: interleaved(x.float(), c.float(), s.float()), ["float32"]),
    "NaN": (lambda x, c, s: interleaved(x, c, s) * float("nan"), ["NaN"]),
}


@pytest.mark.parametrize("answer, words", ROPE_WRONG.values(), ids=list(ROPE_WRONG))
def test_partial_rope_checker_explains_wrong_answers(explain, answer, words):
    explain(check_partial_rope_interleaved, answer, words)


@pytest.mark.parametrize("checker", [check_neox_parameter_count, check_partial_rope_interleaved])
def test_checkers_explain_any_wrong_answer(explain, any_wrong_answer, checker):
    explain(checker, *any_wrong_answer)
