"""The Persimmon chapter's traps: the attention without its query/key LayerNorm, and ReLU where the
MLP squares it.

Both are easy to make when porting from GPT-NeoX, the closest common architecture: its attention has
no ``q_layernorm``/``k_layernorm`` (a loader that ignores unexpected keys drops them silently), and
``relu2`` reads like a typo for ``relu``. Measured against transformers' ``PersimmonForCausalLM``
(transformers==5.23.0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F

from demos.layers.mlp import SquaredReLUMLP
from demos.models.persimmon import PersimmonLM
from demos.traps import Measured, Trap
from demos.traps.tiny import measure_models, seeded_reference


class ReLUMLP(SquaredReLUMLP):
    """The wrong MLP: plain ReLU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense_4h_to_h(F.relu(self.dense_h_to_4h(x)))  # the wrong line: not squared


def _measure(make_wrong: Callable[[PersimmonLM], PersimmonLM]) -> Measured:
    """Ours (right) and ``make_wrong(ours)`` (wrong) against the tiny ``PersimmonForCausalLM``."""
    reference, ids = seeded_reference("persimmon")
    right = PersimmonLM.from_hf(reference)
    quantity = "max |logits - PersimmonForCausalLM's|, 2 layers, 12 tokens, fp32"
    return measure_models(reference, right, make_wrong(right), ids, quantity)


def without_qk_layernorm(right: PersimmonLM) -> PersimmonLM:
    """``qk_layernorm=False`` and the same other weights."""
    wrong = PersimmonLM(replace(right.config, qk_layernorm=False))
    wrong.load_state_dict(right.state_dict(), strict=False)  # drops q/k_layernorm, silently
    return wrong


def with_plain_relu(right: PersimmonLM) -> PersimmonLM:
    """ReLU in every MLP, the same weights."""
    wrong = PersimmonLM(right.config)
    c, f = right.config.hidden_size, right.config.intermediate_size
    for block in wrong.blocks:
        block.mlp = ReLUMLP(c, f)
    wrong.load_state_dict(right.state_dict())
    return wrong


def measure_no_qk_layernorm() -> Measured:
    """Ours (right) and ours with ``qk_layernorm=False`` and the same other weights (wrong)."""
    return _measure(without_qk_layernorm)


def measure_plain_relu() -> Measured:
    """Ours (right) and ours with ReLU in every MLP (wrong), same weights."""
    return _measure(with_plain_relu)


TRAPS = [
    Trap(
        chapter="persimmon",
        title="Attention without the query/key LayerNorm",
        wrong="q, k, v = split(qkv)  # straight to RoPE",
        right="q, k = q_layernorm(q), k_layernorm(k)  # per head, before RoPE",
        shows="every attention score, so every logit",
        measure=measure_no_qk_layernorm,
    ),
    Trap(
        chapter="persimmon",
        title="ReLU instead of squared ReLU",
        wrong="hidden = relu(dense_h_to_4h(x))",
        right="hidden = relu(dense_h_to_4h(x)) ** 2",
        shows="every MLP output, so every logit",
        measure=measure_plain_relu,
    ),
]
