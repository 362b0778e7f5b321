"""Checkers for the Phi chapter's exercises: the one-norm parallel block, and choosing documents by
a quality score under a token budget, a greedy fill that goes on past a document that does not fit (a variant
of the page's rule)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded


def check_parallel_block(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``block(x, w_attn, w_mlp)``: ``x (b, t, c)``, ``w_attn (c, c)``, ``w_mlp (c, c)``."""
    return check_recorded(
        fn, recorded(__name__, "check_parallel_block"), ("x", "w_attn", "w_mlp"), atol=1e-5
    )


def check_greedy_fill(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``greedy_fill(scores, lengths, budget) -> bool mask (n,)``: best score first (ties:
    the earlier document first), keep each document that still fits the tokens left, skip the
    others and go on."""
    return check_recorded(
        fn,
        recorded(__name__, "check_greedy_fill"),
        ("scores", "lengths", "budget"),
        exact_dtype=True,
    )
