"""References and known mistakes for the Llama 2 chapter's exercises: mean-pooling a multi-head
checkpoint's key/value heads into grouped-query attention, the longest context a KV-cache budget
allows, and grouped-query attention with its weights without copying the key/value heads
(transfer).

Over ~300 lines on purpose: one chapter's checkers, one module per chapter as the layout rule has it
(``demos/exercises/<chapter>.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, Mistake, check_function
from demos.exercises.describe import describe_error
from demos.exercises.llama2 import (  # shared with the package
    _COPYING,
    _Calls,
)
from demos.layers.attention import attention, attention_weights
from demos.layers.kv_cache import kv_cache_bytes_per_token


def mean_pool_kv_reference(
    weight: torch.Tensor, num_heads: int, num_key_value_heads: int
) -> torch.Tensor:
    """A multi-head ``k_proj``/``v_proj`` weight ``(h d, c)`` converted to grouped-query attention
    ``(g d, c)``: each key/value head is the mean of the ``h / g`` heads of its group, the heads
    ``i (h / g) .. (i + 1)(h / g) - 1`` that ``repeat_kv`` lines up with kv head ``i``
    [ainslie2023gqa, Sec. 2.1-2.2]."""
    h, g = num_heads, num_key_value_heads
    d, c = weight.shape[0] // h, weight.shape[1]
    return weight.reshape(g, h // g, d, c).mean(dim=1).reshape(g * d, c)  # (g d, c)


def _interleaved_groups(weight, h, g):  # kv head i pools the query heads j with j % g == i
    d, c = weight.shape[0] // h, weight.shape[1]
    return weight.reshape(h // g, g, d, c).mean(dim=0).reshape(g * d, c)


def _summed(weight, h, g):
    d, c = weight.shape[0] // h, weight.shape[1]
    return weight.reshape(g, h // g, d, c).sum(dim=1).reshape(g * d, c)


def _first_of_group(weight, h, g):  # the paper's "First" conversion
    d, c = weight.shape[0] // h, weight.shape[1]
    return weight.reshape(g, h // g, d, c)[:, 0].reshape(g * d, c)


def _neighbouring_rows(weight, h, g):  # (g, d, h / g, c): averages h / g adjacent rows
    d, c = weight.shape[0] // h, weight.shape[1]
    return weight.reshape(g, d, h // g, c).mean(dim=2).reshape(g * d, c)


MEAN_POOL_MISTAKES = [
    Mistake(
        _interleaved_groups,
        "kv head i pooled the query heads j with j % g == i (reshape to (h / g, g, d, c)). "
        "repeat_kv gives query head j kv head j // (h / g): a group is h / g CONSECUTIVE heads, "
        "so reshape to (g, h / g, d, c) and average axis 1.",
    ),
    Mistake(
        _summed,
        "the heads of a group are summed, h / g times too large: take their mean.",
    ),
    Mistake(
        _first_of_group,
        "that keeps the first head of each group and drops the others (the paper's 'First' "
        "conversion, which it finds worse than mean-pooling): average all h / g heads.",
    ),
    Mistake(
        _neighbouring_rows,
        "that averages h / g neighbouring rows, channels of one head, instead of the same row "
        "of each head: head j owns rows j d .. (j + 1) d - 1, so reshape to (g, h / g, d, c) "
        "(not (g, d, h / g, c)) and average axis 1.",
    ),
]


def _weight(h: int, d: int, c: int, gen: torch.Generator, same_in_group: int = 1) -> torch.Tensor:
    """A random ``(h d, c)`` float64 weight; with ``same_in_group = r`` each run of ``r`` consecutive
    heads holds one head's rows ``r`` times."""
    heads = torch.randn(h // same_in_group, 1, d, c, generator=gen, dtype=torch.float64)
    return heads.expand(-1, same_in_group, -1, -1).reshape(h * d, c).clone()


def check_mean_pool_kv(fn: Callable[[torch.Tensor, int, int], torch.Tensor]) -> Check:
    """Check a learner's ``mean_pool_kv(weight, num_heads, num_key_value_heads)``: ``(h d, c)`` ->
    ``(g d, c)``, float64, to 1e-12 (the float64 policy for reductions)."""
    gen = torch.Generator().manual_seed(0)
    row = torch.randn(1, 3, generator=gen, dtype=torch.float64)
    cases = {
        "h=4, g=2, d=3, c=5": (_weight(4, 3, 5, gen), 4, 2),
        "h=16, g=2 (8 query heads per kv head, as in Llama 2 70B), d=2, c=3": (
            _weight(16, 2, 3, gen),
            16,
            2,
        ),
        "multi-query, h=4, g=1, d=1, c=3": (_weight(4, 1, 3, gen), 4, 1),
        "equal heads within each group, h=6, g=3, d=1, c=4": (_weight(6, 1, 4, gen, 2), 6, 3),
        "equal heads within each group, multi-query, h=3, g=1, d=2, c=2": (
            _weight(3, 2, 2, gen, 3),
            3,
            1,
        ),
        "every row the same, h=4, g=2, d=2, c=3": (row.expand(8, 3).clone(), 4, 2),
        "multi-head, g=h=3 (nothing to pool)": (_weight(3, 2, 4, gen), 3, 3),
    }
    return check_function(
        fn,
        mean_pool_kv_reference,
        cases,
        ("weight", "num_heads", "num_key_value_heads"),
        mistakes=MEAN_POOL_MISTAKES,
        atol=1e-12,
        rtol=1e-12,
    )


def max_seq_len_reference(
    budget_bytes: int,
    num_hidden_layers: int,
    num_key_value_heads: int,
    head_dim: int,
    batch: int,
    bytes_per_value: int,
    max_position_embeddings: int,
) -> int:
    """The longest context each of ``batch`` sequences can have when their KV caches share
    ``budget_bytes``: whole tokens (rounded down), and never past the model's
    ``max_position_embeddings``."""
    per_token = kv_cache_bytes_per_token(
        num_hidden_layers, num_key_value_heads, head_dim, bytes_per_value
    )
    return min(budget_bytes // (per_token * batch), max_position_embeddings)


def _seq_len_without(position: int) -> Callable[..., int]:
    """The reference with one factor of the per-token cost left out (``position`` in the
    arguments)."""

    def wrong(*args):
        args = list(args)
        args[position] = 1
        return max_seq_len_reference(*args)

    return wrong


def _keys_only(budget, L, g, d, batch, n, cap):
    return min(budget // (L * g * d * n * batch), cap)


def _rounded_up(budget, L, g, d, batch, n, cap):
    return min(-(-budget // (2 * L * g * d * n * batch)), cap)


MAX_SEQ_LEN_MISTAKES = [
    Mistake(_keys_only, "the 2 for keys and values is missing: every token caches both."),
    Mistake(
        _rounded_up,
        "rounded up: the last token would not fit in the budget. Only whole tokens that fit "
        "count: round down (//).",
    ),
    Mistake(
        lambda budget, L, g, d, batch, n, cap: budget // (2 * L * g * d * n * batch),
        "no cap at max_position_embeddings: the model was trained on contexts up to that length "
        "(RoPE positions past it were never seen), however much memory is left.",
    ),
    Mistake(_seq_len_without(1), "num_hidden_layers is missing: every layer caches its own K, V."),
    Mistake(
        _seq_len_without(4),
        "batch is missing: that is the tokens ONE sequence could have with the whole budget; "
        "the batch's sequences share it.",
    ),
    Mistake(_seq_len_without(5), "that counts values, not bytes: divide by bytes_per_value too."),
]


def check_max_seq_len(fn: Callable[..., int]) -> Check:
    """Check a learner's ``max_seq_len(budget_bytes, num_hidden_layers, num_key_value_heads,
    head_dim, batch, bytes_per_value, max_position_embeddings)``: an int (a float, numpy or 0-d
    tensor equal to it is accepted)."""
    cases = {
        "a 13B-shaped cache, 10 GiB, 4 sequences, fp16": (10 * 2**30, 40, 40, 128, 4, 2, 4096),
        "a 70B-shaped cache (g=8), 10 GiB, 16 sequences, fp32": (
            10 * 2**30,
            80,
            8,
            128,
            16,
            4,
            4096,
        ),
        "1 layer, 1 sequence, int8, 160 bytes": (160, 1, 2, 4, 1, 1, 4096),
        "5 bytes, less than one token": (5, 1, 1, 8, 1, 1, 64),
        "memory for 1,000 tokens, max_position_embeddings 512": (16_000, 1, 1, 8, 1, 1, 512),
        "3 layers, 1 sequence, int8": (480, 3, 1, 8, 1, 1, 4096),
        "1 layer, 4 sequences, int8": (640, 1, 1, 8, 4, 1, 4096),
        "1 layer, 1 sequence, fp16": (320, 1, 1, 8, 1, 2, 4096),
    }
    names = ("budget_bytes", "num_hidden_layers", "num_key_value_heads", "head_dim", "batch")
    return check_function(
        fn,
        max_seq_len_reference,
        cases,
        (*names, "bytes_per_value", "max_position_embeddings"),
        mistakes=MAX_SEQ_LEN_MISTAKES,
    )


# ---------------------------------------------------------------- find the planted mistake
# No reference: the answer is the planted bug's location, and the checker (demos.exercises.llama2,
# imported above) reads it against the bug it plants; nothing is recorded for it.


# ---------------------------------------------------------------------------- transfer: GQA, no copies


def gqa_with_weights_reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal grouped-query attention and its weights: ``q (b, h, t, d)``, ``k, v (b, g, s, d)`` ->
    ``(output (b, h, t, d), weights (b, h, t, s))``; the queries are the last ``t`` of ``s``
    positions (:func:`demos.layers.attention.attention_weights`, :func:`~.attention`)."""
    return attention(q, k, v), attention_weights(q, k)


def _grouped(q, k, v, *, offset=None, causal=True, scale=None, tiled=False, softmax_dim=-1):
    """Grouped-query attention written with the reshape, with one step changeable: the mask's
    query positions (``offset``), no mask, the scale, the groups tiled (head j reads kv head
    j % g), the softmax's axis. Returns ``(output, weights)`` as the reference does."""
    b, h, t, d = q.shape
    g, s = k.shape[1], k.shape[2]
    r = h // g
    if tiled:  # query head j = i * g + kv: group kv holds heads kv, kv + g, ...
        qg = q.reshape(b, r, g, t, d).transpose(1, 2)  # (b, g, r, t, d)
    else:
        qg = q.reshape(b, g, r, t, d)  # (b, g, r, t, d)
    scale = d**-0.5 if scale is None else scale
    scores = qg @ k[:, :, None].transpose(-1, -2) * scale  # (b, g, r, t, s)
    if causal:
        offset = s - t if offset is None else offset
        visible = torch.arange(s)[None, :] <= torch.arange(offset, offset + t)[:, None]  # (t, s)
        scores = scores.masked_fill(~visible, float("-inf"))
    weights = torch.softmax(scores, dim=softmax_dim)  # (b, g, r, t, s)
    out = weights @ v[:, :, None]  # (b, g, r, t, d)
    if tiled:
        return out.transpose(1, 2).reshape(b, h, t, d), weights.transpose(1, 2).reshape(b, h, t, s)
    return out.reshape(b, h, t, d), weights.reshape(b, h, t, s)


GQA_MISTAKES = [
    Mistake(
        lambda q, k, v: _grouped(q, k, v, causal=False),
        "no causal mask: a query must not see keys after its own position (scores -inf there).",
    ),
    Mistake(
        lambda q, k, v: _grouped(q, k, v, offset=0),
        "the mask puts the queries at positions 0 .. t - 1. They are the last t of the s "
        "positions (t < s when a cache holds earlier keys): query i sits at s - t + i.",
    ),
    Mistake(
        lambda q, k, v: _grouped(q, k, v, tiled=True),
        "query head j read key/value head j % g. Head j belongs to group j // (h / g): reshape q "
        "to (b, g, h / g, t, d), not (b, h / g, g, t, d).",
    ),
    Mistake(
        lambda q, k, v: _grouped(q, k, v, scale=1.0),
        "the scores are not scaled: divide Q K^T by sqrt(d).",
    ),
    Mistake(
        lambda q, k, v: _grouped(q, k, v, softmax_dim=-2),
        "the softmax ran over the queries (axis -2): each query's weights over the keys must sum "
        "to 1, so normalise over the last axis (dim=-1).",
    ),
]


def check_gqa_with_weights(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Check:
    """Check a learner's ``gqa_with_weights(q, k, v)``: causal attention with ``g`` key/value heads
    shared by ``h`` query heads, computed WITHOUT copying the keys and values to ``h`` heads
    (no ``repeat``, ``repeat_interleave``, ``expand``): ``q (b, h, t, d)``, ``k, v (b, g, s, d)``
    -> ``(output (b, h, t, d), weights (b, h, t, s))``, float64, to 1e-12 (the float64 policy
    for reductions). The copying is detected with a ``TorchFunctionMode``."""
    gen = torch.Generator().manual_seed(0)
    cases = {
        label: (
            torch.randn(b, h, t, d, generator=gen, dtype=torch.float64),
            torch.randn(b, g, s, d, generator=gen, dtype=torch.float64),
            torch.randn(b, g, s, d, generator=gen, dtype=torch.float64),
        )
        for label, (b, h, g, t, s, d) in {
            "h=4, g=2, a prompt of 3": (1, 4, 2, 3, 3, 8),
            "h=8, g=2, 4 queries after 2 cached keys": (2, 8, 2, 4, 6, 4),
            "multi-query, h=6, g=1, 1 query after 4 cached keys": (1, 6, 1, 1, 5, 4),
            "multi-head, h=g=4, a prompt of 3": (2, 4, 4, 3, 3, 2),
            "one token, h=4, g=2": (1, 4, 2, 1, 1, 2),
        }.items()
    }
    result = check_function(
        fn,
        gqa_with_weights_reference,
        cases,
        ("q", "k", "v"),
        mistakes=GQA_MISTAKES,
        atol=1e-12,
        rtol=1e-12,
        names=("output", "weights"),
    )
    if not result.ok:
        return result
    calls = _Calls()
    try:
        with calls:
            fn(*(a.clone() for a in next(iter(cases.values()))))
    except Exception as error:  # it passed a moment ago; never raise on the learner's code
        return Check(False, f"A second call {describe_error(error)}")
    copied = sorted(calls.names & _COPYING)
    if copied:
        return Check(
            False,
            f"The values are right, but the function copies tensors to all h heads (it called "
            f"{', '.join(copied)}). The exercise asks for no copy: reshape q to "
            "(b, g, h / g, t, d) and let matmul broadcast k and v over the h / g axis.",
        )
    return result
