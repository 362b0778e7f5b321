"""A tiny Llama-style decoder-only language model, built from this package's attention and RoPE.

Llama 2's block is a pre-norm Transformer block [touvron2023llama2]: RMSNorm
[zhang2019rmsnorm] before attention and before the MLP, a SwiGLU MLP [shazeer2020glu],
rotary position embeddings [su2021roformer] and, in the larger models, grouped-query
attention [ainslie2023gqa]. Module and parameter names follow transformers, so
``LlamaLM.from_hf(LlamaForCausalLM)`` copies weights with no rename map.

Axes:
    b  batch
    t  new tokens in this call
    s  all tokens so far (cache + new)
    c  hidden size
    f  MLP intermediate size
    v  vocabulary size

References:
    touvron2023llama2  Llama 2, Section 2.2 (architecture) and Table 1.
    zhang2019rmsnorm   RMSNorm, Eq. (4).
    shazeer2020glu     SwiGLU, Eq. (6).

Reference implementation:
    transformers==5.23.0, models/llama/modeling_llama.py::LlamaRMSNorm, ::LlamaMLP,
    ::LlamaDecoderLayer, ::LlamaModel, ::LlamaForCausalLM
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from demos.layers.attention import AttentionConfig, GroupedQueryAttention
from demos.layers.kv_cache import KVCache
from demos.layers.mlp import GATE_ACTIVATIONS, GatedMLP
from demos.layers.norms import RMSNorm
from demos.layers.rope import rope_cos_sin, rope_inv_freq
from demos.layers.rope_scaling import Llama3RopeScaling, llama3_inv_freq
from demos.models import fields_from_hf, rope_theta_from_hf
from demos.models.decoder import (
    DecoderLM,
    SubStep,
    check_layer_idx,
    check_layer_types,
    sequential_substeps,
)
from demos.validation import check_positive_int, check_rope_theta


@dataclass(frozen=True)
class LlamaLMConfig:
    """Shape of the whole model, with transformers' ``LlamaConfig`` field names."""

    model_types: ClassVar[tuple[str, ...]] = ("llama",)  # the transformers configs from_hf reads
    # transformers fields read under another name or by a special reader (fields_from_hf's check)
    hf_reads: ClassVar[dict[str, str]] = {
        "rope_parameters": "rope_theta; rope_type 'llama3' as llama3_rope_scaling; others refused",
    }
    # transformers fields its eager forward does not read in eval mode (transformers 5.23.0)
    hf_ignores: ClassVar[dict[str, str]] = {
        "attention_dropout": "dropout: 0 in eval",
        "initializer_range": "initialisation only",
        "pretraining_tp": "not read by the 5.23 modeling (the products are computed whole)",
    }

    vocab_size: int  # v
    hidden_size: int  # c
    intermediate_size: int  # f, width of the gated MLP
    num_hidden_layers: int  # number of decoder blocks
    num_attention_heads: int  # h
    num_key_value_heads: int | None = None  # g; None means g == h
    head_dim: int | None = None  # d; None means c // h
    rms_norm_eps: float = 1e-6  # epsilon inside RMSNorm's square root
    rope_theta: float = 10000.0  # RoPE base
    hidden_act: str = "silu"  # the MLP gate's activation: silu is SwiGLU
    attention_bias: bool = False  # biases on q/k/v/o (transformers' one switch for all four)
    mlp_bias: bool = False  # biases on gate/up/down
    tie_word_embeddings: bool = False  # lm_head shares the embedding matrix
    sliding_window: int | None = None  # Mistral's W; None for Llama
    # per layer "full_attention" or "sliding_attention"; None: every layer slides iff sliding_window
    layer_types: tuple[str, ...] | None = None
    # Llama 3.1's rope_type "llama3", read from rope_parameters; None: plain RoPE. (Not named
    # rope_scaling: transformers configs carry a legacy dict of that name, fields_from_hf would read it)
    llama3_rope_scaling: Llama3RopeScaling | None = None
    # the context length it was trained for: not read by the forward (RoPE has no table), but the
    # window lm-eval's HFLM scores in (demos.eval.scoring.max_length_of); None: unknown
    max_position_embeddings: int | None = None

    def __post_init__(self) -> None:
        if self.max_position_embeddings is not None:
            check_positive_int("max_position_embeddings", self.max_position_embeddings)
        for name in ("vocab_size", "intermediate_size", "num_hidden_layers"):
            check_positive_int(name, getattr(self, name))
        if not self.rms_norm_eps > 0:
            raise ValueError(f"rms_norm_eps ({self.rms_norm_eps!r}) must be positive")
        check_rope_theta(self.rope_theta)  # else it would fail only at the first forward
        if self.hidden_act not in GATE_ACTIVATIONS:
            raise ValueError(
                f"hidden_act ({self.hidden_act!r}) must be one of {sorted(GATE_ACTIVATIONS)}"
            )
        scaling = self.llama3_rope_scaling
        if scaling is not None and not isinstance(scaling, Llama3RopeScaling):
            raise ValueError(
                f"llama3_rope_scaling must be a Llama3RopeScaling or None, got {type(scaling).__name__}"
            )
        if self.sliding_window is not None:
            check_positive_int("sliding_window", self.sliding_window)
        layer_types = check_layer_types(
            self.layer_types, self.num_hidden_layers, self.sliding_window
        )
        object.__setattr__(self, "layer_types", layer_types)
        attn = self.attention_config()  # validates the attention fields
        object.__setattr__(self, "num_key_value_heads", attn.num_key_value_heads)
        object.__setattr__(self, "head_dim", attn.head_dim)

    def window(self, layer_idx: int) -> int | None:
        """Layer ``layer_idx``'s sliding window, or ``None`` where it attends to every past token."""
        if self.layer_types is None or self.layer_types[layer_idx] == "sliding_attention":
            return self.sliding_window
        return None

    def attention_config(self, layer_idx: int | None = None) -> AttentionConfig:
        """Layer ``layer_idx``'s attention (``None``: the fields every layer shares, no window)."""
        return AttentionConfig(
            hidden_size=self.hidden_size,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads,
            head_dim=self.head_dim,
            qkv_bias=self.attention_bias,
            o_bias=self.attention_bias,
            sliding_window=None if layer_idx is None else self.window(layer_idx),
        )

    @classmethod
    def from_hf(cls, hf_config: Any) -> LlamaLMConfig:
        """Read a transformers ``LlamaConfig``; ``ValueError`` for another ``model_type`` or an
        unknown ``rope_type``."""
        return fields_from_hf(
            cls,
            hf_config,
            rope_theta=rope_theta_from_hf(hf_config, supported=("default", "llama3")),
            llama3_rope_scaling=Llama3RopeScaling.from_hf(hf_config),  # Llama 3.1; else None
        )


