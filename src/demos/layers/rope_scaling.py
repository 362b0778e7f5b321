"""Llama 3.1's RoPE frequency scaling: keep the fast rotations, slow down the slow ones.

Llama 3.1 stretches the 8,192-token context of Llama 3 to 131,072 by changing RoPE's frequencies,
not the model. Each frequency ``theta_i`` has a wavelength ``lambda_i = 2 pi / theta_i`` (tokens per
full turn). Wavelengths shorter than ``L / high_freq_factor`` (``L`` the original context) stay as
they are; wavelengths longer than ``L / low_freq_factor`` are divided by ``factor`` (the rotation
slows ``factor`` times, as in position interpolation); in between, the new frequency blends the two
linearly in ``L / lambda_i``, so the change is continuous [meta2024llamamodels].

Axes:
    d  head dimension (the rotated channels); the d/2 frequencies are indexed by i

References:
    meta2024llamamodels  meta-llama/llama-models, models/llama3/model.py::apply_scaling (Meta's
                         reference code: factor 8, low_freq_factor 1, high_freq_factor 4, an
                         original context of 8192, "values obtained from grid search").
    chen2023pi       Extending Context Window of Large Language Models via Positional
                     Interpolation (dividing every frequency by the factor).

Reference implementation:
    transformers==5.23.0, modeling_rope_utils.py::_compute_llama3_parameters
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from demos.validation import check_finite_number, check_positive_int


@dataclass(frozen=True)
class Llama3RopeScaling:
    """The four numbers of ``rope_parameters`` with ``rope_type == "llama3"`` (transformers' names)."""

    factor: float  # how many times slower the low frequencies turn (Llama 3.1: 8)
    low_freq_factor: float  # wavelengths above L / low_freq_factor are divided by factor
    high_freq_factor: float  # wavelengths below L / high_freq_factor are kept
    original_max_position_embeddings: int  # L, the context of pretraining (Llama 3: 8192)

    def __post_init__(self) -> None:
        check_finite_number("factor", self.factor, minimum=1.0)
        check_finite_number("low_freq_factor", self.low_freq_factor, minimum=0.0)
        check_finite_number("high_freq_factor", self.high_freq_factor, minimum=0.0)
        if not self.low_freq_factor > 0:
            raise ValueError(f"low_freq_factor ({self.low_freq_factor!r}) must be positive")
        if not self.high_freq_factor > self.low_freq_factor:
            raise ValueError(
                f"high_freq_factor ({self.high_freq_factor!r}) must exceed "
                f"low_freq_factor ({self.low_freq_factor!r}): the band between them is blended"
            )
        check_positive_int(
            "original_max_position_embeddings", self.original_max_position_embeddings
        )

    @classmethod
    def from_hf(cls, hf_config: Any) -> Llama3RopeScaling | None:
        """The scaling of a transformers config whose ``rope_parameters`` say ``"llama3"``; else None."""
        rope = getattr(hf_config, "rope_parameters", None) or {}
        if rope.get("rope_type", "default") != "llama3":
            return None
        return cls(
            factor=rope["factor"],
            low_freq_factor=rope["low_freq_factor"],
            high_freq_factor=rope["high_freq_factor"],
            original_max_position_embeddings=rope["original_max_position_embeddings"],
        )


LLAMA31_ROPE_SCALING = Llama3RopeScaling(
    factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=8192
)  # Llama 3.1's values, from Meta's reference code [meta2024llamamodels] (apply_scaling)


def llama3_inv_freq(inv_freq: torch.Tensor, scaling: Llama3RopeScaling) -> torch.Tensor:
    """Llama 3.1's scaled frequencies from the plain ones (:func:`demos.layers.rope.rope_inv_freq`).

    With ``L = original_max_position_embeddings``, ``lambda = 2 pi / theta`` and
    ``s = (L / lambda - low_freq_factor) / (high_freq_factor - low_freq_factor)``::

        theta'  = theta                          if lambda < L / high_freq_factor  (fast: kept)
                = theta / factor                 if lambda > L / low_freq_factor   (slow: scaled)
                = (1 - s) theta / factor + s theta   otherwise                     (blended)

    Args:
        inv_freq: the plain frequencies ``theta_i``, shape ``(d/2,)``, floating.
        scaling: the four numbers of the scaling.

    Returns:
        ``theta'``, shape ``(d/2,)``, in ``inv_freq``'s dtype (float32 as transformers; float64
        stays float64). ``s`` is 1 at the short end of the band and 0 at the long end, so
        ``theta'`` is continuous in ``lambda``.

    Raises:
        ValueError: ``inv_freq`` not a 1-D floating tensor of positive finite values.
    """
    if not isinstance(inv_freq, torch.Tensor) or inv_freq.dim() != 1:
        raise ValueError(f"inv_freq must be a 1-D tensor (d/2,), got {type(inv_freq).__name__}")
    if not inv_freq.dtype.is_floating_point:
        raise ValueError(f"inv_freq must be floating, got dtype {inv_freq.dtype}")
    if not (torch.isfinite(inv_freq).all() and (inv_freq > 0).all()):
        raise ValueError("inv_freq must hold positive finite frequencies")
    inv_freq = inv_freq.to(torch.promote_types(inv_freq.dtype, torch.float32))
    L = scaling.original_max_position_embeddings
    low, high, factor = scaling.low_freq_factor, scaling.high_freq_factor, scaling.factor
    wavelen = 2 * math.pi / inv_freq  # (d/2,): tokens per full turn
    scaled = torch.where(wavelen > L / low, inv_freq / factor, inv_freq)  # slow ones / factor
    s = (L / wavelen - low) / (high - low)  # (d/2,): 1 at lambda = L/high, 0 at lambda = L/low
    blended = (1 - s) * scaled / factor + s * scaled  # in the band: between theta/factor and theta
    in_band = (wavelen >= L / high) & (wavelen <= L / low)
    return torch.where(in_band, blended, scaled)  # (d/2,)
