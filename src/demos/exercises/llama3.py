"""Checkers for the Llama 3 chapter's exercises: Llama 3.1's scaled RoPE frequencies, and the
parameters a vocabulary costs (embedding + output head, tied or not)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded


def check_llama3_frequencies(fn: Callable[..., torch.Tensor]) -> Check:
    """Check a learner's ``(inv_freq, factor, low_freq_factor, high_freq_factor,
    original_max_position_embeddings) -> scaled inv_freq`` against transformers' rule (float32)."""
    names = ("inv_freq", "factor", "low_freq_factor", "high_freq_factor")
    return check_recorded(
        fn,
        recorded(__name__, "check_llama3_frequencies"),
        (*names, "original_max_position_embeddings"),
        atol=1e-9,
        rtol=1e-6,
    )


def check_vocabulary_parameters(fn: Callable[[int, int, bool], int]) -> Check:
    """Check a learner's ``vocabulary_parameters(vocab_size, hidden_size, tied) -> int``."""
    return check_recorded(
        fn, recorded(__name__, "check_vocabulary_parameters"), ("vocab_size", "hidden_size", "tied")
    )
