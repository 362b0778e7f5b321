"""Checkers for the Pythia chapter's exercises: a GPT-NeoX model's parameter count from its shape
(transfer), and GPT-J's interleaved partial rotary embeddings (a variant of the page's)."""

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


def check_partial_rope_interleaved(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``partial_rope_interleaved(x, cos, sin)``: ``x (b, h, t, d)`` float64, tables
    ``(t, r/2)`` (one angle per pair, ``r <= d``); GPT-J's pairs ``(2i, 2i + 1)`` of the first
    ``r`` channels turn by row ``i``'s angle, the other ``d - r`` pass through."""
    return check_recorded(
        fn,
        recorded(__name__, "check_partial_rope_interleaved"),
        ("x", "cos", "sin"),
        atol=1e-12,
        rtol=1e-10,
        exact_dtype=True,
    )
