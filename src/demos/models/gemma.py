"""Gemma: the Llama decoder with four small changes that all matter for equal outputs.

Gemma [gemmateam2024gemma] keeps Llama's pre-norm block, RoPE and gated MLP, and changes:
(1) the MLP's gate uses GELU (tanh approximation) instead of SiLU: GeGLU [shazeer2020glu];
(2) RMSNorm scales by ``1 + w`` and multiplies before casting back (:class:`GemmaRMSNorm`);
(3) the embeddings are multiplied by ``sqrt(c)``, a normaliser rounded to the weights' dtype;
(4) ``head_dim`` (256) is not ``c / h``, the 2B uses one key/value head (multi-query attention),
and the output head is the embedding matrix (tied). Attention is Llama's: head_dim and MQA are
settings of :class:`~demos.layers.attention.GroupedQueryAttention`. ``GemmaLM`` subclasses
``LlamaLM`` and marks each change ``# NEW vs Llama``.

Axes:
    b  batch
    t  new tokens in this call
    c  hidden size (2B: 2048, 7B: 3072)
    h  query heads; g key/value heads (2B: g = 1); d head dimension (256 in both)
    f  MLP width
    v  vocabulary size (256,000)

References:
    gemmateam2024gemma  Gemma: Open Models Based on Gemini Research and Technology, Section 2
                        (architecture) and Table 1.
    shazeer2020glu      GLU Variants Improve Transformer (GEGLU).
    hf_gemma_configs    config.json of google/gemma-2b and google/gemma-7b.

Reference implementation:
    transformers==5.23.0, models/gemma/modeling_gemma.py::GemmaTextScaledWordEmbedding,
    ::GemmaRMSNorm, ::GemmaMLP, ::GemmaDecoderLayer, ::GemmaModel, ::GemmaForCausalLM
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from demos.layers.norms import GemmaRMSNorm
from demos.models import check_model_type, fields_from_hf, rope_theta_from_hf
from demos.models.llama import LlamaLM, LlamaLMBlock, LlamaLMConfig


def embedding_normalizer(hidden_size: int, dtype: torch.dtype) -> torch.Tensor:
    """``sqrt(c)`` as transformers multiplies it: rounded to float32, then to the weights' dtype.

    In bfloat16 ``sqrt(3072) = 55.4256`` becomes ``55.5`` and ``sqrt(2048) = 45.2548`` becomes
    ``45.25``; the checkpoints were trained with the rounded value. float64 weights get the float64
    root (transformers' float32 buffer would lose precision there).
    """
    work = torch.float64 if dtype == torch.float64 else torch.float32
    return torch.tensor(math.sqrt(hidden_size), dtype=work).to(dtype)  # 0-d


class GemmaLMScaledEmbedding(nn.Embedding):
    """``weight[ids] * sqrt(c)``, the product in the weights' dtype (HF name: ``embed_tokens``)."""

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        normalizer = embedding_normalizer(self.embedding_dim, self.weight.dtype)
        return super().forward(input_ids) * normalizer.to(self.weight.device)  # (b, t, c)


@dataclass(frozen=True)
class GemmaLMConfig(LlamaLMConfig):
    """Llama's fields plus the two Gemma reads, with transformers' ``GemmaConfig`` names."""

    model_types: ClassVar[tuple[str, ...]] = ("gemma",)  # NEW vs Llama: GemmaConfig
    hf_reads: ClassVar[dict[str, str]] = {
        "rope_parameters": "rope_theta; rope types other than 'default' refused",
        "use_bidirectional_attention": "refused when true (the encoder variant): causal only",
    }
    hf_ignores: ClassVar[dict[str, str]] = {
        **LlamaLMConfig.hf_ignores,
        "hidden_activation": "a key of Gemma's config.json that 5.23's modeling_gemma does not read "
        "(it reads hidden_act; GemmaConfig turns a legacy 'gelu' there into the tanh GELU)",
    }

    hidden_act: str = "gelu_pytorch_tanh"  # NEW vs Llama: the gate's activation (GeGLU)
    tie_word_embeddings: bool = True  # NEW vs Llama: the head is the embedding matrix
    pad_token_id: int | None = None  # the embedding row that gets no gradient (HF's padding_idx)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(
                f"pad_token_id ({self.pad_token_id!r}) must lie in [0, vocab_size = {self.vocab_size})"
            )

    @classmethod
    def from_hf(cls, hf_config: Any) -> GemmaLMConfig:
        """Read a transformers ``GemmaConfig``; refuse the bidirectional (encoder) variant."""
        check_model_type(cls, hf_config)  # first: the checks below read this type's fields
        if getattr(hf_config, "use_bidirectional_attention", None):
            raise ValueError("use_bidirectional_attention=True is not supported here: causal only")
        return fields_from_hf(cls, hf_config, rope_theta=rope_theta_from_hf(hf_config))


class GemmaLMBlock(LlamaLMBlock):
    """Llama's pre-norm block with ``(1 + w)`` RMSNorms; the MLP is Llama's ``GatedMLP`` with the
    config's GELU gate (GeGLU)."""

    def make_norm(self, config: GemmaLMConfig) -> nn.Module:
        return GemmaRMSNorm(config.hidden_size, config.rms_norm_eps)  # NEW vs Llama: 1 + w


class GemmaLM(LlamaLM):
    """:class:`~demos.models.llama.LlamaLM` with Gemma's block, final norm and scaled embedding.

    The loop over blocks, RoPE, the KV cache, ``generate`` and ``from_hf`` are Llama's.
    """

    config_class = GemmaLMConfig  # NEW vs Llama: GemmaConfig's fields
    block_class = GemmaLMBlock  # NEW vs Llama: (1 + w) norms

    def make_embedding(self, config: GemmaLMConfig) -> nn.Module:
        # NEW vs Llama: the embedding is multiplied by sqrt(c) in the weights' dtype
        return GemmaLMScaledEmbedding(config.vocab_size, config.hidden_size, config.pad_token_id)

    def make_final_norm(self, config: GemmaLMConfig) -> nn.Module:
        return GemmaRMSNorm(config.hidden_size, config.rms_norm_eps)  # NEW vs Llama: 1 + w
