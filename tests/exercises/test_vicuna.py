"""The Vicuna chapter's checkers: the online-softmax update, the labels of a conversation, and a chunked
logsumexp (transfer). Each accepts an answer written here and explains the wrong answers below."""

from __future__ import annotations

import math

import pytest
import torch

from demos.exercises.vicuna import (
    check_chunked_logsumexp,
    check_online_softmax_update,
    check_vicuna_labels,
)


def update(m, ell, acc, scores, v):  # written here from Algorithm 1 of FlashAttention
    m_new = torch.max(m, scores.max(-1, keepdim=True).values)
    p = (scores - m_new).exp()
    scale = (m - m_new).exp()
    return m_new, scale * ell + p.sum(-1, keepdim=True), scale * acc + p @ v


def labels(input_ids, offsets, spans):  # written here: character by character
    out = torch.full_like(input_ids, -100)
    for i, (a, b) in enumerate(offsets.tolist()):
        if any(max(a, s) < min(b, e) for s, e in spans):
            out[i] = input_ids[i]
    return out


def lse(logits, chunk):  # written here: running max and sum, rescaled
    m = torch.full(logits.shape[:1], -math.inf)
    total = torch.zeros(logits.shape[:1])
    for j in range(0, logits.shape[1], chunk):
        block = logits[:, j : j + chunk]
        m_new = torch.maximum(m, block.max(-1).values)
        total = total * torch.exp(m - m_new) + torch.exp(block - m_new[:, None]).sum(-1)
        m = m_new
    return m + total.log()


def lse_by_logaddexp(logits, chunk):  # written here: each chunk's logsumexp, added in log space
    out = torch.full(logits.shape[:1], -math.inf)
    for block in logits.split(chunk, dim=1):
        out = torch.logaddexp(out, block.logsumexp(1))
    return out


@pytest.mark.parametrize(
    "checker, answer",
    [
        (check_online_softmax_update, update),
        (
            check_online_softmax_update,
            lambda *a: list(update(*a)),
        ),  # a list unpacks as a tuple does
        (check_vicuna_labels, labels),
        (check_chunked_logsumexp, lse),
        (check_chunked_logsumexp, lse_by_logaddexp),
    ],
    ids=["update", "update as a list", "labels", "lse", "lse by logaddexp"],
)
def test_right_answers_pass(checker, answer):
    result = checker(answer)
    assert result.ok, result.message


def my_online_softmax_update(m, ell, acc, scores, v):  # the chapter's stub, untouched
    # your code here: return the new (m, ell, acc)
    return m, ell, acc


def _update_without(rescale_sum=True, rescale_acc=True):
    def wrong(m, ell, acc, scores, v):
        m_new = torch.maximum(m, scores.amax(-1, keepdim=True))
        p = torch.exp(scores - m_new)
        alpha = torch.exp(m - m_new)
        return (
            m_new,
            (alpha if rescale_sum else 1.0) * ell + p.sum(-1, keepdim=True),
            (alpha if rescale_acc else 1.0) * acc + p @ v,
        )

    return wrong


def _update_with_max(reduce):
    def wrong(m, ell, acc, scores, v):
        m_new = torch.maximum(m, reduce(scores))
        p = torch.exp(scores - m_new)
        alpha = torch.exp(m - m_new)
        return m_new, alpha * ell + p.sum(-1, keepdim=True), alpha * acc + p @ v

    return wrong


def _update_inverted_alpha(m, ell, acc, scores, v):
    m_new = torch.maximum(m, scores.amax(-1, keepdim=True))
    p = torch.exp(scores - m_new)
    alpha = torch.exp(m_new - m)
    return m_new, alpha * ell + p.sum(-1, keepdim=True), alpha * acc + p @ v


UPDATE_WRONG = {
    "inverted alpha": (_update_inverted_alpha, ["inverted", "exp(m - m_new)", "NaN"]),
    "max over the queries": (
        _update_with_max(lambda s: s.amax(0, keepdim=True)),
        ["axis 0, the queries", "amax(-1, keepdim=True)"],
    ),
    "max over the queries, transposed back": (
        _update_with_max(lambda s: s.max(dim=-2, keepdim=True).values.T),
        ["axis 0, the queries"],
    ),
    "one max for the whole block": (
        _update_with_max(lambda s: s.max()),
        ["one maximum over the whole block"],
    ),
    "max without keepdim": (_update_with_max(lambda s: s.amax(-1)), ["keepdim=True"]),
    "stub": (my_online_softmax_update, ["still the template"]),
    "sum not rescaled": (_update_without(rescale_sum=False), ["running sum ell was not rescaled"]),
    "acc not rescaled": (_update_without(rescale_acc=False), ["acc was not rescaled"]),
    "block maximum only": (
        lambda m, ell, acc, s, v: (
            s.amax(-1, keepdim=True),
            ell + torch.exp(s - s.amax(-1, keepdim=True)).sum(-1, keepdim=True),
            acc + torch.exp(s - s.amax(-1, keepdim=True)) @ v,
        ),
        ["this block's maximum alone"],
    ),
    "softmax per block, added": (
        lambda m, ell, acc, s, v: (
            torch.maximum(m, s.amax(-1, keepdim=True)),
            ell + 1,
            acc + s.softmax(-1) @ v,
        ),
        ["differ"],
    ),
    "normalised output": (
        lambda m, ell, acc, s, v: (lambda r: (r[0], r[1], r[2] / r[1]))(update(m, ell, acc, s, v)),
        ["acc"],
    ),
}


