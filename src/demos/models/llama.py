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

from demos.layers.attention import AttentionConfig, GroupedQueryAttention
from demos.layers.kv_cache import KVCache
from demos.layers.mlp import GatedMLP
from demos.layers.norms import RMSNorm
from demos.layers.rope import rope_cos_sin
from demos.validation import check_positive_int, check_rope_theta, check_token_ids
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

    def __post_init__(self) -> None:
        for name in ("vocab_size", "intermediate_size", "num_hidden_layers"):
            check_positive_int(name, getattr(self, name))
        if not self.rms_norm_eps > 0:
            raise ValueError(f"rms_norm_eps ({self.rms_norm_eps!r}) must be positive")
        check_rope_theta(self.rope_theta)  # else it would fail only at the first forward
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
        rope = getattr(hf_config, "rope_parameters", None) or {}
        rope_type = rope.get("rope_type", "default")
        if rope_type != "default":
            raise ValueError(f"rope_type {rope_type!r} is not supported here: only 'default' RoPE")
        if getattr(hf_config, "hidden_act", "silu") != "silu":
            raise ValueError(
                f"hidden_act ({hf_config.hidden_act!r}) must be 'silu' for a SwiGLU GatedMLP"
            )
        return cls(
            vocab_size=hf_config.vocab_size,
            hidden_size=hf_config.hidden_size,
            intermediate_size=hf_config.intermediate_size,
            num_hidden_layers=hf_config.num_hidden_layers,
            num_attention_heads=hf_config.num_attention_heads,
            num_key_value_heads=getattr(hf_config, "num_key_value_heads", None),
            head_dim=getattr(hf_config, "head_dim", None),
            rms_norm_eps=hf_config.rms_norm_eps,
            rope_theta=rope.get("rope_theta", getattr(hf_config, "rope_theta", 10000.0)),
            attention_bias=getattr(hf_config, "attention_bias", False),
            mlp_bias=getattr(hf_config, "mlp_bias", False),
            tie_word_embeddings=getattr(hf_config, "tie_word_embeddings", False),
            sliding_window=getattr(hf_config, "sliding_window", None),
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
    ) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), position_embeddings, cache)  # (b, t, c)
        return x + self.mlp(self.post_attention_layernorm(x))  # (b, t, c)


class LlamaLMBackbone(nn.Module):
    """Embedding, the stack of blocks, and the final norm (transformers' ``LlamaModel``)."""

    def __init__(self, config: LlamaLMConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(LlamaLMBlock(config) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, input_ids: torch.Tensor, caches: list[KVCache] | None = None) -> torch.Tensor:
        if caches is not None and len(caches) != len(self.layers):
            raise ValueError(
                f"caches must hold one KVCache per layer ({len(self.layers)}), got {len(caches)}"
            )
        past = 0 if caches is None else len(caches[0])
        x = self.embed_tokens(input_ids)  # (b, t, c)
        positions = torch.arange(past, past + input_ids.shape[1], device=input_ids.device)  # (t,)
        cos_sin = rope_cos_sin(
            positions, self.config.head_dim, self.config.rope_theta, dtype=x.dtype
        )  # 2 x (t, d)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos_sin, None if caches is None else caches[i])  # (b, t, c)
        return self.norm(x)  # (b, t, c)


class LlamaLM(nn.Module):
    """Decoder plus the language-model head: token ids in, next-token logits out."""

    def __init__(self, config: LlamaLMConfig) -> None:
        super().__init__()
        self.config = config
        self.model = LlamaLMBackbone(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def new_cache(self) -> list[KVCache]:
        """One empty :class:`KVCache` per layer, for token-by-token decoding."""
        return [KVCache() for _ in self.model.layers]

    def forward(self, input_ids: torch.Tensor, caches: list[KVCache] | None = None) -> torch.Tensor:
        """Args:
            input_ids: ``(b, t)`` token ids, each in ``[0, vocab_size)``.
            caches: from :meth:`new_cache`; the new tokens continue what the caches hold.

        Returns:
            ``(b, t, v)`` logits for the token after each position.
        """
        check_token_ids(input_ids, self.config.vocab_size)
        return self.lm_head(self.model(input_ids, caches))  # (b, t, v)

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        """Greedy decoding with a KV cache: the prompt once, then one token per step.

        Returns ``(b, t + max_new_tokens)``: the prompt followed by the generated tokens.
        """
        check_positive_int("max_new_tokens", max_new_tokens)
        caches = self.new_cache()
        logits = self(input_ids, caches)  # (b, t, v): prefill fills every layer's cache
        out = [input_ids]
        for step in range(max_new_tokens):
            next_id = logits[:, -1].argmax(dim=-1, keepdim=True)  # (b, 1)
            out.append(next_id)
            if step + 1 < max_new_tokens:
                logits = self(next_id, caches)  # (b, 1, v): attends to everything cached
        return torch.cat(out, dim=1)

    @classmethod
    def from_hf(cls, hf_model: nn.Module) -> LlamaLM:
        """Build from a transformers ``LlamaForCausalLM`` and copy its weights (same names, no renaming)."""
        return load_hf_weights(cls(LlamaLMConfig.from_hf(hf_model.config)), hf_model)
