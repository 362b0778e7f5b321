"""References and known mistakes for the Vicuna chapter's exercises: merging two partial softmax
states computed on disjoint blocks of keys (the split-KV step), the labels that train only a
conversation's last reply, and a logsumexp over a vocabulary taken in chunks (transfer: the same
running max and sum).

Over ~300 lines on purpose: one chapter's checkers, one module per chapter as the layout rule has it
(``demos/exercises/<chapter>.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from demos.exercises.core import Check, Mistake, check_function
from demos.exercises.describe import describe_error
from demos.exercises.vicuna import _not_in_chunks  # shared with the package
from demos.parity import tolerance_for
from demos.training.sft import IGNORE_INDEX

# ---------------------------------------------------------------- exercise 1: merging two states


def merge_states(m_a, ell_a, acc_a, m_b, ell_b, acc_b):
    """The reference: the state of the union of two disjoint key blocks. ``m, ell (i, 1)``,
    ``acc (i, d)`` on each side; a side that saw no key holds ``(-inf, 0, 0)`` and a row that no key
    reached on either side comes out as that state again."""
    m = torch.maximum(m_a, m_b)
    finite = torch.where(m == -math.inf, torch.zeros_like(m), m)  # no key at all: exp(-inf) = 0
    alpha, beta = torch.exp(m_a - finite), torch.exp(m_b - finite)
    return m, alpha * ell_a + beta * ell_b, alpha * acc_a + beta * acc_b


def _b_not_rescaled(m_a, ell_a, acc_a, m_b, ell_b, acc_b):
    """The page's update copied: a rescaled as the running state, b added as if it were a block's
    weights exp(s - m), although b's sums are relative to its own maximum m_b."""
    m = torch.maximum(m_a, m_b)
    finite = torch.where(m == -math.inf, torch.zeros_like(m), m)
    alpha = torch.exp(m_a - finite)
    return m, alpha * ell_a + ell_b, alpha * acc_a + acc_b


def _maxima_added(m_a, ell_a, acc_a, m_b, ell_b, acc_b):
    m = m_a + m_b
    return (
        m,
        torch.exp(m_a - m) * ell_a + torch.exp(m_b - m) * ell_b,
        (torch.exp(m_a - m) * acc_a + torch.exp(m_b - m) * acc_b),
    )


def _acc_normalised(m_a, ell_a, acc_a, m_b, ell_b, acc_b):
    """Divides by the merged sum: the attention output, not the state the next merge needs."""
    m, ell, acc = merge_states(m_a, ell_a, acc_a, m_b, ell_b, acc_b)
    return m, ell, acc / ell


def _no_guard(m_a, ell_a, acc_a, m_b, ell_b, acc_b):
    """Right wherever a key was seen; a row with none gives exp(-inf - (-inf)) = exp(NaN)."""
    m = torch.maximum(m_a, m_b)
    alpha, beta = torch.exp(m_a - m), torch.exp(m_b - m)
    return m, alpha * ell_a + beta * ell_b, alpha * acc_a + beta * acc_b


def _inverted_factor(m_a, ell_a, acc_a, m_b, ell_b, acc_b):
    m = torch.maximum(m_a, m_b)
    finite = torch.where(m == -math.inf, torch.zeros_like(m), m)
    alpha, beta = torch.exp(finite - m_a), torch.exp(finite - m_b)
    return m, alpha * ell_a + beta * ell_b, alpha * acc_a + beta * acc_b


def _unshifted_sums(m_a, ell_a, acc_a, m_b, ell_b, acc_b):
    """Undoes the maxima (exp(m) * ell is the plain sum of exp(s)), adds, and shifts back."""
    m = torch.maximum(m_a, m_b)
    ea, eb, em = torch.exp(m_a), torch.exp(m_b), torch.exp(m)
    return m, (ea * ell_a + eb * ell_b) / em, (ea * acc_a + eb * acc_b) / em


def _state(scores: torch.Tensor, v: torch.Tensor) -> tuple:
    """``(m, ell, acc)`` of one block of keys, computed directly; ``(-inf, 0, 0)`` on a row whose
    keys are all hidden."""
    m = scores.amax(-1, keepdim=True)
    p = torch.exp(scores - torch.where(m == -math.inf, torch.zeros_like(m), m))
    return m, p.sum(-1, keepdim=True), p @ v


