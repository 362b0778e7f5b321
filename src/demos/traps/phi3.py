"""Phi-3 chapter's traps: NF4 bytes read with the nibbles swapped; LongRoPE without its attention factor."""

from __future__ import annotations

import dataclasses
import logging

import torch

from demos.layers.quantization import dequantize_nf4
from demos.testing import COMMON, TINY
from demos.traps import Measured, Trap
from demos.traps.tiny import measure_models, seeded_reference

TINY_LONGROPE = {  # a 2-layer Phi3Config with LongRoPE; L = 8, so 12 tokens use the long set
    **TINY["phi3"],
    **COMMON,
    "original_max_position_embeddings": 8,
    "rope_parameters": {
        "rope_type": "longrope",
        "rope_theta": 10000.0,
        "factor": 32.0,
        "short_factor": [1.0, 1.3, 2.1, 3.7],
        "long_factor": [1.0, 2.9, 6.4, 15.2],
    },
}


def unpack_codes(packed: torch.Tensor, shape: tuple[int, ...], high_first: bool = True):
    """The 4-bit codes in bitsandbytes' packed bytes; ``high_first=False`` is the trap."""
    flat = packed.reshape(-1)
    high, low = flat >> 4, flat & 0x0F
    pairs = (high, low) if high_first else (low, high)
    return torch.stack(pairs, dim=-1).reshape(shape)


def measure_nibbles() -> Measured:
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # its optional-kernel warning
    import bitsandbytes.functional as bnbf

    torch.manual_seed(0)
    weight = 0.05 * torch.randn(64, 128)
    packed, state = bnbf.quantize_4bit(weight, blocksize=64, quant_type="nf4")
    reference = bnbf.dequantize_4bit(packed, state)
    errors = []
    for high_first in (True, False):
        codes = unpack_codes(packed, tuple(weight.shape), high_first)
        values = dequantize_nf4(codes, state.absmax, 64)
        errors.append((values - reference).abs().max().item())
    return Measured(errors[0], errors[1], 1e-7, "dequantised 64 x 128 weight, bitsandbytes 0.50.2")


def without_attention_factor(ours):
    """Plant the mistake in ``ours`` (a ``Phi3LM``): LongRoPE's tables not scaled (factor 1)."""
    ours.config = dataclasses.replace(ours.config, attention_factor=1.0)


def measure_attention_factor() -> Measured:
    from demos.models.phi3 import Phi3LM

    hf, ids = seeded_reference("phi3", **TINY_LONGROPE)
    right, wrong = Phi3LM.from_hf(hf), Phi3LM.from_hf(hf)
    without_attention_factor(wrong)
    return measure_models(hf, right, wrong, ids, "logits of a 2-layer Phi3ForCausalLM, fp32", 1e-4)


TRAPS = [
    Trap(
        chapter="phi3",
        title="NF4 bytes unpacked low nibble first",
        wrong="codes = stack((byte & 0xF, byte >> 4))",
        right="codes = stack((byte >> 4, byte & 0xF))",
        shows="every value: each pair of neighbouring weights trades places",
        measure=measure_nibbles,
    ),
    Trap(
        chapter="phi3",
        title="LongRoPE without the attention factor",
        wrong="return cos, sin",
        right="return cos * attention_factor, sin * attention_factor",
        shows="every attention score: logits scaled by attention_factor squared",
        measure=measure_attention_factor,
    ),
]
