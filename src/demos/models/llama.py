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
from typing import Any

import torch
from torch import nn

from demos.generation import GenerationMixin, position_ids
from demos.layers.attention import AttentionConfig, GroupedQueryAttention
from demos.layers.kv_cache import KVCache
from demos.layers.mlp import GatedMLP
from demos.layers.norms import RMSNorm
from demos.layers.rope import rope_cos_sin, rope_inv_freq
from demos.layers.rope_scaling import Llama3RopeScaling, llama3_inv_freq
from demos.models import fields_from_hf, rope_theta_from_hf
from demos.validation import (
    check_attention_mask,
    check_positive_int,
    check_rope_theta,
    check_token_ids,
)
from demos.weights import load_hf_weights


@dataclass(frozen=True)
class LlamaLMConfig:
    """Shape of the whole model, with transformers' ``LlamaConfig`` field names."""

    vocab_size: int  # v
    hidden_size: int  # c
    intermediate_size: int  # f, width of the SwiGLU GatedMLP
    num_hidden_layers: int  # number of decoder blocks
    num_attention_heads: int  # h
    num_key_value_heads: int | None = None  # g; None means g == h
    head_dim: int | None = None  # d; None means c // h
    rms_norm_eps: float = 1e-6  # epsilon inside RMSNorm's square root
    rope_theta: float = 10000.0  # RoPE base
    attention_bias: bool = False  # biases on q/k/v/o
    mlp_bias: bool = False  # biases on gate/up/down
    tie_word_embeddings: bool = False  # lm_head shares the embedding matrix
    sliding_window: int | None = None  # Mistral's W; None for Llama
    # Llama 3.1's rope_type "llama3", read from rope_parameters; None: plain RoPE. (Not named
    # rope_scaling: transformers configs carry a legacy dict of that name, fields_from_hf would read it)
    llama3_rope_scaling: Llama3RopeScaling | None = None

    def __post_init__(self) -> None:
        for name in ("vocab_size", "intermediate_size", "num_hidden_layers"):
            check_positive_int(name, getattr(self, name))
        if not self.rms_norm_eps > 0:
            raise ValueError(f"rms_norm_eps ({self.rms_norm_eps!r}) must be positive")
        check_rope_theta(self.rope_theta)  # else it would fail only at the first forward
        scaling = self.llama3_rope_scaling
        if scaling is not None and not isinstance(scaling, Llama3RopeScaling):
            raise ValueError(
                f"llama3_rope_scaling must be a Llama3RopeScaling or None, got {type(scaling).__name__}"
            )
        attn = self.attention_config()  # validates the attention fields
        object.__setattr__(self, "num_key_value_heads", attn.num_key_value_heads)
        object.__setattr__(self, "head_dim", attn.head_dim)

    def attention_config(self) -> AttentionConfig:
        return AttentionConfig(
            hidden_size=self.hidden_size,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads,
            head_dim=self.head_dim,
            attention_bias=self.attention_bias,
            sliding_window=self.sliding_window,
        )

    @classmethod
    def from_hf(cls, hf_config: Any) -> LlamaLMConfig:
        """Read a transformers ``LlamaConfig`` (or ``MistralConfig``)."""
        if getattr(hf_config, "hidden_act", "silu") != "silu":
            raise ValueError(
                f"hidden_act ({hf_config.hidden_act!r}) must be 'silu' for a SwiGLU GatedMLP"
            )
        return fields_from_hf(
            cls,
            hf_config,
            rope_theta=rope_theta_from_hf(hf_config, supported=("default", "llama3")),
            llama3_rope_scaling=Llama3RopeScaling.from_hf(hf_config),  # Llama 3.1; else None
        )


