"""Feed-forward blocks: the gated MLP of Llama-style models (SwiGLU; GeGLU in Gemma) [shazeer2020glu], and the
two-matrix GELU MLP of GPT-style models [hendrycks2016gelu] (Falcon; next GPT-NeoX/Pythia, Persimmon).

Axes: ``c`` hidden size, ``f`` intermediate (MLP) width; any leading axes (``b, t``).

References:
    shazeer2020glu     GLU Variants Improve Transformer, Eq. (6) (SwiGLU, GEGLU).
    hendrycks2016gelu  Gaussian Error Linear Units (GELUs).

Reference implementation:
    transformers==5.23.0, models/llama/modeling_llama.py::LlamaMLP; models/gemma/modeling_gemma.py::GemmaMLP;
    models/falcon/modeling_falcon.py::FalconMLP; models/gpt_neox/modeling_gpt_neox.py::GPTNeoXMLP
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from demos.validation import check_floating

# the gate's activation, by transformers' ``hidden_act`` name (ACT2FN): SwiGLU and GeGLU
GATE_ACTIVATIONS = {
    "silu": F.silu,  # SwiGLU (Llama)
    "gelu_pytorch_tanh": partial(F.gelu, approximate="tanh"),  # GeGLU, tanh GELU (Gemma)
    "gelu": F.gelu,  # GeGLU with the exact (erf) GELU
}


class GatedMLP(nn.Module):
    """Gated feed-forward: ``down(act(gate(x)) * up(x))``; SwiGLU with ``silu``, GeGLU with a GELU.

    ``hidden_act`` is transformers' name of the gate's activation: ``"silu"`` (Llama, the
    default), ``"gelu_pytorch_tanh"`` (Gemma's tanh-approximate GELU) or ``"gelu"`` (exact).
    """

    def __init__(
        self,
        hidden_size: int,
        intermediate_size: int,
        bias: bool = False,
        hidden_act: str = "silu",
    ) -> None:
        super().__init__()
        if hidden_act not in GATE_ACTIVATIONS:
            raise ValueError(
                f"hidden_act ({hidden_act!r}) must be one of {sorted(GATE_ACTIVATIONS)}"
            )
        self.hidden_act = hidden_act  # a name, not a function: the module stays picklable
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=bias)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=bias)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=bias)

    def act(self, z: torch.Tensor) -> torch.Tensor:
        """The gate's activation, ``hidden_act`` (elementwise)."""
        return GATE_ACTIVATIONS[self.hidden_act](z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_floating(x=x)
        hidden = self.act(self.gate_proj(x)) * self.up_proj(x)  # (b, t, f): gate * up
        return self.down_proj(hidden)  # (b, t, c)


class GeluMLP(nn.Module):
    """``dense_4h_to_h(act(dense_h_to_4h(x)))``: the GPT-style MLP, one hidden layer, no gate.

    Parameter names are those of Falcon's and GPT-NeoX's MLPs in transformers, so their weights load
    as they are. ``approximate`` is torch's: ``"none"`` for the exact (erf) GELU (Falcon, GPT-NeoX's
    ``gelu``), ``"tanh"`` for the tanh approximation (``gelu_new``).
    """

    def __init__(
        self, hidden_size: int, intermediate_size: int, bias: bool = True, approximate: str = "none"
    ) -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate ({approximate!r}) must be 'none' or 'tanh'")
        self.approximate = approximate
        self.dense_h_to_4h = nn.Linear(hidden_size, intermediate_size, bias=bias)
        self.dense_4h_to_h = nn.Linear(intermediate_size, hidden_size, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_floating(x=x)
        hidden = F.gelu(self.dense_h_to_4h(x), approximate=self.approximate)  # (b, t, f)
        return self.dense_4h_to_h(hidden)  # (b, t, c)
