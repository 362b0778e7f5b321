"""The Llama 3 chapter's traps: porting Llama 3.1's RoPE scaling almost right.

Both run a tiny random ``LlamaForCausalLM`` with ``rope_type="llama3"`` (an original context of 64
tokens, factor 8, 16-channel heads) on 128 tokens, and compare its logits with our ``LlamaLM``
given the right frequencies and a wrong set.

Reference implementation: transformers==5.23.0, modeling_rope_utils.py::_compute_llama3_parameters,
models/llama/modeling_llama.py::LlamaForCausalLM
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from demos.layers.rope import rope_cos_sin, rope_inv_freq
from demos.layers.rope_scaling import Llama3RopeScaling
from demos.traps import Measured, Trap
from demos.traps.tiny import measure_models, seeded, tiny_reference, token_ids

SCALING = Llama3RopeScaling(
    factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=64
)
TOKENS = 128  # twice the original context


def scale_every_frequency(inv_freq: torch.Tensor, scaling: Llama3RopeScaling) -> torch.Tensor:
    """Wrong: position interpolation, every frequency divided by the factor."""
    return inv_freq / scaling.factor


def hard_cutoff(inv_freq: torch.Tensor, scaling: Llama3RopeScaling) -> torch.Tensor:
    """Wrong: no blended band; one cutoff at ``L / low_freq_factor`` decides keep or divide."""
    wavelen = 2 * math.pi / inv_freq
    cutoff = scaling.original_max_position_embeddings / scaling.low_freq_factor
    return torch.where(wavelen > cutoff, inv_freq / scaling.factor, inv_freq)


def tiny_llama3(**overrides) -> torch.nn.Module:
    """A tiny random ``LlamaForCausalLM`` with :data:`SCALING` (``rope_type="llama3"``) and
    16-channel heads (width 64, 4 heads); draw it inside :func:`demos.traps.tiny.seeded`."""
    rope_parameters = {
        "rope_type": "llama3",
        "rope_theta": 10000.0,
        "factor": SCALING.factor,
        "low_freq_factor": SCALING.low_freq_factor,
        "high_freq_factor": SCALING.high_freq_factor,
        "original_max_position_embeddings": SCALING.original_max_position_embeddings,
    }
    fields = dict(hidden_size=64, max_position_embeddings=512, rope_parameters=rope_parameters)
    return tiny_reference("llama", **{**fields, **overrides})


def _measure(frequencies) -> Callable[[], Measured]:
    """A ``measure``: max |logits - transformers'| with the right frequencies and with
    ``frequencies(inv_freq, scaling)``; a tiny random model, fp32, seeded."""

    def measure() -> Measured:
        from demos.models.llama import LlamaLM

        with seeded(0):
            reference = tiny_llama3()
            ids = token_ids(reference.config.vocab_size, b=1, t=TOKENS)
        right, wrong = LlamaLM.from_hf(reference).eval(), LlamaLM.from_hf(reference).eval()
        d, base = right.config.head_dim, right.config.rope_theta
        wrong_freq = frequencies(rope_inv_freq(d, base), SCALING)
        wrong.position_embeddings = lambda positions, dtype: rope_cos_sin(  # the wrong table
            positions, d, base, dtype, inv_freq=wrong_freq
        )
        quantity = f"logits of a 2-layer LlamaForCausalLM (rope_type llama3), {TOKENS} tokens, fp32"
        return measure_models(reference, right, wrong, ids, quantity, 1e-4)

    return measure


TRAPS = [
    Trap(
        chapter="llama3",
        title="Llama 3.1 RoPE: every frequency divided by the factor",
        wrong="inv_freq = inv_freq / factor",
        right="inv_freq = llama3_inv_freq(inv_freq, scaling)",
        shows="every position past the first: the fast rotations that order nearby tokens slow 8x",
        measure=_measure(scale_every_frequency),
    ),
    Trap(
        chapter="llama3",
        title="Llama 3.1 RoPE: a hard cutoff instead of the blended band",
        wrong="return scaled  # kept or divided at L / low_freq_factor, no blend",
        right="return torch.where(in_band, blended, scaled)",
        shows="the frequencies whose wavelength lies between L / high_freq_factor and L / low_freq_factor",
        measure=_measure(hard_cutoff),
    ),
]
