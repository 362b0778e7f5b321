"""A tiny Phi decoder (phi-1, phi-1.5, phi-2): attention and the MLP side by side after one LayerNorm.

Phi's block [gunasekar2023textbooks, li2023textbooks] is GPT-NeoX's parallel block
(``demos.models.gpt_neox``) with one LayerNorm instead of two: ``x + attn(ln(x)) + mlp(ln(x))``,
the normalised ``ln(x)`` computed once and read by both branches (as Falcon-7B does). What else
differs from GPT-NeoX: q, k and v have their own projections (``q_proj k_proj v_proj``, with
biases; ``num_key_value_heads`` may be below ``h``), the output projection is ``dense``, the MLP is
``fc2(gelu_new(fc1(x)))``, half of each head is rotated in phi-1/1.5 (``partial_rotary_factor``),
and the output matrix ``lm_head`` has a bias. ``PhiLM`` subclasses ``GPTNeoXLM`` and restates only
these (``# NEW vs GPT-NeoX``).

Axes: as in :mod:`demos.models.gpt_neox`, with ``g`` key/value heads (phi-1/1.5/2: ``g = h``).

References:
    gunasekar2023textbooks  Textbooks Are All You Need (phi-1), Section 2 (architecture).
    li2023textbooks         Textbooks Are All You Need II (phi-1.5), Section 2.1.
    hendrycks2016gelu       GELU (gelu_new is its tanh approximation).

Reference implementation:
    transformers==5.23.0, models/phi/modeling_phi.py::PhiAttention, ::PhiMLP, ::PhiDecoderLayer,
    ::PhiModel, ::PhiForCausalLM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from demos.layers.attention import AttentionConfig, GroupedQueryAttention
from demos.layers.mlp import gelu_tanh
from demos.models.decoder import SubStep, check_layer_idx
from demos.models.gpt_neox import GELU_APPROXIMATIONS, GPTNeoXLM, GPTNeoXLMConfig
from demos.validation import check_floating, check_positive_int
from demos.weights import load_hf_weights


@dataclass(frozen=True)
class PhiLMConfig(GPTNeoXLMConfig):
    """Shape of a Phi model, with transformers' ``PhiConfig`` field names."""

    model_types: ClassVar[tuple[str, ...]] = ("phi",)  # NEW vs GPT-NeoX: PhiConfig
    hf_ignores: ClassVar[dict[str, str]] = {
        **GPTNeoXLMConfig.hf_ignores,
        "resid_pdrop": "dropout: 0 in eval",
        "embd_pdrop": "dropout: 0 in eval",
    }

    num_key_value_heads: int | None = None  # NEW vs GPT-NeoX: g; None means g == h
    hidden_act: str = "gelu_new"  # NEW vs GPT-NeoX: the tanh GELU
    partial_rotary_factor: float = 0.5  # NEW vs GPT-NeoX (Pythia: 0.25)
    qk_layernorm: bool = False  # transformers' option; no released Phi uses it (refused here)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.use_parallel_residual:
            raise ValueError("use_parallel_residual (False): Phi's block is parallel")
        if self.qk_layernorm:
            raise ValueError("qk_layernorm (True) is not supported here: no released Phi uses it")
        if self.num_key_value_heads is None:
            object.__setattr__(self, "num_key_value_heads", self.num_attention_heads)
        self.attention_config()  # validates g

    def attention_config(self) -> AttentionConfig:
        return AttentionConfig(
            hidden_size=self.hidden_size,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads,
            qkv_bias=True,  # NEW vs Llama: biases on q_proj, k_proj, v_proj
            o_bias=True,  # and on dense
        )


class PhiLMAttention(GroupedQueryAttention):
    """Llama's grouped-query attention with biases, the output projection named ``dense``.

    Partial rotary needs nothing here (``r``-wide cos/sin tables, as in GPT-NeoX).
    """

    def __init__(self, config: PhiLMConfig) -> None:
        super().__init__(config.attention_config())
        self.dense = self._modules.pop("o_proj")  # NEW vs Llama: HF's name for o_proj

    @property
    def o_proj(self) -> nn.Linear:
        """Llama's name, read by the inherited ``forward``: the same module as ``dense``."""
        return self.dense

    @classmethod
    def from_hf(cls, hf_attention: nn.Module) -> PhiLMAttention:
        """Build from a transformers ``PhiAttention`` and copy its weights."""
        return load_hf_weights(cls(PhiLMConfig.from_hf(hf_attention.config)), hf_attention)


class PhiLMMLP(nn.Module):
    """``fc2(gelu(fc1(x)))``: GPT-NeoX's MLP under Phi's names (``gelu_new``: the tanh GELU)."""

    def __init__(self, config: PhiLMConfig) -> None:
        super().__init__()
        check_positive_int("intermediate_size", config.intermediate_size)
        self.approximate = GELU_APPROXIMATIONS[config.hidden_act]
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)  # NEW vs GPT-NeoX: name
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_floating(x=x)
        h = self.fc1(x)  # (b, t, f)
        h = gelu_tanh(h) if self.approximate == "tanh" else F.gelu(h)  # gelu_new: the formula
        return self.fc2(h)  # (b, t, c)


class PhiLMBlock(nn.Module):
    """``x + attn(ln(x)) + mlp(ln(x))``: one LayerNorm, its output read by both branches."""

    def __init__(self, config: PhiLMConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = check_layer_idx(layer_idx, config)
        self.self_attn = PhiLMAttention(config)  # NEW vs GPT-NeoX: q_proj, k_proj, v_proj, dense
        self.mlp = PhiLMMLP(config)
        # NEW vs GPT-NeoX: one norm, no post_attention_layernorm
        self.input_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def substeps(self) -> tuple[SubStep, ...]:
        """The sub-steps in forward order, for :func:`demos.debugging.first_divergence`."""
        return (
            SubStep("input norm", "norm", "input_layernorm"),
            SubStep("attention", "attention", "self_attn"),
            SubStep("MLP", "mlp", "mlp"),
            SubStep("residual after attention + MLP", "residual"),
        )

    def forward(self, x: torch.Tensor, *attention_args: Any) -> torch.Tensor:
        """``x (b, t, c)``; ``attention_args``: ``(position_embeddings, cache, attention_mask)``."""
        normed = self.input_layernorm(x)  # (b, t, c), computed once
        attn_out = self.self_attn(normed, *attention_args)  # (b, t, c)
        return attn_out + self.mlp(normed) + x  # NEW vs GPT-NeoX: the MLP reads the same normed


class PhiLM(GPTNeoXLM):
    """:class:`~demos.models.gpt_neox.GPTNeoXLM` (partial RoPE, final LayerNorm) with Phi's block,
    names (``model.embed_tokens``, ``model.layers``, ``model.final_layernorm``) and a biased head."""

    config_class = PhiLMConfig  # NEW vs GPT-NeoX: PhiConfig's fields
    block_class = PhiLMBlock  # NEW vs GPT-NeoX: one shared LayerNorm
    module_names = ("model", "embed_tokens", "layers", "final_layernorm")  # NEW vs GPT-NeoX

    def make_head(self, config: PhiLMConfig) -> nn.Linear:
        return nn.Linear(config.hidden_size, config.vocab_size, bias=True)  # NEW: a bias
