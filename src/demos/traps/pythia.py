"""The Pythia chapter's trap: RoPE on every channel of a head instead of the first ``rotary_pct``.

Pythia rotates only ``r = int(d * rotary_pct)`` channels of each head (a quarter) and leaves the rest
position-free. A port that builds Llama's ``d``-wide cos/sin tables runs without an error (the shapes
fit) and turns all ``d`` channels, with frequencies ``base^(-2i/d)`` instead of ``base^(-2i/r)``.
Measured against transformers' ``GPTNeoXForCausalLM`` (transformers==5.23.0).
"""

from __future__ import annotations

from dataclasses import replace

from demos.models.gpt_neox import GPTNeoXLM
from demos.traps import Measured, Trap
from demos.traps.tiny import measure_models, seeded_reference

ROTARY_PCT = 0.25  # Pythia's: a quarter of each head's d = 8 channels here, so 2 of 8 turn


def full_rotary(right: GPTNeoXLM) -> GPTNeoXLM:
    """``right``'s weights in a model with ``partial_rotary_factor=1``: every channel turns."""
    wrong = type(right)(replace(right.config, partial_rotary_factor=1.0))  # the one wrong line
    wrong.load_state_dict(right.state_dict())  # the same weights
    return wrong


def measure_full_rotary() -> Measured:
    """Logits of ours (right) and ours with ``partial_rotary_factor=1`` (wrong) against HF's."""
    reference, ids = seeded_reference("gpt_neox", rotary_pct=ROTARY_PCT)
    right = GPTNeoXLM.from_hf(reference)
    wrong = full_rotary(right)
    quantity = "max |logits - GPTNeoXForCausalLM's|, 2 layers, 12 tokens, fp32"
    return measure_models(reference, right, wrong, ids, quantity)


TRAPS = [
    Trap(
        chapter="pythia",
        title="RoPE on all channels instead of rotary_pct of them",
        wrong="cos, sin = rope_cos_sin(positions, head_dim, base)",
        right="cos, sin = rope_cos_sin(positions, int(head_dim * rotary_pct), base)",
        shows="every logit after the first position: 6 of 8 channels per head turn that should not",
        measure=measure_full_rotary,
    )
]
