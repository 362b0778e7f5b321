"""The Phi chapter's checkers: the one-norm parallel block, and a greedy fill of a token budget."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from demos.exercises.phi import check_greedy_fill, check_parallel_block
from demos.training.data_selection import keep_within_budget


def block(x, w_attn, w_mlp):  # written here: one LayerNorm read by both branches
    normed = F.layer_norm(x, x.shape[-1:])
    return x + normed @ w_attn + F.gelu(normed @ w_mlp, approximate="tanh")


def fill(scores, lengths, budget):  # written here with a loop: best first, skip what does not fit
    mask, left = torch.zeros(len(scores), dtype=torch.bool), budget
    for i in sorted(range(len(scores)), key=lambda i: -float(scores[i])):  # sorted() is stable
        if int(lengths[i]) <= left:
            mask[i], left = True, left - int(lengths[i])
    return mask


def test_solutions_pass():
    for checker, answer in ((check_parallel_block, block), (check_greedy_fill, fill)):
        result = checker(answer)
        assert result.ok, result.message


def sequential(x, w_attn, w_mlp):
    h = x + F.layer_norm(x, x.shape[-1:]) @ w_attn
    return h + F.gelu(F.layer_norm(h, h.shape[-1:]) @ w_mlp, approximate="tanh")


def my_parallel_block(x, w_attn, w_mlp):  # the chapter's stub, untouched
    # your code here
    return x


BLOCK_WRONG = {
    "stub": (my_parallel_block, ["still the template"]),
    "sequential (Llama's order)": (sequential, ["the MLP read the attention's output"]),
    "no residual": (lambda x, a, m: block(x, a, m) - x, ["x itself was not added back"]),
    "exact GELU": (
        lambda x, a, m: (
            x + F.layer_norm(x, x.shape[-1:]) @ a + F.gelu(F.layer_norm(x, x.shape[-1:]) @ m)
        ),
        ["differ"],
    ),
}


@pytest.mark.parametrize("answer, words", BLOCK_WRONG.values(), ids=list(BLOCK_WRONG))
def test_block_checker_explains_wrong_answers(explain, answer, words):
    explain(check_parallel_block, answer, words)


def my_greedy_fill(scores, lengths, budget):  # the chapter's stub, untouched
    # your code here
    return torch.zeros_like(scores, dtype=torch.bool)


FILL_WRONG = {
    "stub": (my_greedy_fill, ["still the template"]),
    "the page's rule": (keep_within_budget, ["stopped at the first document that did not fit"]),
    "worst first": (lambda s, n, b: fill(-s, n, b), ["the lowest scores were kept first"]),
    "a score threshold": (lambda s, n, b: s > 0.5, ["differ"]),
    "an int mask": (lambda s, n, b: fill(s, n, b).long(), ["int64"]),
}


@pytest.mark.parametrize("answer, words", FILL_WRONG.values(), ids=list(FILL_WRONG))
def test_fill_checker_explains_wrong_answers(explain, answer, words):
    explain(check_greedy_fill, answer, words)


def test_the_questions_example():
    """The prompt's example: the stopping rule uses 400 tokens of 1,000, the greedy fill 1,000."""
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
    lengths = torch.tensor([400, 700, 300, 200, 100])
    assert int(lengths[keep_within_budget(scores, lengths, 1000)].sum()) == 400
    assert int(lengths[fill(scores, lengths, 1000)].sum()) == 1000


@pytest.mark.parametrize("checker", [check_parallel_block, check_greedy_fill])
def test_checkers_explain_any_wrong_answer(explain, any_wrong_answer, checker):
    explain(checker, *any_wrong_answer)
