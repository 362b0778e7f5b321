"""Checkers for the Phi chapter's exercises: the one-norm parallel block, and choosing documents by
a quality score under a token budget (transfer: the data idea as code)."""

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


def check_keep_within_budget(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``keep(scores, lengths, budget) -> bool mask``: the best documents by score, best
    first, while the total of their lengths stays within ``budget`` tokens (stop at the first
    that does not fit)."""
    return check_recorded(
        fn, recorded(__name__, "check_keep_within_budget"), ("scores", "lengths", "budget")
    )
