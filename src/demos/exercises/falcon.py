"""Checkers for the Falcon chapter's exercises: splitting the fused ``query_key_value`` output."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, first_mismatch
from demos.layers.fused_qkv import split_fused_qkv


def _split_qkv_blocks(fused: torch.Tensor, h: int, g: int, d: int):
    """The classic mistake: read the fused projection as [all queries | all keys | all values]."""
    b, t, _ = fused.shape
    q, k, v = fused.split([h * d, g * d, g * d], dim=-1)
    return (
        q.view(b, t, h, d).transpose(1, 2),
        k.view(b, t, g, d).transpose(1, 2),
        v.view(b, t, g, d).transpose(1, 2),
    )


def check_split_fused_qkv(fn: Callable[..., tuple]) -> Check:
    """Check a learner's ``split(fused, num_heads, num_kv_heads, head_dim) -> (q, k, v)`` for Falcon's
    fused ``query_key_value`` output: ``q (b, h, t, d)``, ``k`` and ``v`` ``(b, g, t, d)``."""
    gen = torch.Generator().manual_seed(0)
    shapes = [(1, 3, 4, 1, 2), (2, 5, 8, 2, 4), (2, 1, 4, 4, 2)]  # b, t, h, g, d
    for b, t, h, g, d in shapes:
        fused = torch.randn(b, t, (h + 2 * g) * d, generator=gen)
        expected = split_fused_qkv(fused, h, g, d)
        where = f"h={h}, g={g}, d={d}, fused shape {tuple(fused.shape)}"
        try:
            got = fn(fused, h, g, d)
        except Exception as error:
            return Check(False, f"With {where} it raised {type(error).__name__}: {error}")
        if not (isinstance(got, tuple) and len(got) == 3):
            return Check(
                False, f"With {where} it returned {type(got).__name__}, expected (q, k, v)."
            )
        for name, x, ref in zip("qkv", got, expected, strict=True):
            if not isinstance(x, torch.Tensor) or x.shape != ref.shape:
                shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                return Check(
                    False, f"With {where}, {name} has shape {shape}, expected {tuple(ref.shape)}."
                )
            mismatch = first_mismatch(x, ref, atol=0.0, rtol=0.0)
            if mismatch:
                hint = ""
                wrong = _split_qkv_blocks(fused, h, g, d)
                if all(torch.equal(a, w) for a, w in zip(got, wrong, strict=True)):
                    hint = (
                        " Likely cause: the rows were read as [all queries | all keys | all values]."
                        " Falcon stores them group by group: each key/value head's r = h // g"
                        " queries, then its key, then its value."
                    )
                return Check(False, f"With {where}, {name}: {mismatch}{hint}")
    return Check(True, f"Matches the reference on {len(shapes)} layouts (g = 1, g = h / 2, g = h).")