@pytest.mark.parametrize("answer, words", UPDATE_WRONG.values(), ids=list(UPDATE_WRONG))
def test_update_checker_explains_wrong_answers(explain, answer, words):
    explain(check_online_softmax_update, answer, words)


def my_vicuna_labels(input_ids, offsets, spans):  # the chapter's stub, untouched
    # your code here: return the labels, shape (t,)
    return input_ids


def _starts_inside(input_ids, offsets, spans):
    keep = torch.tensor([any(s <= a < e for s, e in spans) for a, _ in offsets.tolist()])
    return input_ids.masked_fill(~keep, -100)


LABELS_WRONG = {
    "stub": (my_vicuna_labels, ["still the template"]),
    "starts inside": (_starts_inside, ["starts inside a reply", "overlaps"]),
    "every token": (lambda ids, o, s: ids.clone(), ["every token is a target"]),
    "inverted": (
        lambda ids, o, s: ids.masked_fill(labels(ids, o, s) != -100, -100),
        ["inverted"],
    ),
    "shifted": (lambda ids, o, s: torch.roll(labels(ids, o, s), -1), ["shifted by one"]),
    "-1 for ignored": (
        lambda ids, o, s: labels(ids, o, s).masked_fill(labels(ids, o, s) == -100, -1),
        ["-100"],
    ),
    "a boolean mask": (lambda ids, o, s: labels(ids, o, s) != -100, ["bool"]),
    "int32 labels": (lambda ids, o, s: labels(ids, o, s).int(), ["int32", "int64", "Long"]),
    "float labels": (lambda ids, o, s: labels(ids, o, s).float(), ["float32", "int64"]),
    "end inclusive": (
        lambda ids, o, s: ids.masked_fill(
            ~torch.tensor([any(a <= e and b >= st for st, e in s) for a, b in o.tolist()]), -100
        ),
        ["differ"],
    ),
}


@pytest.mark.parametrize("answer, words", LABELS_WRONG.values(), ids=list(LABELS_WRONG))
def test_labels_checker_explains_wrong_answers(explain, answer, words):
    explain(check_vicuna_labels, answer, words)


def my_chunked_logsumexp(logits, chunk):  # the chapter's stub, untouched
    # your code here: return a tensor of shape (n,)
    return logits


def _no_rescale(logits, chunk):
    m = torch.full(logits.shape[:1], -math.inf)
    total = torch.zeros(logits.shape[:1])
    for j in range(0, logits.shape[1], chunk):
        block = logits[:, j : j + chunk]
        m = torch.maximum(m, block.max(-1).values)
        total = total + torch.exp(block - m[:, None]).sum(-1)
    return m + total.log()


LSE_WRONG = {
    "stub": (my_chunked_logsumexp, ["still the template"]),
    "no rescale": (_no_rescale, ["not rescaled"]),
    "no maximum": (lambda x, c: torch.exp(x).sum(-1).log(), ["overflows"]),
    "max of chunks": (
        lambda x, c: torch.stack(
            [x[:, j : j + c].logsumexp(-1) for j in range(0, x.shape[1], c)]
        ).amax(0),
        ["added, not maxed"],
    ),
    "plain maximum": (lambda x, c: x.amax(-1), ["differ"]),
    "torch.logsumexp, chunk ignored": (
        lambda x, c: torch.logsumexp(x, -1),
        ["not computed in chunks", "`logsumexp`", "the function the exercise asks you to build"],
    ),
    "one pass over all columns, chunk ignored": (
        lambda x, c: (lambda m: m + torch.log(torch.exp(x - m[:, None]).sum(-1)))(x.amax(-1)),
        ["not computed in chunks", "`amax` got a tensor of shape (3, 10)", "more than 4 columns"],
    ),
    "all chunks at once, reshaped": (
        lambda x, c: torch.logsumexp(
            torch.nn.functional.pad(x, (0, -x.shape[1] % c), value=-math.inf).view(
                x.shape[0], -1, c
            ),
            (1, 2),
        ),
        ["not computed in chunks"],
    ),
    "row by row, each row whole": (
        lambda x, c: torch.stack([row.logsumexp(0) for row in x]),
        ["not computed in chunks"],
    ),
    "natural mean": (lambda x, c: x.logsumexp(-1) - math.log(x.shape[1]), ["differ"]),
}


@pytest.mark.parametrize("answer, words", LSE_WRONG.values(), ids=list(LSE_WRONG))
def test_lse_checker_explains_wrong_answers(explain, answer, words):
    explain(check_chunked_logsumexp, answer, words)


@pytest.mark.parametrize(
    "checker", [check_online_softmax_update, check_vicuna_labels, check_chunked_logsumexp]
)
def test_checkers_explain_any_wrong_answer(explain, any_wrong_answer, checker):
    explain(checker, *any_wrong_answer)
