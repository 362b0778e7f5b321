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


def logit_errors(frequencies: Callable[[torch.Tensor, Llama3RopeScaling], torch.Tensor]):
    """``(right_error, wrong_error)``: max |logits - transformers'| with the right frequencies and
    with ``frequencies(inv_freq, scaling)``; a tiny random model, fp32, seeded."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from demos.models.llama import LlamaLM
    from demos.weights import randomize_weights_

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=97,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        attn_implementation="eager",
        rope_parameters={
            "rope_type": "llama3",
            "rope_theta": 10000.0,
            "factor": SCALING.factor,
            "low_freq_factor": SCALING.low_freq_factor,
            "high_freq_factor": SCALING.high_freq_factor,
            "original_max_position_embeddings": SCALING.original_max_position_embeddings,
        },
    )
    reference = randomize_weights_(LlamaForCausalLM(config)).eval()
    ours = LlamaLM.from_hf(reference).eval()
    ids = torch.randint(0, config.vocab_size, (1, TOKENS))
    with torch.no_grad():
        expected = reference(ids).logits
        right = (ours(ids) - expected).abs().max().item()
        d, base = ours.config.head_dim, ours.config.rope_theta
        wrong_freq = frequencies(rope_inv_freq(d, base), SCALING)
        ours.position_embeddings = lambda positions, dtype: rope_cos_sin(  # the wrong table
            positions, d, base, dtype, inv_freq=wrong_freq
        )
        wrong = (ours(ids) - expected).abs().max().item()
    return right, wrong


def _measure(frequencies) -> Callable[[], Measured]:
    def measure() -> Measured:
        right, wrong = logit_errors(frequencies)
        quantity = f"logits of a 2-layer LlamaForCausalLM (rope_type llama3), {TOKENS} tokens, fp32"
        return Measured(right, wrong, 1e-4, quantity)

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
        wrong="torch.where(wavelen > L / low_freq_factor, inv_freq / factor, inv_freq)",
        right="inv_freq = llama3_inv_freq(inv_freq, scaling)",
        shows="the frequencies whose wavelength lies between L / high_freq_factor and L / low_freq_factor",
        measure=_measure(hard_cutoff),
    ),
]
