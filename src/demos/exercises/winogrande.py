"""Checkers for the Winogrande chapter: partial scores from per-token log-probabilities, and where
full-sentence and partial scoring part ways."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded


def check_partial_scores(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> Check:
    """Check ``fn(token_logprobs (k, t), n_shared) -> (k,)``."""
    return check_recorded(
        fn,
        recorded(__name__, "check_partial_scores"),
        ("token_logprobs", "n_shared"),
        atol=1e-12,
        rtol=1e-12,
    )


def check_picks(fn: Callable[[torch.Tensor, int], tuple[int, int]]) -> Check:
    """Check ``fn(token_logprobs (2, t), n_shared) -> (full pick, partial pick)``."""
    return check_recorded(
        fn,
        recorded(__name__, "check_picks"),
        ("token_logprobs", "n_shared"),
        names=("full pick", "partial pick"),
    )
