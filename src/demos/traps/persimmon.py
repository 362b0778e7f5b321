"""The Persimmon chapter's traps: the attention without its query/key LayerNorm, and ReLU where the
MLP squares it.

Both are easy to make when porting from GPT-NeoX, the closest common architecture: its attention has
no ``q_layernorm``/``k_layernorm`` (a loader that ignores unexpected keys drops them silently), and
``relu2`` reads like a typo for ``relu``. Measured against transformers' ``PersimmonForCausalLM``
(transformers==5.23.0).
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from demos.layers.mlp import SquaredReLUMLP
from demos.models.persimmon import PersimmonLM
from demos.traps import Measured, Trap
from demos.weights import randomize_weights_


class ReLUMLP(SquaredReLUMLP):
    """The wrong MLP: plain ReLU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense_4h_to_h(F.relu(self.dense_h_to_4h(x)))  # the wrong line: not squared


def tiny_persimmon(**overrides):
    """A tiny random ``PersimmonForCausalLM`` (head_dim 16, half rotated, QK LayerNorm)."""
    from transformers import PersimmonConfig, PersimmonForCausalLM

    fields = dict(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        partial_rotary_factor=0.5,
        qk_layernorm=True,
        attn_implementation="eager",
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    model = PersimmonForCausalLM(PersimmonConfig(**{**fields, **overrides}))
    return randomize_weights_(model).eval()


def _errors(reference, right, wrong) -> Measured:
    ids = torch.randint(0, 128, (2, 16))
    with torch.no_grad():
        ref = reference(ids).logits
        errors = [(model(ids) - ref).abs().max().item() for model in (right, wrong)]
    return Measured(
        right_error=errors[0],
        wrong_error=errors[1],
        tolerance=1e-5 * max(1.0, ref.abs().max().item()),
        quantity="max |logits - PersimmonForCausalLM's|, 2 layers, 16 tokens, fp32",
    )


def measure_no_qk_layernorm() -> Measured:
    """Ours (right) and ours with ``qk_layernorm=False`` and the same other weights (wrong)."""
    torch.manual_seed(0)
    reference = tiny_persimmon()
    right = PersimmonLM.from_hf(reference)
    wrong = PersimmonLM(replace(right.config, qk_layernorm=False))
    wrong.load_state_dict(right.state_dict(), strict=False)  # drops q/k_layernorm, silently
    return _errors(reference, right, wrong)


def measure_plain_relu() -> Measured:
    """Ours (right) and ours with ReLU in every MLP (wrong), same weights."""
    torch.manual_seed(0)
    reference = tiny_persimmon()
    right = PersimmonLM.from_hf(reference)
    wrong = PersimmonLM(right.config)
    c, f = right.config.hidden_size, right.config.intermediate_size
    for block in wrong.blocks:
        block.mlp = ReLUMLP(c, f)
    wrong.load_state_dict(right.state_dict())
    return _errors(reference, right, wrong)


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
