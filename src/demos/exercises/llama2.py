"""Checkers for the Llama 2 chapter's exercises: ``repeat_kv`` and the KV cache's size."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, check_tensor_function
from demos.layers.attention import repeat_kv
from demos.layers.kv_cache import kv_cache_bytes_per_token


def _tiled_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    return x.repeat(1, n_rep, 1, 1)  # heads in the order 0,1,..,g-1,0,1,..: the classic mistake


def check_repeat_kv(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> Check:
    """Check a learner's ``repeat_kv(x, n_rep)``: ``(b, g, s, d) -> (b, g * n_rep, s, d)``."""
    gen = torch.Generator().manual_seed(0)
    cases = [
        (torch.randn(b, g, s, d, generator=gen), n)
        for b, g, s, d, n in [(1, 2, 3, 4, 2), (2, 3, 5, 8, 4), (2, 4, 1, 2, 1)]
    ]
    hints = [
        (
            _tiled_kv,
            "the key/value heads are tiled (0, 1, 0, 1) instead of repeated in place (0, 0, 1, 1). "
            "Query head j must read key/value head j // n_rep, so copies of one head sit next to each other.",
        )
    ]
    return check_tensor_function(fn, repeat_kv, cases, atol=0.0, rtol=0.0, hints=hints)


def check_kv_cache_bytes(fn: Callable[..., int]) -> Check:
    """Check a learner's ``kv_cache_bytes(num_hidden_layers, num_key_value_heads, head_dim, seq_len, batch,
    bytes_per_value)``: the bytes of keys and values cached for ``batch`` sequences of ``seq_len`` tokens."""
    cases = [
        (32, 32, 128, 4096, 1, 2),
        (80, 8, 128, 4096, 1, 2),
        (40, 40, 128, 1000, 8, 1),
        (2, 1, 8, 3, 5, 4),
    ]
    for layers, g, d, seq_len, batch, nbytes in cases:
        expected = kv_cache_bytes_per_token(layers, g, d, nbytes) * seq_len * batch
        try:
            got = fn(layers, g, d, seq_len, batch, nbytes)
        except Exception as error:
            return Check(False, f"It raised {type(error).__name__}: {error}")
        if got != expected:
            args = f"layers={layers}, kv_heads={g}, head_dim={d}, seq_len={seq_len}, batch={batch}, bytes={nbytes}"
            hint = ""
            if got and expected % got == 0 and expected // got == 2:
                hint = " Likely cause: only keys or only values were counted; the cache holds both."
            elif got and got % expected == 0:
                hint = f" Your answer is {got // expected}x too large: is a factor counted twice?"
            return Check(False, f"For {args}: expected {expected:,} bytes, got {got!r}.{hint}")
    return Check(True, f"Matches the reference on {len(cases)} configurations.")
