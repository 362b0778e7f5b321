"""References and known mistakes for the Vicuna chapter's exercises: one step of the online softmax,
the labels of a two-turn conversation, and a logsumexp over a vocabulary taken in chunks (transfer:
the same running max and sum).

Over ~300 lines on purpose: one chapter's checkers, one module per chapter as the layout rule has it
(``demos/exercises/<chapter>.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from demos.exercises.core import Check, Mistake, check_function
from demos.exercises.describe import describe_error
from demos.exercises.vicuna import (  # shared with the package
    _ONE_MAXIMUM,
    _not_in_chunks,
    _wrong_axis,
)
from demos.layers.tiled_attention import online_softmax_update
from demos.training.sft import IGNORE_INDEX

# ---------------------------------------------------------------- exercise 1: the online update


def _no_sum_rescale(m, ell, acc, scores, v):
    m_new = torch.maximum(m, scores.amax(-1, keepdim=True))
    p = torch.exp(scores - m_new)
    return m_new, ell + p.sum(-1, keepdim=True), torch.exp(m - m_new) * acc + p @ v


def _no_acc_rescale(m, ell, acc, scores, v):
    m_new = torch.maximum(m, scores.amax(-1, keepdim=True))
    p = torch.exp(scores - m_new)
    return m_new, torch.exp(m - m_new) * ell + p.sum(-1, keepdim=True), acc + p @ v


def _block_max_only(m, ell, acc, scores, v):
    """Subtracts the block's own maximum and never compares it with the running one."""
    m_blk = scores.amax(-1, keepdim=True)
    p = torch.exp(scores - m_blk)
    return m_blk, ell + p.sum(-1, keepdim=True), acc + p @ v


def _normalised_block(m, ell, acc, scores, v):
    """Normalises each block on its own (a softmax per block), then adds the blocks."""
    m_new = torch.maximum(m, scores.amax(-1, keepdim=True))
    p = torch.softmax(scores, -1)
    alpha = torch.exp(m - m_new)
    return m_new, alpha * ell + p.sum(-1, keepdim=True), alpha * acc + p @ v


def _inverted_alpha(m, ell, acc, scores, v):
    """Rescales by exp(m_new - m), the inverse of the factor: the first block then gives inf * 0."""
    m_new = torch.maximum(m, scores.amax(-1, keepdim=True))
    p = torch.exp(scores - m_new)
    alpha = torch.exp(m_new - m)
    return m_new, alpha * ell + p.sum(-1, keepdim=True), alpha * acc + p @ v


def _max_of_block(m, ell, acc, scores, v):
    """Takes one maximum over the whole block (every query's scores) instead of one per query."""
    m_new = torch.maximum(m, scores.amax())
    p = torch.exp(scores - m_new)
    alpha = torch.exp(m - m_new)
    return m_new, alpha * ell + p.sum(-1, keepdim=True), alpha * acc + p @ v


def _update_cases() -> dict[str, tuple]:
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(4, 3, generator=gen)
    first = torch.randn(2, 4, generator=gen) * 2
    later = torch.randn(2, 4, generator=gen) * 2 + torch.tensor([[3.0], [-3.0]])
    masked = later.clone()
    masked[:, 2:] = -math.inf  # keys after the queries, hidden
    running = (
        torch.tensor([[1.5], [0.5]]),  # m: row 0's maximum will move, row 1's will not
        torch.tensor([[2.0], [3.0]]),  # ell
        torch.randn(2, 3, generator=gen),  # acc
    )
    start = (torch.full((2, 1), -math.inf), torch.zeros(2, 1), torch.zeros(2, 3))
    return {
        "the first block (m = -inf, ell = 0, acc = 0)": (*start, first, v),
        "a later block that raises row 0's maximum": (*running, later, v),
        "a later block, its last two keys hidden (-inf)": (*running, masked, v),
    }


