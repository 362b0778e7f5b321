"""References and known mistakes for the Pythia chapter's exercises: a GPT-NeoX model's parameter count from its shape
(transfer), and partial rotary embeddings."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, Mistake, check_function
from demos.layers.rope import apply_rope, rope_cos_sin
from demos.models.gpt_neox import GPTNeoXLM, GPTNeoXLMConfig
from demos.registry import family_sizes
from demos.weights import count_parameters


def neox_parameter_count(
    vocab_size: int, hidden_size: int, num_hidden_layers: int, intermediate_size: int
) -> int:
    """The reference: build an untied ``GPTNeoXLM`` of that shape on the meta device and count."""
    config = GPTNeoXLMConfig(
        vocab_size, hidden_size, num_hidden_layers, 1, intermediate_size, partial_rotary_factor=1.0
    )  # the head count does not change the count: one head is always a valid split
    with torch.device("meta"):
        return count_parameters(GPTNeoXLM(config))


def _count_without_biases(v: int, c: int, n: int, f: int) -> int:
    per_layer = 4 * c * c + 2 * c * f + 4 * c  # weights, LayerNorms; no linear biases
    return 2 * v * c + n * per_layer + 2 * c


def _count_tied(v: int, c: int, n: int, f: int) -> int:
    return neox_parameter_count(v, c, n, f) - v * c


def _count_without_norms(v: int, c: int, n: int, f: int) -> int:
    return neox_parameter_count(v, c, n, f) - (2 * n + 1) * 2 * c


def check_neox_parameter_count(fn: Callable[[int, int, int, int], int]) -> Check:
    """Check ``count(vocab_size, hidden_size, num_hidden_layers, intermediate_size) -> int`` on
    released Pythia shapes (read from the registry) and one tiny shape."""
    sizes = {s.name: s for s in family_sizes("Pythia")}
    cases = {
        name: (s.vocab_size, s.hidden_size, s.layers, s.intermediate_size)
        for name, s in sizes.items()
        if name in ("Pythia-70M", "Pythia-1B", "Pythia-12B")
    }
    cases["tiny: v=97, c=32, 2 layers, f=56"] = (97, 32, 2, 56)
    mistakes = [
        Mistake(
            _count_without_biases,
            "the biases are missing: GPT-NeoX's query_key_value, dense, dense_h_to_4h and "
            "dense_4h_to_h all have one (3c + c + f + c numbers per layer).",
        ),
        Mistake(
            _count_tied,
            "the output matrix was counted as the embedding's: Pythia does not tie them, "
            "embed_in and embed_out are two v x c matrices.",
        ),
        Mistake(
            _count_without_norms,
            "the LayerNorms are missing: two per layer and a final one, each a weight and a bias "
            "of c numbers.",
        ),
    ]
    return check_function(
        fn,
        neox_parameter_count,
        cases,
        ("vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size"),
        mistakes=mistakes,
    )


def _rotate_last_channels(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    r = cos.shape[-1]
    x_pass, x_rot = x[..., :-r], x[..., -r:]
    return torch.cat((x_pass, apply_rope(x_rot, cos, sin)), dim=-1)


def check_partial_rope(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``partial_rope(x, cos, sin)``: ``x (b, h, t, d)``, tables ``(t, r)`` with ``r <= d``;
    rotate the first ``r`` channels as RoPE does (halves of those ``r``), pass the rest."""
    gen = torch.Generator().manual_seed(0)
    cases = {}
    for label, (b, h, t, d, r) in {
        "Pythia's share, r = d/4": (1, 2, 5, 16, 4),
        "Phi's share, r = d/2": (2, 1, 3, 8, 4),
        "all channels, r = d": (1, 1, 4, 8, 8),
    }.items():
        cos, sin = rope_cos_sin(torch.arange(t), r, 10000.0)
        cases[label] = (torch.randn(b, h, t, d, generator=gen), cos, sin)
    mistakes = [
        Mistake(
            _rotate_last_channels,
            "the last r channels were rotated; GPT-NeoX rotates the first r and passes the rest.",
        ),
    ]
    return check_function(
        fn, apply_rope, cases, ("x", "cos", "sin"), mistakes=mistakes, atol=1e-6, rtol=1e-5
    )
