"""Checkers for the Falcon chapter's exercises: splitting the fused ``query_key_value`` output."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, Mistake, check_function
from demos.layers.fused_qkv import split_fused_qkv


def _split_qkv_blocks(fused: torch.Tensor, h: int, g: int, d: int):
    """The classic mistake: read the fused projection as [all queries | all keys | all values]."""
    b, t, _ = fused.shape
    q, k, v = fused.split([h * d, g * d, g * d], dim=-1)
    return (
        q.view(b, t, h, d).transpose(1, 2),  # (b, h, t, d)
        k.view(b, t, g, d).transpose(1, 2),  # (b, g, t, d)
        v.view(b, t, g, d).transpose(1, 2),
    )


def check_split_fused_qkv(fn: Callable[..., tuple]) -> Check:
    """Check a learner's ``split(fused, num_heads, num_kv_heads, head_dim) -> (q, k, v)`` for Falcon's
    fused ``query_key_value`` output: ``q (b, h, t, d)``, ``k`` and ``v`` ``(b, g, t, d)``, exact."""
    gen = torch.Generator().manual_seed(0)
    cases = {
        label: (torch.randn(b, t, (h + 2 * g) * d, generator=gen), h, g, d)
        for label, (b, t, h, g, d) in {
            "multi-query, g = 1": (1, 3, 4, 1, 2),
            "grouped, g = h / 4": (2, 5, 8, 2, 4),
            "multi-head, g = h": (2, 1, 4, 4, 2),
        }.items()
    }
    blocks = Mistake(
        _split_qkv_blocks,
        "the rows were read as [all queries | all keys | all values]. Falcon stores them group "
        "by group: each key/value head's r = h // g queries, then its key, then its value.",
    )
    return check_function(
        fn,
        split_fused_qkv,
        cases,
        ("fused", "num_heads", "num_kv_heads", "head_dim"),
        mistakes=[blocks],
        names=("q", "k", "v"),
    )
