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
from demos.traps.tiny import measure_models, seeded_reference


class SequentialPhiBlock(PhiLMBlock):
    """The wrong block: Llama's order with Phi's one LayerNorm."""

    def forward(self, x: torch.Tensor, *attention_args: Any) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), *attention_args)  # (b, t, c)
        return x + self.mlp(self.input_layernorm(x))  # the wrong line: the MLP reads x + attn


class SequentialPhiLM(PhiLM):
    block_class = SequentialPhiBlock


def measure_sequential_mlp() -> Measured:
    """Logits of ours (right) and of the sequential block (wrong) against HF's, same weights."""
    reference, ids = seeded_reference("phi")
    right, wrong = PhiLM.from_hf(reference), SequentialPhiLM.from_hf(reference)
    quantity = "max |logits - PhiForCausalLM's|, 2 layers, 12 tokens, fp32"
    return measure_models(reference, right, wrong, ids, quantity)


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
