"""Feed-forward blocks: the gated MLP of Llama-style models (SwiGLU; GeGLU in Gemma) [shazeer2020glu],
the two-matrix GELU MLP of GPT-style models [hendrycks2016gelu] (Falcon, GPT-NeoX/Pythia, Phi), and the
same two matrices with a squared ReLU between them [so2021primer] (Persimmon).

Axes: ``c`` hidden size, ``f`` intermediate (MLP) width; any leading axes (``b, t``).

References:
    shazeer2020glu     GLU Variants Improve Transformer, Eq. (6) (SwiGLU, GEGLU).
    hendrycks2016gelu  Gaussian Error Linear Units (GELUs).
    so2021primer       Primer: Searching for Efficient Transformers, Section 3 (squared ReLU).

Reference implementation:
    transformers==5.23.0, models/llama/modeling_llama.py::LlamaMLP;
    models/gemma/modeling_gemma.py::GemmaMLP; models/falcon/modeling_falcon.py::FalconMLP;
    models/gpt_neox/modeling_gpt_neox.py::GPTNeoXMLP;
    models/persimmon/modeling_persimmon.py::PersimmonMLP with activations.py::ReLUSquaredActivation
"""

from __future__ import annotations

import math
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


def squared_relu(x: torch.Tensor) -> torch.Tensor:
    """``relu(x)**2`` elementwise: zero for ``x <= 0``, ``x**2`` above; any shape, same dtype."""
    return torch.square(F.relu(x))


class SquaredReLUMLP(GeluMLP):
    """``dense_4h_to_h(relu(dense_h_to_4h(x))**2)``: Persimmon's MLP, GPT-NeoX's names.

    NEW vs GeluMLP: the activation only. Squared ReLU [so2021primer] keeps ReLU's exact zeros (a
    sparse hidden layer) and grows like ``x**2`` above zero instead of like ``x``.
    """

    def __init__(self, hidden_size: int, intermediate_size: int, bias: bool = True) -> None:
        super().__init__(hidden_size, intermediate_size, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_floating(x=x)
        hidden = squared_relu(self.dense_h_to_4h(x))  # (b, t, f)  NEW vs GeluMLP
        return self.dense_4h_to_h(hidden)  # (b, t, c)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GELU's tanh approximation written out, ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    [hendrycks2016gelu], Section 2; transformers' ``gelu_new`` (``NewGELUActivation``) computes this
    formula term by term. ``F.gelu(x, approximate="tanh")`` is the same function, fused, and differs
    from it in the last bits, which a float32 gradient comparison at 1e-5 can see; so can the order in
    which the terms are built, which sets the order autograd sums ``x``'s three gradients. Any
    shape, same dtype.
    """
    half_x = 0.5 * x  # first, as transformers does: it sets the order of x's gradients
    inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))
    return half_x * (1.0 + torch.tanh(inner))
