"""The Phi chapter's trap: the MLP reading the attention output, as in a Llama block, instead of the
shared normalised input.

Phi's block computes ``ln(x)`` once and feeds it to both branches: ``x + attn(ln(x)) + mlp(ln(x))``.
A port written from the Llama habit adds attention first and normalises again before the MLP,
``h = x + attn(ln(x)); h + mlp(ln(h))``, reusing the one LayerNorm: every weight loads, every shape
fits, and the output is wrong. Measured against transformers' ``PhiForCausalLM`` (5.23.0).
"""

from __future__ import annotations

from typing import Any

import torch

from demos.models.phi import PhiLM, PhiLMBlock
from demos.traps import Measured, Trap
from demos.weights import randomize_weights_


class SequentialPhiBlock(PhiLMBlock):
    """The wrong block: Llama's order with Phi's one LayerNorm."""

    def forward(self, x: torch.Tensor, *attention_args: Any) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), *attention_args)  # (b, t, c)
        return x + self.mlp(self.input_layernorm(x))  # the wrong line: the MLP reads x + attn


class SequentialPhiLM(PhiLM):
    block_class = SequentialPhiBlock


def tiny_phi(**overrides):
    """A tiny random ``PhiForCausalLM`` (head_dim 16, half of it rotated, gelu_new)."""
    from transformers import PhiConfig, PhiForCausalLM

    fields = dict(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        partial_rotary_factor=0.5,
        attn_implementation="eager",
        bos_token_id=None,
        eos_token_id=None,
    )
    return randomize_weights_(PhiForCausalLM(PhiConfig(**{**fields, **overrides}))).eval()


def measure_sequential_mlp() -> Measured:
    """Logits of ours (right) and of the sequential block (wrong) against HF's, same weights."""
    torch.manual_seed(0)
    reference = tiny_phi()
    right = PhiLM.from_hf(reference)
    wrong = SequentialPhiLM.from_hf(reference)
    ids = torch.randint(0, 128, (2, 16))
    with torch.no_grad():
        ref = reference(ids).logits
        errors = [(model(ids) - ref).abs().max().item() for model in (right, wrong)]
    return Measured(
        right_error=errors[0],
        wrong_error=errors[1],
        tolerance=1e-5 * max(1.0, ref.abs().max().item()),
        quantity="max |logits - PhiForCausalLM's|, 2 layers, 16 tokens, fp32",
    )


TRAPS = [
    Trap(
        chapter="phi",
        title="The MLP reads the attention output, not the shared normed input",
        wrong="x = x + attn(ln(x)); return x + mlp(ln(x))",
        right="normed = ln(x); return x + attn(normed) + mlp(normed)",
        shows="every logit, from the first position on (the MLP's input changes everywhere)",
        measure=measure_sequential_mlp,
    )
]
