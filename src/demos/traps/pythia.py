"""The Pythia chapter's trap: RoPE on every channel of a head instead of the first ``rotary_pct``.

Pythia rotates only ``r = int(d * rotary_pct)`` channels of each head (a quarter) and leaves the rest
position-free. A port that builds Llama's ``d``-wide cos/sin tables runs without an error (the shapes
fit) and turns all ``d`` channels, with frequencies ``base^(-2i/d)`` instead of ``base^(-2i/r)``.
Measured against transformers' ``GPTNeoXForCausalLM`` (transformers==5.23.0).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from demos.models.gpt_neox import GPTNeoXLM
from demos.traps import Measured, Trap
from demos.weights import randomize_weights_


def tiny_pythia(**overrides):
    """A tiny random ``GPTNeoXForCausalLM`` (head_dim 16, rotary_pct 0.25: 4 rotated channels)."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    fields = dict(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        rotary_pct=0.25,
        attn_implementation="eager",
        bos_token_id=None,
        eos_token_id=None,
    )
    return randomize_weights_(GPTNeoXForCausalLM(GPTNeoXConfig(**{**fields, **overrides}))).eval()


def measure_full_rotary() -> Measured:
    """Logits of ours (right) and ours with ``partial_rotary_factor=1`` (wrong) against HF's."""
    torch.manual_seed(0)
    reference = tiny_pythia()
    right = GPTNeoXLM.from_hf(reference)
    wrong = GPTNeoXLM(replace(right.config, partial_rotary_factor=1.0))  # the one wrong line
    wrong.load_state_dict(right.state_dict())  # the same weights
    ids = torch.randint(0, 128, (2, 16))
    with torch.no_grad():
        ref = reference(ids).logits
        errors = [(model(ids) - ref).abs().max().item() for model in (right, wrong)]
    return Measured(
        right_error=errors[0],
        wrong_error=errors[1],
        tolerance=1e-5 * max(1.0, ref.abs().max().item()),
        quantity="max |logits - GPTNeoXForCausalLM's|, 2 layers, 16 tokens, fp32",
    )


TRAPS = [
    Trap(
        chapter="pythia",
        title="RoPE on all channels instead of rotary_pct of them",
        wrong="cos, sin = rope_cos_sin(positions, head_dim, base)",
        right="cos, sin = rope_cos_sin(positions, int(head_dim * rotary_pct), base)",
        shows="every logit after the first position: 12 of 16 channels per head turn that should not",
        measure=measure_full_rotary,
    )
]