def _merge_cases() -> dict[str, tuple]:
    gen = torch.Generator().manual_seed(0)
    f64 = torch.float64
    v = torch.randn(8, 3, generator=gen, dtype=f64)
    scores = torch.randn(3, 8, generator=gen, dtype=f64) * 2
    scores[0, 4:] += 3.0  # row 0: b holds the maximum; rows 1 and 2: a does
    scores[1, :4] += 3.0
    hidden = scores.clone()
    hidden[1, 4:] = -math.inf  # row 1: every key of b hidden (after the query, or padding)
    hidden[2, :4] = -math.inf  # row 2: every key of a hidden
    empty = hidden.clone()
    empty[0] = -math.inf  # row 0: no key on either side
    large = 800.0 + scores  # exp(800) overflows float64 (it stops at about exp(709))

    def split(s):
        return (*_state(s[:, :4], v[:4]), *_state(s[:, 4:], v[4:]))

    return {
        "keys 0-3 | 4-7: b holds row 0's maximum, a rows 1 and 2's": split(scores),
        "row 1 saw only hidden keys in b, row 2 only in a": split(hidden),
        "row 0 saw no key at all (both sides -inf, 0, 0)": split(empty),
        "scores near 800 (exp(score) overflows float64)": split(large),
    }


def check_merge_states(fn: Callable[..., tuple]) -> Check:
    """Check ``merge(m_a, ell_a, acc_a, m_b, ell_b, acc_b) -> (m, ell, acc)``: ``m, ell (i, 1)``,
    ``acc (i, d)`` on each side, float64; the result in the same shapes and dtype."""
    mistakes = [
        Mistake(
            _b_not_rescaled,
            "b's sums were added as they are: ell_b and acc_b are sums of exp(s - m_b), relative "
            "to b's own maximum, so they need the factor exp(m_b - m) just as a's need "
            "exp(m_a - m). (In the page's update the block's weights are computed with m_new "
            "already; a merged state's are not.)",
        ),
        Mistake(
            _maxima_added,
            "m is the sum m_a + m_b: it must be the maximum of every score seen, max(m_a, m_b), "
            "so that every exponent is at most 0 and the next merge or update finds the "
            "running maximum it expects.",
        ),
        Mistake(
            _acc_normalised,
            "acc was divided by ell: the merge returns the unnormalised sum, like the page's "
            "update, so that further blocks or splits can still be merged in; the one division "
            "acc / ell happens at the very end.",
        ),
        Mistake(
            _no_guard,
            "a row that no key reached on either side comes out NaN: m_a = m_b = m = -inf, and "
            "exp(m_a - m) is exp(-inf - (-inf)) = exp(NaN). Return the empty state (-inf, 0, 0) "
            "there: e.g. subtract torch.where(m == -inf, 0, m) instead of m, so that the "
            "factors are exp(-inf) = 0.",
        ),
        Mistake(
            _inverted_factor,
            "the rescaling factors are inverted: they are exp(m_a - m) and exp(m_b - m), each at "
            "most 1, not exp(m - m_a). On a side that saw no key m_a = -inf, and the inverted "
            "factor is exp(+inf) = inf, so inf * ell_a (= 0) is NaN.",
        ),
        Mistake(
            _unshifted_sums,
            "exp(m_a) * ell_a undoes the maximum, and exp(800) is inf in float64 (it overflows "
            "past about exp(709)): keep every exponent at most 0 by rescaling with "
            "exp(m_a - m) and exp(m_b - m), never exp(m_a) alone.",
            "scores near 800 (exp(score) overflows float64)",
        ),
    ]
    bound = tolerance_for(torch.float64).bound  # a route through logaddexp stays well inside
    return check_function(
        fn,
        merge_states,
        _merge_cases(),
        ("m_a", "ell_a", "acc_a", "m_b", "ell_b", "acc_b"),
        mistakes=mistakes,
        names=("m", "ell", "acc"),
        atol=bound,
        rtol=bound,
        exact_dtype=True,
    )


# ---------------------------------------------------------------- exercise 2: the last reply's labels


def last_reply_labels(
    input_ids: torch.Tensor, offsets: torch.Tensor, spans: list[tuple[int, int]]
) -> torch.Tensor:
    """The reference: ``input_ids (t,)`` where the token's ``[start, end)`` overlaps the LAST span,
    -100 elsewhere (everywhere when ``spans`` is empty)."""
    if not spans:
        return torch.full_like(input_ids, IGNORE_INDEX)
    s, e = spans[-1]
    trained = (offsets[:, 0] < e) & (offsets[:, 1] > s)
    return input_ids.masked_fill(~trained, IGNORE_INDEX)


def _overlap(offsets, s, e):
    return (offsets[:, 0] < e) & (offsets[:, 1] > s)


def _every_reply(input_ids, offsets, spans):
    """The page's rule: every reply and its </s>."""
    trained = torch.zeros_like(input_ids, dtype=torch.bool)
    for s, e in spans:
        trained |= _overlap(offsets, s, e)
    return input_ids.masked_fill(~trained, IGNORE_INDEX)


