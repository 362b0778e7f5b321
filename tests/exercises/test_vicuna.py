"""The Vicuna chapter's checkers: merging two partial softmax states, the labels of a conversation's
last reply, and a chunked logsumexp (transfer). Each accepts an answer written here and explains the
wrong answers below."""

from __future__ import annotations

import math

import pytest
import torch

from demos.exercises.vicuna import (
    check_chunked_logsumexp,
    check_last_reply_labels,
    check_merge_states,
)


def merge(m_a, ell_a, acc_a, m_b, ell_b, acc_b):  # written here: NaN factors (no key) set to 0
    m = torch.max(m_a, m_b)
    alpha = (m_a - m).exp().nan_to_num(0.0)
    beta = (m_b - m).exp().nan_to_num(0.0)
    return m, alpha * ell_a + beta * ell_b, alpha * acc_a + beta * acc_b


def merge_by_logaddexp(m_a, ell_a, acc_a, m_b, ell_b, acc_b):  # ell through log space
    m = torch.maximum(m_a, m_b)
    shift = torch.where(m.isinf(), 0.0, m)
    ell = torch.exp(torch.logaddexp(m_a + ell_a.log(), m_b + ell_b.log()) - shift)
    return m, ell, torch.exp(m_a - shift) * acc_a + torch.exp(m_b - shift) * acc_b


def last_labels(input_ids, offsets, spans):  # written here: character by character
    out = torch.full_like(input_ids, -100)
    for i, (a, b) in enumerate(offsets.tolist()):
        if spans and max(a, spans[-1][0]) < min(b, spans[-1][1]):
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
        (check_merge_states, merge),
        (check_merge_states, merge_by_logaddexp),
        (check_merge_states, lambda *a: list(merge(*a))),  # a list unpacks as a tuple does
        (check_last_reply_labels, last_labels),
        (check_chunked_logsumexp, lse),
        (check_chunked_logsumexp, lse_by_logaddexp),
    ],
    ids=["merge", "merge by logaddexp", "merge as a list", "labels", "lse", "lse by logaddexp"],
)
def test_right_answers_pass(checker, answer):
    result = checker(answer)
    assert result.ok, result.message


def my_merge_states(m_a, ell_a, acc_a, m_b, ell_b, acc_b):  # the chapter's stub, untouched
    # your code here: return the merged (m, ell, acc)
    return m_a, ell_a, acc_a


def _merge_with(factor=None, m_of=torch.maximum, out=lambda m, ell, acc: (m, ell, acc)):
    """The merge with one piece swapped: the factor exp(m_x - m) or the merged maximum."""

    def wrong(m_a, ell_a, acc_a, m_b, ell_b, acc_b):
        m = m_of(m_a, m_b)
        f = factor or (lambda x, m: (x - m).exp().nan_to_num(0.0))
        alpha, beta = f(m_a, m), f(m_b, m)
        return out(m, alpha * ell_a + beta * ell_b, alpha * acc_a + beta * acc_b)

    return wrong


MERGE_WRONG = {
    "stub": (my_merge_states, ["still the template"]),
    "b not rescaled": (
        lambda m_a, ell_a, acc_a, m_b, ell_b, acc_b: (
            lambda m: (
                m,
                (m_a - m).exp().nan_to_num(0.0) * ell_a + ell_b,
                (m_a - m).exp().nan_to_num(0.0) * acc_a + acc_b,
            )
        )(torch.maximum(m_a, m_b)),
        ["b's sums were added as they are", "exp(m_b - m)"],
    ),
    "maxima added": (
        _merge_with(m_of=torch.add, factor=lambda x, m: (x - m).exp()),
        ["m_a + m_b", "max(m_a, m_b)"],
    ),
    "maxima added, NaN factors set to 0": (_merge_with(m_of=torch.add), ["m: 3 of 3", "differ"]),
    "acc normalised": (
        _merge_with(out=lambda m, ell, acc: (m, ell, acc / ell)),
        ["acc was divided by ell"],
    ),
    "NaN on a row with no key": (
        _merge_with(factor=lambda x, m: (x - m).exp()),
        ["no key", "(-inf, 0, 0)", "NaN"],
    ),
    "inverted factors": (
        _merge_with(factor=lambda x, m: (m - x).exp()),
        ["inverted", "exp(m_a - m)"],
    ),
    "exp of the maxima": (
        _merge_with(factor=lambda x, m: x.exp() / m.exp()),
        ["overflows", "exp(800)", "scores near 800"],
    ),
    "float32 result": (
        lambda *a: tuple(x.float() for x in merge(*a)),
        ["float32", "torch.float64"],
    ),
    "the larger side only": (
        lambda m_a, ell_a, acc_a, m_b, ell_b, acc_b: tuple(
            torch.where(m_a >= m_b, x, y) for x, y in ((m_a, m_b), (ell_a, ell_b), (acc_a, acc_b))
        ),
        ["differ"],
    ),
    "min for max": (_merge_with(m_of=torch.minimum), ["differ"]),
}


