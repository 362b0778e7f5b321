"""RMSNorm: LayerNorm without the mean subtraction and without a bias [zhang2019rmsnorm], and
Gemma's variant, which scales by ``1 + w`` (weights stored as offsets from one) [gemmateam2024gemma].

Axes: ``c`` the normalised (hidden) axis, the last one; any leading axes.

References:
    zhang2019rmsnorm    Root Mean Square Layer Normalization, Eq. (4).
    gemmateam2024gemma  Gemma: Open Models Based on Gemini Research and Technology (RMSNorm).

Reference implementation:
    transformers==5.23.0, models/llama/modeling_llama.py::LlamaRMSNorm;
    models/gemma/modeling_gemma.py::GemmaRMSNorm
"""

from __future__ import annotations

import torch
from torch import nn

from demos.validation import check_finite_number, check_floating, check_positive_int


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x^2) + eps) * weight``: LayerNorm without the mean, computed in >= fp32."""

    def __init__(self, hidden_size: int, eps: float = 1e-6) -> None:
        super().__init__()
        check_positive_int("hidden_size", hidden_size)
        check_finite_number("eps", eps, minimum=0.0)
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_floating(x=x)
        dtype = x.dtype
        x = x.to(torch.promote_types(dtype, torch.float32))  # fp32 statistics, as HF; fp64 stays
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)  # (b, t, c): Eq. (4)
        return self.weight * x.to(dtype)


class GemmaRMSNorm(RMSNorm):
    """``x / sqrt(mean(x^2) + eps) * (1 + weight)``: the gain is stored as an offset from one.

    NEW vs :class:`RMSNorm`: the weight starts at zero (the identity gain), and the product with
    the gain happens in >= float32 *before* the cast back to the input's dtype; Llama casts first,
    then multiplies. In bfloat16 the two orders round differently.
    """

    def __init__(self, hidden_size: int, eps: float = 1e-6) -> None:
        super().__init__(hidden_size, eps)
        nn.init.zeros_(self.weight)  # 1 + 0 = the identity gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_floating(x=x)
        xw = x.to(torch.promote_types(x.dtype, torch.float32))  # fp32 statistics; fp64 stays
        normed = xw * torch.rsqrt(xw.pow(2).mean(-1, keepdim=True) + self.eps)  # (..., c)
        return (normed * (1.0 + self.weight.to(xw.dtype))).to(x.dtype)  # gain, then cast
