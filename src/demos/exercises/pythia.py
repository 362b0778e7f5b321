"""Checkers for the Pythia chapter's exercises: a GPT-NeoX model's parameter count from its shape
(transfer), and partial rotary embeddings."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded


def check_neox_parameter_count(fn: Callable[[int, int, int, int], int]) -> Check:
    """Check ``count(vocab_size, hidden_size, num_hidden_layers, intermediate_size) -> int`` on
    released Pythia shapes (read from the registry) and one tiny shape."""
    return check_recorded(
        fn,
        recorded(__name__, "check_neox_parameter_count"),
        ("vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size"),
    )


def check_partial_rope(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``partial_rope(x, cos, sin)``: ``x (b, h, t, d)``, tables ``(t, r)`` with ``r <= d``;
    rotate the first ``r`` channels as RoPE does (halves of those ``r``), pass the rest."""
    return check_recorded(
        fn, recorded(__name__, "check_partial_rope"), ("x", "cos", "sin"), atol=1e-6, rtol=1e-5
    )
