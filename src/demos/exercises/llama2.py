"""Checkers for the Llama 2 chapter's exercises: ``repeat_kv`` and the KV cache's size."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, Mistake, check_function
from demos.layers.attention import repeat_kv
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
