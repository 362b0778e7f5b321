"""References and known mistakes for the Pythia chapter's exercises: a GPT-NeoX model's parameter count from its shape
(transfer), and GPT-J's interleaved partial rotary embeddings (a variant of the page's)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, Mistake, check_function
from demos.layers.rope import apply_rope
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


def partial_rope_interleaved(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """The reference: GPT-J's partial rotary. ``x (b, h, t, d)``, ``cos, sin (t, r/2)`` (one angle
    per pair); channels ``(2i, 2i + 1)`` of the first ``r`` turn by the angle of row ``i``, the
    other ``d - r`` pass. transformers==5.23.0, models/gptj/modeling_gptj.py::rotate_every_two and
    ::apply_rotary_pos_emb (tests/exercises/test_pythia.py compares the two)."""
    half = cos.shape[-1]  # r/2 pairs
    if x.dim() != 4 or cos.shape != sin.shape or cos.dim() != 2 or cos.shape[0] != x.shape[-2]:
        raise ValueError(
            f"x must be (b, h, t, d) and cos, sin (t, r/2), got {tuple(x.shape)}, "
            f"{tuple(cos.shape)}, {tuple(sin.shape)}"
        )
    if not 0 < 2 * half <= x.shape[-1]:
        raise ValueError(
            f"the tables' width ({half}) must be between 1 and d/2 = {x.shape[-1] // 2}"
        )
    r = 2 * half
    x_rot, x_pass = x[..., :r], x[..., r:]  # (b, h, t, r), (b, h, t, d - r)
    x1, x2 = x_rot[..., 0::2], x_rot[..., 1::2]  # (b, h, t, r/2): the pairs (2i, 2i + 1)
    turned = torch.stack((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)  # (b, h, t, r/2, 2)
    return torch.cat((turned.flatten(-2), x_pass), dim=-1)  # (b, h, t, d)


def _neox_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # the page's apply_rope: pairs (i, i + r/2), the tables repeated as two halves
    return apply_rope(x, torch.cat((cos, cos), -1), torch.cat((sin, sin), -1))


def _tables_as_halves(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # pairs (2i, 2i + 1), but the tables repeated as two halves: channel j gets angle j mod r/2
    r = 2 * cos.shape[-1]
    cos2, sin2 = torch.cat((cos, cos), -1), torch.cat((sin, sin), -1)  # (t, r)
    x_rot = x[..., :r]
    x1, x2 = x_rot[..., 0::2], x_rot[..., 1::2]
    every_two = torch.stack((-x2, x1), dim=-1).flatten(-2)  # (b, h, t, r)
    return torch.cat((x_rot * cos2 + every_two * sin2, x[..., r:]), dim=-1)


def _turned_backwards(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return partial_rope_interleaved(x, cos, -sin)  # (x1, x2) -> (x2, -x1): the angle's sign flipped


def _last_channels(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    r = 2 * cos.shape[-1]
    turned = partial_rope_interleaved(x[..., -r:], cos, sin)  # the last r channels turned
    return torch.cat((x[..., :-r], turned), dim=-1)


def _all_channels(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # every channel turned: the tables tiled across the head (the chapter's trap, in GPT-J's pairs)
    reps = x.shape[-1] // (2 * cos.shape[-1])
    return partial_rope_interleaved(x, cos.repeat(1, reps), sin.repeat(1, reps))


def _angle_tables(t: int, r: int, angles: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """``(cos, sin)`` of shape ``(t, r/2)`` in float64: position ``m`` times ``theta_i =
    10000 ** (-2i / r)``, as GPT-J's ``create_sinusoidal_positions`` builds them; or ``angles``."""
    if angles is None:
        theta = 10000.0 ** (-torch.arange(0, r, 2, dtype=torch.float64) / r)  # (r/2,)
        angles = torch.arange(t, dtype=torch.float64)[:, None] * theta  # (t, r/2)
    return angles.cos(), angles.sin()


def check_partial_rope_interleaved(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``partial_rope_interleaved(x, cos, sin)``: ``x (b, h, t, d)`` float64, tables
    ``(t, r/2)`` (one angle per pair, ``r <= d``); GPT-J's pairs ``(2i, 2i + 1)`` of the first
    ``r`` channels turn by row ``i``'s angle, the other ``d - r`` pass through."""
    gen = torch.Generator().manual_seed(0)
    cases = {}
    for label, (b, h, t, d, r) in {
        "GPT-J's share, r = d/4": (1, 2, 5, 16, 4),
        "r = d/2, two sequences": (2, 1, 3, 8, 4),
        "every channel, r = d": (1, 1, 4, 8, 8),
    }.items():
        x = torch.randn(b, h, t, d, generator=gen, dtype=torch.float64)
        cases[label] = (x, *_angle_tables(t, r))
    x = torch.randn(1, 1, 3, 4, generator=gen, dtype=torch.float64)
    cases["one angle for both pairs, r = d"] = (
        x,
        *_angle_tables(3, 4, torch.tensor([[0.0], [0.7], [2.0]], dtype=torch.float64).repeat(1, 2)),
    )
    x = torch.randn(1, 1, 2, 6, generator=gen, dtype=torch.float64)
    cases["one pair turned by pi, r = 2 of d = 6"] = (
        x,
        *_angle_tables(2, 2, torch.tensor([[0.0], [torch.pi]], dtype=torch.float64)),
    )
    x = torch.randn(1, 1, 2, 4, generator=gen, dtype=torch.float64)
    cases["pairs turned by 0 and pi (sin = 0), r = d"] = (
        x,
        *_angle_tables(2, 4, torch.tensor([[0.0, torch.pi], [torch.pi, 0.0]], dtype=torch.float64)),
    )
    mistakes = [
        Mistake(
            _neox_pairs,
            "channel i was paired with i + r/2, GPT-NeoX's rotate_half (the page's apply_rope); "
            "GPT-J pairs neighbours: (x[..., 0::2], x[..., 1::2]) turn together, and the result "
            "interleaves them again (torch.stack(..., dim=-1).flatten(-2)).",
            "one angle for both pairs, r = d",
        ),
        Mistake(
            _tables_as_halves,
            "the pairs are GPT-J's, but the tables were repeated as two halves (torch.cat((cos, "
            "cos), -1)), so channels 2i and 2i + 1 got different angles; repeat each angle for "
            "its pair: cos.repeat_interleave(2, dim=-1), or apply cos[..., i] to x1 and x2 alike.",
            "pairs turned by 0 and pi (sin = 0), r = d",
        ),
        Mistake(
            _turned_backwards,
            "each pair turned by minus its angle: (x_2i, x_2i+1) becomes "
            "(x_2i cos - x_2i+1 sin, x_2i+1 cos + x_2i sin).",
        ),
        Mistake(
            _last_channels,
            "the last r channels were rotated; GPT-J rotates the first r and passes the rest.",
            "one pair turned by pi, r = 2 of d = 6",
        ),
        Mistake(
            _all_channels,
            "every channel of the head was turned (the tables tiled across d); only the first "
            "r = 2 * cos.shape[-1] turn, the other d - r pass through unchanged.",
            "GPT-J's share, r = d/4",
        ),
    ]
    return check_function(
        fn,
        partial_rope_interleaved,
        cases,
        ("x", "cos", "sin"),
        mistakes=mistakes,
        atol=1e-12,
        rtol=1e-10,
        exact_dtype=True,
    )
