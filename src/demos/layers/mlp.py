"""Feed-forward blocks: the gated SwiGLU MLP of Llama-style models [shazeer2020glu].

Axes: ``c`` hidden size, ``f`` intermediate (MLP) width; any leading axes (``b, t``).

References:
    shazeer2020glu  GLU Variants Improve Transformer, Eq. (6) (SwiGLU).

Reference implementation:
    transformers==5.23.0, models/llama/modeling_llama.py::LlamaMLP
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from demos.validation import check_floating


class GatedMLP(nn.Module):
    """SwiGLU feed-forward: ``down(silu(gate(x)) * up(x))``."""

    def __init__(self, hidden_size: int, intermediate_size: int, bias: bool = False) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=bias)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=bias)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_floating(x=x)
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))  # (b, t, f) -> (b, t, c)