@pytest.mark.parametrize("answer, words", MERGE_WRONG.values(), ids=list(MERGE_WRONG))
def test_merge_checker_explains_wrong_answers(explain, answer, words):
    explain(check_merge_states, answer, words)


def my_last_reply_labels(input_ids, offsets, spans):  # the chapter's stub, untouched
    # your code here: return the labels, shape (t,)
    return input_ids


def _labels_of(trained):
    """Labels from a rule ``trained(a, b, spans) -> bool`` on each token's offsets (a, b)."""

    def labels(input_ids, offsets, spans):
        keep = torch.tensor([bool(trained(a, b, spans)) for a, b in offsets.tolist()])
        return input_ids.masked_fill(~keep, -100)

    return labels


LABELS_WRONG = {
    "stub": (my_last_reply_labels, ["still the template"]),
    "every reply (the page's rule)": (
        _labels_of(lambda a, b, spans: any(max(a, s) < min(b, e) for s, e in spans)),
        ["every reply is trained", "spans[-1]"],
    ),
    "the first reply": (
        _labels_of(lambda a, b, spans: spans and max(a, spans[0][0]) < min(b, spans[0][1])),
        ["differ"],
    ),
    "</s> left out": (
        _labels_of(lambda a, b, spans: spans and max(a, spans[-1][0]) < min(b, spans[-1][1] - 4)),
        ["</s> was left out"],
    ),
    "ends inclusive": (
        _labels_of(lambda a, b, spans: spans and a <= spans[-1][1] and b >= spans[-1][0]),
        ["half-open", "only touches the span"],
    ),
    "to the end of the text": (
        _labels_of(lambda a, b, spans: spans and b > spans[-1][0]),
        ["end on a user turn", "ends on a user turn"],
    ),
    "starts inside": (
        _labels_of(lambda a, b, spans: spans and spans[-1][0] <= a < spans[-1][1]),
        ["starts inside the reply", "overlaps"],
    ),
    "int32 labels": (lambda *a: last_labels(*a).int(), ["int32", "int64", "Long"]),
    "float labels": (lambda *a: last_labels(*a).float(), ["float32", "int64"]),
    "a boolean mask": (lambda *a: last_labels(*a) != -100, ["bool"]),
    "-1 for ignored": (
        lambda *a: (lambda x: x.masked_fill(x == -100, -1))(last_labels(*a)),
        ["differ"],
    ),
    "spans[-1] on no reply": (
        _labels_of(lambda a, b, spans: max(a, spans[-1][0]) < min(b, spans[-1][1])),
        ["no reply at all", "IndexError"],
    ),
}


@pytest.mark.parametrize("answer, words", LABELS_WRONG.values(), ids=list(LABELS_WRONG))
def test_labels_checker_explains_wrong_answers(explain, answer, words):
    explain(check_last_reply_labels, answer, words)


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
    "checker", [check_merge_states, check_last_reply_labels, check_chunked_logsumexp]
)
def test_checkers_explain_any_wrong_answer(explain, any_wrong_answer, checker):
    explain(checker, *any_wrong_answer)