def check_online_softmax_update(fn: Callable[..., tuple]) -> Check:
    """Check ``update(m, ell, acc, scores, v) -> (m, ell, acc)``: ``m, ell (i, 1)``, ``acc (i, d)``,
    ``scores (i, j)``, ``v (j, d)``."""
    mistakes = [
        Mistake(
            _no_sum_rescale,
            "the running sum ell was not rescaled: when the maximum moves from m to m_new, the "
            "old terms exp(s - m) must become exp(s - m_new), so ell needs the factor "
            "exp(m - m_new) too, as acc does.",
        ),
        Mistake(
            _no_acc_rescale,
            "the accumulated output acc was not rescaled by exp(m - m_new) when the maximum moved.",
        ),
        Mistake(
            _block_max_only,
            "m became this block's maximum alone: it must be the maximum of everything seen so "
            "far, max(m, max(scores)), and the old ell and acc rescaled to it.",
        ),
        Mistake(
            _normalised_block,
            "each block was normalised on its own (a softmax per block). Keep the block's weights "
            "unnormalised, exp(scores - m_new); the one division by ell happens at the end.",
        ),
        Mistake(
            _inverted_alpha,
            "the rescaling factor is inverted: alpha = exp(m - m_new), the old maximum minus the "
            "new one (at most 1), not exp(m_new - m). On the first block m = -inf, so the inverted "
            "factor is exp(+inf) = inf, and inf * ell (= 0) is NaN.",
        ),
        Mistake(
            _max_of_block,
            _ONE_MAXIMUM,
        ),
    ]
    cases = _update_cases()
    result = check_function(
        fn,
        online_softmax_update,
        cases,
        ("m", "ell", "acc", "scores", "v"),
        mistakes=mistakes,
        names=("m", "ell", "acc"),
        atol=1e-5,
        rtol=1e-5,
    )
    if result.ok or not result.attempted or "Likely cause" in result.message:
        return result
    try:
        cause = _wrong_axis(fn, next(iter(cases.values())))
    except Exception:  # a checker never raises on a learner's answer
        cause = None
    return Check(False, f"{result.message} Likely cause: {cause}") if cause else result


# ---------------------------------------------------------------- exercise 2: the labels


def vicuna_labels(
    input_ids: torch.Tensor, offsets: torch.Tensor, spans: list[tuple[int, int]]
) -> torch.Tensor:
    """The reference: ``input_ids (t,)`` where the token's ``[start, end)`` overlaps a span, else -100."""
    start, end = offsets[:, 0], offsets[:, 1]
    trained = torch.zeros_like(input_ids, dtype=torch.bool)
    for s, e in spans:
        trained |= (start < e) & (end > s)
    return input_ids.masked_fill(~trained, IGNORE_INDEX)


def _starts_inside(input_ids, offsets, spans):
    start = offsets[:, 0]
    trained = torch.zeros_like(input_ids, dtype=torch.bool)
    for s, e in spans:
        trained |= (start >= s) & (start < e)
    return input_ids.masked_fill(~trained, IGNORE_INDEX)


def _every_token(input_ids, offsets, spans):
    return input_ids.clone()


def _the_user_turns(input_ids, offsets, spans):
    trained = vicuna_labels(input_ids, offsets, spans) != IGNORE_INDEX
    return input_ids.masked_fill(trained, IGNORE_INDEX)


def _shifted(input_ids, offsets, spans):
    labels = vicuna_labels(input_ids, offsets, spans)
    return torch.cat([labels[1:], labels.new_full((1,), IGNORE_INDEX)])


def _minus_one(input_ids, offsets, spans):
    labels = vicuna_labels(input_ids, offsets, spans)
    return labels.masked_fill(labels == IGNORE_INDEX, -1)


def _label_cases() -> dict[str, tuple]:
    from demos.toys.vicuna import tokenizer
    from demos.training.conversation import render_vicuna

    tok = tokenizer()
    cases = {}
    for name, messages in {
        "two turns (one question, one answer)": [
            {"role": "user", "content": "Where do vicunas live?"},
            {"role": "assistant", "content": "In the high Andes."},
        ],
        "two exchanges (four turns)": [
            {"role": "user", "content": "Hi!"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "What do they eat?"},
            {"role": "assistant", "content": "Grasses."},
        ],
    }.items():
        text, spans = render_vicuna(messages)
        enc = tok(text, return_offsets_mapping=True)
        ids = torch.tensor(enc["input_ids"])
        cases[name] = (ids, torch.tensor(enc["offset_mapping"]), spans)
    return cases