class LlamaLMBlock(nn.Module):
    """Pre-norm block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, config: LlamaLMConfig) -> None:
        super().__init__()
        self.self_attn = GroupedQueryAttention(config.attention_config())
        self.mlp = GatedMLP(config.hidden_size, config.intermediate_size, config.mlp_bias)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)

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


class LlamaLM(GenerationMixin, nn.Module):
    """Decoder plus the language-model head: token ids in, next-token logits out.

    The shell every decoder here shares: the embedding, the loop over blocks with the RoPE table
    and the cache, the final norm, the (tied) head and ``from_hf``. A family that changes the
    block or the names subclasses it and overrides the hooks below (see ``FalconLM``).
    """

    config_class: type = LlamaLMConfig  # hook: the config that reads the HF config
    block_class: type = LlamaLMBlock  # hook: one decoder block, built from the config
    # hook: transformers' module names, (backbone, embedding, blocks, final norm): model.layers.0...
    module_names: tuple[str, str, str, str] = ("model", "embed_tokens", "layers", "norm")

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        backbone_name, embed_name, layers_name, norm_name = self.module_names
        backbone = nn.Module()  # transformers' LlamaModel, a container: the loop is in forward
        backbone.add_module(embed_name, nn.Embedding(config.vocab_size, config.hidden_size))
        blocks = (self.block_class(config) for _ in range(config.num_hidden_layers))
        backbone.add_module(layers_name, nn.ModuleList(blocks))
        backbone.add_module(norm_name, self.final_norm(config))
        self.add_module(backbone_name, backbone)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.embed.weight

    def final_norm(self, config: Any) -> nn.Module:
        """Hook: the norm after the last block."""
        return RMSNorm(config.hidden_size, config.rms_norm_eps)

    def position_embeddings(
        self, positions: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hook: RoPE's ``(cos, sin)`` for ``positions`` ``(t,)`` or ``(b, t)``, each ``(..., t, r)``.

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

    def _part(self, i: int) -> nn.Module:
        return getattr(getattr(self, self.module_names[0]), self.module_names[i])

    @property
    def embed(self) -> nn.Embedding:
        return self._part(1)

    @property
    def blocks(self) -> nn.ModuleList:
        return self._part(2)

    @property
    def norm_f(self) -> nn.Module:
        return self._part(3)

    def new_cache(self, batch_size: int | None = None) -> list[KVCache]:
        """One empty :class:`KVCache` per layer (they size themselves on the first update)."""
        return [KVCache() for _ in self.blocks]

    def forward(
        self,
        input_ids: torch.Tensor,
        cache: list[KVCache] | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Args:
            input_ids: ``(b, t)`` token ids, each in ``[0, vocab_size)``.
            cache: from :meth:`new_cache`; the new tokens continue what it holds.
            attention_mask: ``(b, cached + t)``, 1 for a real token, 0 for left padding; the
                positions are counted over real tokens (:func:`demos.generation.position_ids`).

        Returns:
            ``(b, t, v)`` logits for the token after each position.
        """
        check_token_ids(input_ids, self.config.vocab_size)
        if cache is not None and len(cache) != len(self.blocks):
            raise ValueError(
                f"cache must hold one KVCache per layer ({len(self.blocks)}), got {len(cache)}"
            )
        b, t = input_ids.shape
        past = 0 if cache is None else len(cache[0])
        attention_mask = check_attention_mask(attention_mask, b, past + t)
        positions = position_ids(t, past, attention_mask, input_ids.device)  # (t,) or (b, t)
        x = self.embed(input_ids)  # (b, t, c)
        cos_sin = self.position_embeddings(
            positions, x.dtype
        )  # (cos, sin), each (t, r) or (b, t, r)
        for i, block in enumerate(self.blocks):
            x = block(x, cos_sin, None if cache is None else cache[i], attention_mask)  # (b, t, c)
        return self.lm_head(self.norm_f(x))  # (b, t, v)

    @classmethod
    def from_hf(cls, hf_model: nn.Module) -> LlamaLM:
        """Build from a transformers ``...ForCausalLM`` and copy its weights (same names, no renaming)."""
        return load_hf_weights(cls(cls.config_class.from_hf(hf_model.config)), hf_model)
