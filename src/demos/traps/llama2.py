"""The Llama 2 chapter's traps: RoPE on the wrong pairs, key/value heads tiled instead of repeated.

Each is measured on the logits of a tiny random ``LlamaForCausalLM`` (2 layers, 4 query heads,
2 key/value heads, 12 tokens, fp32): the right version is :class:`demos.models.llama.LlamaLM`,
the wrong one the same model with one function of :mod:`demos.layers.attention` replaced.

Reference implementation: transformers==5.23.0, models/llama/modeling_llama.py::rotate_half,
::apply_rotary_pos_emb, ::repeat_kv, ::LlamaForCausalLM.
"""

from __future__ import annotations

from collections.abc import Callable
from unittest import mock

import torch

from demos.traps import Measured, Trap
from demos.traps.tiny import measure_logits

QUANTITY = "logits of a 2-layer LlamaForCausalLM (h = 4, g = 2), 12 tokens, fp32"
TOLERANCE = 1e-4  # fp32 logits of size ~10 agree to ~1e-6; 1e-4 leaves room for summation order


def rope_adjacent_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """The wrong RoPE: turns pairs ``(2i, 2i + 1)`` (Meta's original code) on weights that
    transformers converted for halves ``(i, i + d/2)``. ``x (b, h, t, d)``, ``cos, sin (t, d)``."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., 0::2], x[..., 1::2]  # (b, h, t, d/2): adjacent pairs
    c, s = cos[..., :half], sin[..., :half]  # (t, d/2): one angle per pair
    return torch.stack((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1).flatten(-2)  # (b, h, t, d)


def tile_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """The wrong ``repeat_kv``: heads ``0, 1, 0, 1`` instead of ``0, 0, 1, 1``."""
    return x.repeat(1, n_rep, 1, 1)  # (b, g * n_rep, s, d)


def replacing(name: str, wrong: Callable[..., torch.Tensor]) -> Callable[[], Measured]:
    """A ``measure`` whose wrong run replaces ``demos.layers.attention.<name>`` by ``wrong``."""
    from demos.layers import attention
    from demos.models.llama import LlamaLM

    def plant(ours):
        return mock.patch.object(attention, name, wrong)

    return lambda: measure_logits("llama", LlamaLM, plant, TOLERANCE, QUANTITY)


TRAPS = [
    Trap(
        chapter="llama2",
        title="RoPE on adjacent pairs instead of halves",
        wrong="x1, x2 = x[..., 0::2], x[..., 1::2]  # pairs (2i, 2i+1)",
        right="x1, x2 = x.chunk(2, dim=-1)  # pairs (i, i + d/2)",
        shows="every query and key but position 0's (angle 0), so every logit past the first token",
        measure=replacing("apply_rope", rope_adjacent_pairs),
    ),
    Trap(
        chapter="llama2",
        title="Key/value heads tiled instead of repeated (GQA)",
        wrong="k = k.repeat(1, h // g, 1, 1)  # heads 0, 1, 0, 1",
        right="k = repeat_kv(k, h // g)  # heads 0, 0, 1, 1",
        shows="query head j reads key/value head j mod g instead of j // (h/g): heads 1 and 2 "
        "of 4 here, every logit; invisible when g = 1 (MQA) or g = h (MHA)",
        measure=replacing("repeat_kv", tile_kv),
    ),
]