def check_vicuna_labels(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``labels(input_ids, offsets, spans)``: ``input_ids (t,)``, ``offsets (t, 2)`` character
    ``[start, end)`` of each token, ``spans`` the assistant replies' ``[start, end)``; returns ``(t,)``
    labels, the id where the token is trained and -100 elsewhere."""
    mistakes = [
        Mistake(
            _starts_inside,
            "a token was trained only if it starts inside a reply. The first token of a reply "
            "starts one character early: byte-level BPE glues the space after 'ASSISTANT:' to "
            "the reply's first letters. Train every token that overlaps a reply.",
        ),
        Mistake(
            _every_token,
            "every token is a target, the user's questions and the system prompt included.",
        ),
        Mistake(_the_user_turns, "the mask is inverted: it trains everything but the replies."),
        Mistake(
            _shifted,
            "the labels were shifted by one. Keep labels aligned with input_ids: the loss "
            "(transformers' and demos.training.sft.causal_lm_loss) shifts them itself.",
        ),
        Mistake(
            _minus_one,
            "ignored positions hold -1. The loss ignores -100 (ignore_index), and -1 is not a "
            "token id either.",
        ),
    ]
    cases = _label_cases()
    result = check_function(
        fn, vicuna_labels, cases, ("input_ids", "offsets", "spans"), mistakes=mistakes
    )
    if not result.ok:
        return result
    try:  # the values are right: now the dtype, which the loss needs
        dtype = fn(
            *(a.clone() if isinstance(a, torch.Tensor) else a for a in cases[next(iter(cases))])
        ).dtype
    except Exception as error:  # it passed a moment ago; never raise on the learner's code
        return Check(False, f"A second call {describe_error(error)}")
    if dtype != torch.int64:
        return Check(
            False,
            f"The values are right, but the labels are {str(dtype).removeprefix('torch.')}: "
            "return them as int64 (torch.long), the dtype of input_ids. The loss needs it: "
            "cross_entropy takes its targets as int64 and raises on int32 ('expected target "
            "dtype to be Long'), and a floating-point label is not a class index.",
        )
    return result


# ---------------------------------------------------------------- exercise 3 (transfer): logsumexp


def chunked_logsumexp(logits: torch.Tensor, chunk: int) -> torch.Tensor:
    """The reference: ``logsumexp`` over the last axis of ``logits (n, v)``: ``(n,)``."""
    return torch.logsumexp(logits, dim=-1)


def _no_rescale(logits, chunk):
    m = torch.full(logits.shape[:-1], -math.inf)
    total = torch.zeros(logits.shape[:-1])
    for j in range(0, logits.shape[-1], chunk):
        block = logits[:, j : j + chunk]
        m = torch.maximum(m, block.amax(-1))
        total = total + torch.exp(block - m[:, None]).sum(-1)
    return m + torch.log(total)


def _no_max(logits, chunk):
    total = torch.zeros(logits.shape[:-1])
    for j in range(0, logits.shape[-1], chunk):
        total = total + torch.exp(logits[:, j : j + chunk]).sum(-1)
    return torch.log(total)


def _max_of_chunks(logits, chunk):
    return torch.stack(
        [torch.logsumexp(logits[:, j : j + chunk], -1) for j in range(0, logits.shape[-1], chunk)],
        -1,
    ).amax(-1)


# What may see all v columns at once: reading shapes, slicing, splitting, viewing, converting.


def check_chunked_logsumexp(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``lse(logits, chunk)``: ``logits (n, v)``, ``chunk`` columns at a time; returns ``(n,)``.

    Beyond the values, no torch function may compute on more than ``chunk`` columns of the logits at
    once (slicing and splitting them is reading, and allowed)."""
    gen = torch.Generator().manual_seed(0)
    cases = {  # v <= chunk**2 in each: a tensor of one number per chunk is no wider than a chunk
        "v = 10 in chunks of 4 (the last chunk holds 2)": (
            torch.randn(3, 10, generator=gen) * 3,
            4,
        ),
        "rising logits (the maximum moves every chunk)": (
            torch.linspace(0, 20, 24).repeat(2, 1) + torch.randn(2, 24, generator=gen),
            5,
        ),
        "logits near 1000 (exp overflows without the maximum)": (
            1000 + torch.randn(2, 12, generator=gen),
            4,
        ),
    }
    mistakes = [
        Mistake(
            _no_rescale,
            "the running sum was not rescaled when the maximum moved: multiply it by "
            "exp(m_old - m_new) before adding the new chunk's exp(x - m_new).",
        ),
        Mistake(
            _no_max,
            "exp of the raw logits overflows (exp(1000) is inf in float32): subtract a running "
            "maximum, as the online softmax does.",
        ),
        Mistake(
            _max_of_chunks,
            "that is the largest chunk's logsumexp; the chunks' sums must be added, not maxed.",
        ),
    ]
    result = check_function(
        fn,
        chunked_logsumexp,
        cases,
        ("logits", "chunk"),
        mistakes=mistakes,
        atol=1e-4,
        rtol=1e-5,
    )
    if not result.ok:
        return result
    try:
        return _not_in_chunks(fn, cases) or result
    except Exception as error:  # it passed a moment ago; never raise on the learner's code
        return Check(False, f"A second call {describe_error(error)}")
