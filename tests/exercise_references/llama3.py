"""References and known mistakes for the Llama 3 chapter's exercises: Llama 3.1's scaled RoPE frequencies, and the
parameters a vocabulary costs (embedding + output head, tied or not)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from demos.exercises.core import Check, Mistake, check_function
from demos.layers.rope import rope_inv_freq
from demos.layers.rope_scaling import Llama3RopeScaling, llama3_inv_freq


def llama3_frequencies_reference(
    inv_freq: torch.Tensor,
    factor: float,
    low_freq_factor: float,
    high_freq_factor: float,
    original_max_position_embeddings: int,
) -> torch.Tensor:
    """:func:`~demos.layers.rope_scaling.llama3_inv_freq` with the four numbers as arguments."""
    scaling = Llama3RopeScaling(
        factor, low_freq_factor, high_freq_factor, original_max_position_embeddings
    )
    return llama3_inv_freq(inv_freq, scaling)


def _wavelengths(inv_freq: torch.Tensor) -> torch.Tensor:
    return 2 * math.pi / inv_freq


def _all_scaled(inv_freq, factor, low, high, L):
    return inv_freq / factor


def _hard_cutoff(inv_freq, factor, low, high, L):
    return torch.where(_wavelengths(inv_freq) > L / low, inv_freq / factor, inv_freq)


def _blend_reversed(inv_freq, factor, low, high, L):
    wavelen = _wavelengths(inv_freq)
    scaled = torch.where(wavelen > L / low, inv_freq / factor, inv_freq)
    s = (L / wavelen - low) / (high - low)
    blended = s * scaled / factor + (1 - s) * scaled  # s and 1 - s swapped
    in_band = (wavelen >= L / high) & (wavelen <= L / low)
    return torch.where(in_band, blended, scaled)


def _bands_swapped(inv_freq, factor, low, high, L):
    wavelen = _wavelengths(inv_freq)
    scaled = torch.where(wavelen < L / high, inv_freq / factor, inv_freq)  # fast ones scaled
    return torch.where((wavelen >= L / high) & (wavelen <= L / low), inv_freq, scaled)


def check_llama3_frequencies(fn: Callable[..., torch.Tensor]) -> Check:
    """Check a learner's ``(inv_freq, factor, low_freq_factor, high_freq_factor,
    original_max_position_embeddings) -> scaled inv_freq`` against transformers' rule (float32)."""
    cases = {
        "Llama 3.1 (8, 1, 4, 8192), d = 128, base 500,000": (
            rope_inv_freq(128, 500000.0),
            8.0,
            1.0,
            4.0,
            8192,
        ),
        "(4, 2, 8, 2048), d = 64, base 10,000": (rope_inv_freq(64, 10000.0), 4.0, 2.0, 8.0, 2048),
        "tiny context (2, 1, 4, 64), d = 16": (rope_inv_freq(16, 10000.0), 2.0, 1.0, 4.0, 64),
    }
    mistakes = [
        Mistake(
            lambda inv_freq, *rest: inv_freq,
            "the frequencies came back unscaled; Llama 3.1 divides the low ones by the factor.",
        ),
        Mistake(
            _all_scaled,
            "every frequency was divided by the factor (position interpolation). Llama 3.1 keeps "
            "the fast ones, whose wavelength is below L / high_freq_factor.",
        ),
        Mistake(
            _hard_cutoff,
            "there is no blended band: frequencies with wavelengths between L / high_freq_factor "
            "and L / low_freq_factor must move smoothly from theta to theta / factor.",
        ),
        Mistake(
            _blend_reversed,
            "the blend runs the wrong way: s = (L / wavelength - low) / (high - low) is the weight "
            "of the *unscaled* frequency (s = 1 at the short end of the band).",
        ),
        Mistake(
            _bands_swapped,
            "the regimes are swapped: short wavelengths (fast rotations) are kept, long ones are "
            "divided by the factor.",
        ),
    ]
    names = ("inv_freq", "factor", "low_freq_factor", "high_freq_factor")
    return check_function(
        fn,
        llama3_frequencies_reference,
        cases,
        (*names, "original_max_position_embeddings"),
        mistakes=mistakes,
        atol=1e-9,
        rtol=1e-6,
    )


def vocabulary_parameters_reference(vocab_size: int, hidden_size: int, tied: bool) -> int:
    """Parameters of the embedding and the output head: ``v c`` each, once if they are tied."""
    return vocab_size * hidden_size * (1 if tied else 2)


def check_vocabulary_parameters(fn: Callable[[int, int, bool], int]) -> Check:
    """Check a learner's ``vocabulary_parameters(vocab_size, hidden_size, tied) -> int``."""
    cases = {
        "Llama 3 8B (v = 128,256, c = 4096, untied)": (128256, 4096, False),
        "Llama 2 7B (v = 32,000, c = 4096, untied)": (32000, 4096, False),
        "Gemma 2B (v = 256,000, c = 2048, tied)": (256000, 2048, True),
        "tiny (v = 97, c = 32, tied)": (97, 32, True),
    }
    mistakes = [
        Mistake(
            lambda v, c, tied: 2 * v * c,
            "a tied head was counted twice: when tied, lm_head *is* the embedding matrix.",
        ),
        Mistake(
            lambda v, c, tied: v * c,
            "the output head is missing: an untied model has a second v x c matrix, lm_head.",
        ),
        Mistake(
            lambda v, c, tied: v * c * (2 if tied else 1),
            "tied and untied are swapped: tied means one shared matrix.",
        ),
    ]
    return check_function(
        fn,
        vocabulary_parameters_reference,
        cases,
        ("vocab_size", "hidden_size", "tied"),
        mistakes=mistakes,
    )