def _without_eos(input_ids, offsets, spans):
    if not spans:
        return torch.full_like(input_ids, IGNORE_INDEX)
    s, e = spans[-1]
    trained = _overlap(offsets, s, e - len("</s>"))
    return input_ids.masked_fill(~trained, IGNORE_INDEX)


def _ends_inclusive(input_ids, offsets, spans):
    """[start, end] read as closed: a token that only touches the span (ends at its start, or
    starts at its end) is trained too."""
    if not spans:
        return torch.full_like(input_ids, IGNORE_INDEX)
    s, e = spans[-1]
    trained = (offsets[:, 0] <= e) & (offsets[:, 1] >= s)
    return input_ids.masked_fill(~trained, IGNORE_INDEX)


def _to_the_end(input_ids, offsets, spans):
    """Everything from the last reply on, as if the conversation always ended with it."""
    if not spans:
        return torch.full_like(input_ids, IGNORE_INDEX)
    trained = offsets[:, 1] > spans[-1][0]
    return input_ids.masked_fill(~trained, IGNORE_INDEX)


def _starts_inside(input_ids, offsets, spans):
    if not spans:
        return torch.full_like(input_ids, IGNORE_INDEX)
    s, e = spans[-1]
    trained = (offsets[:, 0] >= s) & (offsets[:, 0] < e)
    return input_ids.masked_fill(~trained, IGNORE_INDEX)


def _int32(input_ids, offsets, spans):
    return last_reply_labels(input_ids, offsets, spans).to(torch.int32)


LABEL_CONVERSATIONS = {
    "one exchange, the reply's first token ' I' merged with the space": [
        {"role": "user", "content": "Where do vicunas live?"},
        {"role": "assistant", "content": "In the high Andes."},
    ],
    "two exchanges, a lone space token before the last reply": [
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "What do they eat?"},
        {"role": "assistant", "content": "Grasses."},
    ],
    "a system prompt and two exchanges, the last reply starting ' I'": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Where do vicunas live?"},
        {"role": "assistant", "content": "In the high Andes."},
    ],
    "ends on a user turn (its last reply is not at the end)": [
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "What do they eat?"},
    ],
    "no reply at all (one user turn)": [
        {"role": "user", "content": "Hi!"},
    ],
}


def _label_cases() -> dict[str, tuple]:
    from demos.toys.vicuna import tokenizer
    from demos.training.conversation import render_vicuna

    tok = tokenizer()
    cases = {}
    for name, messages in LABEL_CONVERSATIONS.items():
        text, spans = render_vicuna(messages)
        enc = tok(text, return_offsets_mapping=True)
        cases[name] = (
            torch.tensor(enc["input_ids"]),
            torch.tensor(enc["offset_mapping"]),
            spans,
        )
    return cases


def check_last_reply_labels(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``labels(input_ids, offsets, spans)``: ``input_ids (t,)``, ``offsets (t, 2)`` character
    ``[start, end)`` of each token, ``spans`` the assistant replies' ``[start, end)`` (each with its
    ``</s>``); returns ``(t,)`` int64 labels, the id where the token overlaps the last span and -100
    elsewhere."""
    mistakes = [
        Mistake(
            _every_reply,
            "every reply is trained, as on the page: this exercise trains only the LAST one, "
            "spans[-1]; the earlier replies stay context, -100 like the user's turns.",
        ),
        Mistake(
            _without_eos,
            "the reply's </s> was left out: a span runs to the end of the </s> that closes the "
            "reply, and that token must be trained, or the model never learns to stop.",
        ),
        Mistake(
            _ends_inclusive,
            "a token that only touches the span was trained: spans and offsets are half-open "
            "[start, end), so a token overlaps the span when start < span_end and "
            "end > span_start (strictly), not <= and >=.",
        ),
        Mistake(
            _to_the_end,
            "everything from the last reply to the end of the text was trained: a conversation "
            "may end on a user turn, which is not the reply. Stop at the span's end.",
        ),
        Mistake(
            _starts_inside,
            "a token was trained only if it starts inside the reply. The reply's first token "
            "can start one character early (byte-level BPE glues the space after 'ASSISTANT:' "
            "to the reply's first letters): train every token that overlaps the span.",
        ),
        Mistake(
            _int32,
            "the labels are int32: return them as int64 (torch.long), the dtype of input_ids. "
            "cross_entropy takes its targets as int64 and raises on int32 ('expected target "
            "dtype to be Long').",
        ),
    ]
    return check_function(
        fn,
        last_reply_labels,
        _label_cases(),
        ("input_ids", "offsets", "spans"),
        mistakes=mistakes,
        exact_dtype=True,
    )


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
