"""The Phi chapter's checkers: the one-norm parallel block, and a token budget for scored documents."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from demos.exercises.phi import check_keep_within_budget, check_parallel_block


def block(x, w_attn, w_mlp):  # written here: one LayerNorm read by both branches
    normed = F.layer_norm(x, x.shape[-1:])
    return x + normed @ w_attn + F.gelu(normed @ w_mlp, approximate="tanh")


def keep(scores, lengths, budget):  # written here with a loop: best first, stop at the first misfit
    mask = torch.zeros(len(scores), dtype=torch.bool)
    used = 0
    for i in sorted(range(len(scores)), key=lambda i: -float(scores[i])):
        if used + int(lengths[i]) > budget:
            break
        mask[i], used = True, used + int(lengths[i])
    return mask


def test_solutions_pass():
    for checker, answer in ((check_parallel_block, block), (check_keep_within_budget, keep)):
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


def skip_and_continue(scores, lengths, budget):
    mask, used = torch.zeros(len(scores), dtype=torch.bool), 0
    for i in sorted(range(len(scores)), key=lambda i: -float(scores[i])):
        if used + int(lengths[i]) <= budget:
            mask[i], used = True, used + int(lengths[i])
    return mask


def my_keep(scores, lengths, budget):  # the chapter's stub, untouched
    # your code here
    return torch.zeros_like(scores, dtype=torch.bool)


KEEP_WRONG = {
    "stub": (my_keep, ["still the template"]),
    "worst first": (lambda s, n, b: keep(-s, n, b), ["the lowest scores were kept first"]),
    "skip and continue": (skip_and_continue, ["stops at the first document that does not fit"]),
    "a score threshold": (lambda s, n, b: s > 0.5, ["differ"]),
}


@pytest.mark.parametrize("answer, words", KEEP_WRONG.values(), ids=list(KEEP_WRONG))
def test_keep_checker_explains_wrong_answers(explain, answer, words):
    explain(check_keep_within_budget, answer, words)


@pytest.mark.parametrize("checker", [check_parallel_block, check_keep_within_budget])
def test_checkers_explain_any_wrong_answer(explain, any_wrong_answer, checker):
    explain(checker, *any_wrong_answer)
