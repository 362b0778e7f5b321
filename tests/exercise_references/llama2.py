"""References and known mistakes for the Llama 2 chapter's exercises: ``repeat_kv``, the KV cache's
size, and grouped-query attention without copying the key/value heads (transfer).

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
from demos.layers.attention import attention, repeat_kv
from demos.layers.kv_cache import kv_cache_bytes_per_token


def check_repeat_kv(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> Check:
    """Check a learner's ``repeat_kv(x, n_rep)``: ``(b, g, s, d) -> (b, g * n_rep, s, d)``, exact."""
    gen = torch.Generator().manual_seed(0)
    cases = {
        f"g={g}, n_rep={n}": (torch.randn(b, g, s, d, generator=gen), n)
        for b, g, s, d, n in [(1, 2, 3, 4, 2), (2, 3, 5, 8, 4), (2, 4, 1, 2, 1)]
    }
    tiled = Mistake(
        lambda x, n_rep: x.repeat(1, n_rep, 1, 1),
        "the key/value heads are tiled (0, 1, 0, 1) instead of repeated in place (0, 0, 1, 1). "
        "Query head j must read key/value head j // n_rep, so copies of one head sit next to "
        "each other.",
    )
    return check_function(fn, repeat_kv, cases, ("x", "n_rep"), mistakes=[tiled])


def kv_cache_bytes_reference(
    num_hidden_layers: int,
    num_key_value_heads: int,
    head_dim: int,
    seq_len: int,
    batch: int,
    bytes_per_value: int,
) -> int:
    """Bytes of keys and values cached for ``batch`` sequences of ``seq_len`` tokens."""
    per_token = kv_cache_bytes_per_token(
        num_hidden_layers, num_key_value_heads, head_dim, bytes_per_value
    )
    return per_token * seq_len * batch


def _without(position: int) -> Callable[..., int]:
    """The reference with one argument left out of the product (a factor forgotten)."""
    return lambda *args: kv_cache_bytes_reference(*args) // args[position]


def check_kv_cache_bytes(fn: Callable[..., int]) -> Check:
    """Check a learner's ``kv_cache_bytes(num_hidden_layers, num_key_value_heads, head_dim, seq_len,
    batch, bytes_per_value)``: an int (a float, numpy or 0-d tensor equal to it is accepted)."""
    cases = {
        "Llama 2 7B, 4,096 tokens, fp16": (32, 32, 128, 4096, 1, 2),
        "Llama 2 70B (GQA, 8 kv heads), fp16": (80, 8, 128, 4096, 1, 2),
        "13B, batch 8 of 1,000 tokens, int8": (40, 40, 128, 1000, 8, 1),
        "tiny, fp32": (2, 1, 8, 3, 5, 4),
    }
    mistakes = [
        Mistake(
            lambda *args: kv_cache_bytes_reference(*args) // 2,
            "only keys or only values were counted; the cache holds both (a factor 2).",
        ),
        Mistake(
            lambda *args: kv_cache_bytes_reference(*args) * 2,
            "the answer is 2x too large: is a factor counted twice (the 2 for keys and values?)",
        ),
        Mistake(_without(0), "num_hidden_layers is missing: every layer caches its own K and V."),
        Mistake(_without(4), "batch is missing: every sequence in the batch has its own cache."),
        Mistake(_without(5), "that counts values, not bytes: multiply by bytes_per_value."),
    ]
    names = ("num_hidden_layers", "num_key_value_heads", "head_dim", "seq_len", "batch")
    return check_function(
        fn, kv_cache_bytes_reference, cases, (*names, "bytes_per_value"), mistakes=mistakes
    )


# ---------------------------------------------------------------- find the planted mistake
# No reference: the answer is the planted bug's location, and the checker (demos.exercises.llama2,
# imported above) reads it against the bug it plants; nothing is recorded for it.


# ---------------------------------------------------------------------------- transfer: GQA, no copies


def gqa_attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal grouped-query attention, ``q (b, h, t, d)``, ``k, v (b, g, s, d)`` -> ``(b, h, t, d)``;
    the queries are the last ``t`` of ``s`` positions (:func:`demos.layers.attention.attention`)."""
    return attention(q, k, v)


def _causal_from_zero(q, k, v):
    t, s = q.shape[2], k.shape[2]
    scores = (q @ repeat_kv(k, q.shape[1] // k.shape[1]).transpose(2, 3)) / q.shape[-1] ** 0.5
    scores = scores.masked_fill(~torch.ones(t, s, dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(scores, dim=-1) @ repeat_kv(v, q.shape[1] // k.shape[1])


def _tiled_groups(q, k, v):
    n_rep = q.shape[1] // k.shape[1]
    return attention(q, k.repeat(1, n_rep, 1, 1), v.repeat(1, n_rep, 1, 1))


GQA_MISTAKES = [
    Mistake(
        lambda q, k, v: attention(q, k, v, causal=False),
        "no causal mask: a query must not see keys after its own position (scores -inf there).",
    ),
    Mistake(
        _causal_from_zero,
        "the mask puts the queries at positions 0 .. t - 1. They are the last t of the s "
        "positions (t < s when a cache holds earlier keys): query i sits at s - t + i.",
    ),
    Mistake(
        _tiled_groups,
        "query head j read key/value head j % g. Head j belongs to group j // (h / g): reshape q "
        "to (b, g, h / g, t, d), not (b, h / g, g, t, d).",
    ),
    Mistake(
        lambda q, k, v: attention(q, k, v, scale=1.0),
        "the scores are not scaled: divide Q K^T by sqrt(d).",
    ),
]


def check_gqa_attention(fn: Callable[..., torch.Tensor]) -> Check:
    """Check a learner's ``gqa_attention(q, k, v)``: causal attention with ``g`` key/value heads
    shared by ``h`` query heads, computed WITHOUT copying the keys and values to ``h`` heads
    (no ``repeat``, ``repeat_interleave``, ``expand``): ``q (b, h, t, d)``, ``k, v (b, g, s, d)``
    -> ``(b, h, t, d)``, to 1e-5. The copying is detected with a ``TorchFunctionMode``."""
    gen = torch.Generator().manual_seed(0)
    cases = {
        label: (
            torch.randn(b, h, t, d, generator=gen),
            torch.randn(b, g, s, d, generator=gen),
            torch.randn(b, g, s, d, generator=gen),
        )
        for label, (b, h, g, t, s, d) in {
            "h=4, g=2, a prompt of 3": (1, 4, 2, 3, 3, 8),
            "h=8, g=2, 4 queries after 2 cached keys": (2, 8, 2, 4, 6, 4),
            "multi-query, h=6, g=1": (1, 6, 1, 2, 5, 4),
            "multi-head, h=g=4": (2, 4, 4, 3, 3, 2),
        }.items()
    }
    result = check_function(
        fn,
        gqa_attention_reference,
        cases,
        ("q", "k", "v"),
        mistakes=GQA_MISTAKES,
        atol=1e-5,
        rtol=1e-5,
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
