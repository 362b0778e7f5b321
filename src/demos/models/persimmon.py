"""A tiny Persimmon decoder: GPT-NeoX's fused attention with a LayerNorm on each query and key head,
and a squared-ReLU MLP.

Persimmon-8B [adept2023persimmon] is, in transformers' class, GPT-NeoX's sequential block
(``use_parallel_residual=False``: attention, then the MLP, each after its own LayerNorm) with two
changes: (1) after q, k and v are cut from the fused ``query_key_value`` output, each query head
and each key head goes through a LayerNorm over its ``d`` channels (``q_layernorm``,
``k_layernorm``: one weight and bias of size ``d`` shared by all heads) before RoPE, which bounds
the attention logits [dehghani2023vit22b]; (2) the MLP's activation is ``relu(x)**2``
[so2021primer] instead of GELU. Half of each head is rotated (``partial_rotary_factor=0.5``).
``PersimmonLM`` subclasses ``GPTNeoXLM`` and restates only what differs (``# NEW vs GPT-NeoX``).

Axes: as in :mod:`demos.models.gpt_neox` (``h`` heads, each with its own key and value; ``r``
rotated channels of a head, ``int(d * partial_rotary_factor)``).

References:
    adept2023persimmon  Releasing Persimmon-8B (Adept blog): the architecture changes it lists.
    so2021primer        Primer, Section 3: squared ReLU.
    dehghani2023vit22b  Scaling Vision Transformers to 22B Parameters, Section 2: QK LayerNorm.

Reference implementation:
    transformers==5.23.0, models/persimmon/modeling_persimmon.py::PersimmonAttention
    (``_split_heads``, ``q_layernorm``, ``k_layernorm``), ::PersimmonMLP, ::PersimmonDecoderLayer,
    ::PersimmonModel, ::PersimmonForCausalLM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from demos.layers.attention import rotate_cache_attend
from demos.layers.fused_qkv import split_fused_qkv
from demos.layers.mlp import SquaredReLUMLP
from demos.models.gpt_neox import GPTNeoXLM, GPTNeoXLMAttention, GPTNeoXLMConfig
from demos.models.llama import LlamaLMBlock
from demos.weights import load_hf_weights


@dataclass(frozen=True)
class PersimmonLMConfig(GPTNeoXLMConfig):
    """Shape of a Persimmon model, with transformers' ``PersimmonConfig`` field names."""

    model_types: ClassVar[tuple[str, ...]] = ("persimmon",)  # NEW vs GPT-NeoX: PersimmonConfig
    # hf_reads, hf_ignores: GPT-NeoX's (PersimmonConfig's one new field, qk_layernorm, is a field)

    hidden_act: str = "relu2"  # NEW vs GPT-NeoX: squared ReLU, the only activation accepted
    partial_rotary_factor: float = 0.5  # NEW vs GPT-NeoX (Pythia: 0.25)
    use_parallel_residual: bool = False  # NEW vs GPT-NeoX: always the sequential block
    qk_layernorm: bool = True  # NEW vs GPT-NeoX: LayerNorm on each query and key head

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.use_parallel_residual:
            raise ValueError("use_parallel_residual (True): Persimmon's block is sequential")
        if not isinstance(self.qk_layernorm, bool):
            raise ValueError(f"qk_layernorm ({self.qk_layernorm!r}) must be True or False")

    def check_hidden_act(self) -> None:
        if self.hidden_act != "relu2":
            raise ValueError(f"hidden_act ({self.hidden_act!r}) must be 'relu2' (squared ReLU)")


class PersimmonLMAttention(GPTNeoXLMAttention):
    """GPT-NeoX's fused multi-head attention with a LayerNorm on every query and key head.

    NEW vs GPT-NeoX: ``q_layernorm`` and ``k_layernorm`` (``nn.LayerNorm(d)``, shared by the heads)
    between the split and RoPE.
    """

    def __init__(self, config: PersimmonLMConfig) -> None:
        super().__init__(config)
        self.qk_layernorm = config.qk_layernorm
        if self.qk_layernorm:  # NEW vs GPT-NeoX
            d, eps = config.head_dim, config.layer_norm_eps
            self.q_layernorm = nn.LayerNorm(d, eps=eps)
            self.k_layernorm = nn.LayerNorm(d, eps=eps)

    def forward(self, x: torch.Tensor, *attention_args: Any) -> torch.Tensor:
        """As :meth:`FusedQKVAttention.forward <demos.layers.fused_qkv.FusedQKVAttention.forward>`:
        ``x (b, t, c) -> (b, t, c)``; ``attention_args``: ``(position_embeddings, cache,
        attention_mask)``, the tables ``(cos, sin)`` each ``(t, r)`` or ``(b, t, r)``."""
        if x.dim() != 3 or x.shape[-1] != self.hidden_size:
            raise ValueError(f"x must have shape (b, t, {self.hidden_size}), got {tuple(x.shape)}")
        h, d = self.num_heads, self.head_dim
        q, k, v = split_fused_qkv(self.query_key_value(x), h, h, d, "gpt_neox")  # (b, h, t, d)
        if self.qk_layernorm:  # NEW vs GPT-NeoX: normalise each head's query and key, over d
            # on the (b, t, h, d) view, as transformers does: the same order of the weights' gradient sums
            q = self.q_layernorm(q.transpose(1, 2)).transpose(1, 2)  # (b, h, t, d)
            k = self.k_layernorm(k.transpose(1, 2)).transpose(1, 2)  # (b, h, t, d)
        context = rotate_cache_attend(q, k, v, *attention_args)
        return self.dense(context)  # (b, t, h * d) -> (b, t, c)

    @classmethod
    def from_hf(cls, hf_attention: nn.Module) -> PersimmonLMAttention:
        """Build from a transformers ``PersimmonAttention`` and copy its weights."""
        return load_hf_weights(cls(PersimmonLMConfig.from_hf(hf_attention.config)), hf_attention)


class PersimmonLMBlock(LlamaLMBlock):
    """Llama's pre-norm block and forward (``x + attn(ln1(x))``, then ``x + mlp(ln2(x))``) and names
    (``input_layernorm self_attn post_attention_layernorm mlp``), with Persimmon's parts."""

    def make_attention(self, config: PersimmonLMConfig, layer_idx: int) -> nn.Module:
        return PersimmonLMAttention(config)  # NEW vs Llama: fused QKV + QK LayerNorm

    def make_mlp(self, config: PersimmonLMConfig, layer_idx: int) -> nn.Module:
        return SquaredReLUMLP(config.hidden_size, config.intermediate_size)  # NEW: relu(x)**2

    def make_norm(self, config: PersimmonLMConfig) -> nn.Module:
        return nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # NEW vs Llama


class PersimmonLM(GPTNeoXLM):
    """:class:`~demos.models.gpt_neox.GPTNeoXLM` (partial RoPE, final LayerNorm) with Persimmon's
    block and transformers' names ``model.embed_tokens``, ``model.layers``,
    ``model.final_layernorm``, ``lm_head``."""

    config_class = PersimmonLMConfig  # NEW vs GPT-NeoX: PersimmonConfig's fields
    block_class = PersimmonLMBlock  # NEW vs GPT-NeoX: QK LayerNorm, squared ReLU
    module_names = ("model", "embed_tokens", "layers", "final_layernorm")  # NEW vs GPT-NeoX