class LlamaLMBlock(nn.Module):
    """Pre-norm block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``.

    Built as ``LlamaLMBlock(config, layer_idx)``; the parts come from the hooks ``make_attention``,
    ``make_mlp`` and ``make_norm``, which a family overrides to change a part.
    """

    def __init__(self, config: LlamaLMConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = check_layer_idx(layer_idx, config)
        self.self_attn = self.make_attention(config, layer_idx)
        self.mlp = self.make_mlp(config, layer_idx)
        self.input_layernorm = self.make_norm(config)
        self.post_attention_layernorm = self.make_norm(config)

    def make_attention(self, config: LlamaLMConfig, layer_idx: int) -> nn.Module:
        """Hook: grouped-query attention, with this layer's window (``config.layer_types``)."""
        return GroupedQueryAttention(config.attention_config(layer_idx))

    def make_mlp(self, config: LlamaLMConfig, layer_idx: int) -> nn.Module:
        """Hook: the gated MLP (SwiGLU with silu)."""
        c, f = config.hidden_size, config.intermediate_size
        return GatedMLP(c, f, config.mlp_bias, hidden_act=config.hidden_act)

    def make_norm(self, config: LlamaLMConfig) -> nn.Module:
        """Hook: each of the two norms."""
        return RMSNorm(config.hidden_size, config.rms_norm_eps)

    def substeps(self) -> tuple[SubStep, ...]:
        """The sub-steps in forward order, for :func:`demos.debugging.first_divergence`."""
        return sequential_substeps(
            "input_layernorm", "self_attn", "post_attention_layernorm", "mlp"
        )

    def forward(
        self,
        x: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        cache: KVCache | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        attn_in = self.input_layernorm(x)  # (b, t, c)
        x = x + self.self_attn(attn_in, position_embeddings, cache, attention_mask)  # (b, t, c)
        return x + self.mlp(self.post_attention_layernorm(x))  # (b, t, c)


class LlamaLM(DecoderLM):
    """:class:`~demos.models.decoder.DecoderLM` with Llama's block and RoPE (Llama 3.1's scaling too).

    The shell (embedding, the loop over blocks, the cache, the final RMSNorm, the head) is
    ``DecoderLM``'s; a family that changes the block or the names subclasses it and overrides the
    hooks (see ``GemmaLM``).
    """

    config_class = LlamaLMConfig  # hook: the config that reads the HF config
    block_class = LlamaLMBlock  # hook: one decoder block, block_class(config, layer_idx)

    def position_embeddings(
        self, positions: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """RoPE's ``(cos, sin)`` for ``positions`` ``(t,)`` or ``(b, t)``, each ``(..., t, r)``.

        Llama rotates all ``r = d`` channels with the plain frequencies, or with Llama 3.1's
        scaled ones when ``config.llama3_rope_scaling`` is set; a family with partial rotary (``r < d``)
        or another scaling (LongRoPE) overrides this one method.
        """
        d, base = self.config.head_dim, self.config.rope_theta
        scaling = getattr(self.config, "llama3_rope_scaling", None)
        if scaling is None:
            return rope_cos_sin(positions, d, base, dtype)
        inv_freq = llama3_inv_freq(rope_inv_freq(d, base), scaling)  # (d/2,): Llama 3.1
        return rope_cos_sin(positions, d, base, dtype, inv_freq=inv_freq)
