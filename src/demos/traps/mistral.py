"""The Mistral chapter's trap: a sliding window one key too wide.

Measured on the logits of a tiny random ``MistralForCausalLM`` (window W = 4, 12 tokens, fp32): the
right version is :class:`demos.models.mistral.MistralLM`, the wrong one the same model whose mask
keeps ``W + 1`` keys.

Reference implementation: transformers==5.23.0, masking_utils.py::sliding_window_overlay
(key j visible to query i when ``i - W < j <= i``), models/mistral/modeling_mistral.py.
"""

from __future__ import annotations

from unittest import mock

import torch

from demos.layers.masks import sliding_window_mask
from demos.traps import Measured, Trap
from demos.traps.tiny import measure_logits

QUANTITY = "logits of a 2-layer MistralForCausalLM, sliding_window = 4, 12 tokens, fp32"
TOLERANCE = 1e-4  # as in demos.traps.llama2: fp32 logits agree to ~1e-6


def window_one_too_wide(
    t: int, s: int, window: int, device: torch.device | None = None
) -> torch.Tensor:
    """The wrong mask: ``k_pos >= q_pos - window``, so each query sees ``window + 1`` keys."""
    return sliding_window_mask(t, s, window + 1, device)  # (t, s)


def measure() -> Measured:
    from demos.layers import attention
    from demos.models.mistral import MistralLM

    def plant(ours):
        return mock.patch.object(attention, "sliding_window_mask", window_one_too_wide)

    return measure_logits("mistral", MistralLM, plant, TOLERANCE, QUANTITY)


TRAPS = [
    Trap(
        chapter="mistral",
        title="Sliding window off by one",
        wrong="visible = causal & (k_pos >= q_pos - window)  # W + 1 keys",
        right="visible = causal & (k_pos > q_pos - window)  # W keys, itself included",
        shows="from position W on, where the window is full; shorter prompts agree, "
        "so a test with t <= W misses it",
        measure=measure,
    ),
]
