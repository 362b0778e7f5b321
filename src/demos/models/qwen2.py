"""Qwen2's dense decoder (Qwen1.5, and the layer of first-generation Qwen): Llama with biases on q, k, v.

transformers' ``Qwen2ForCausalLM`` is Mistral's decoder with two changes: (1) the query, key and
value projections have a bias and the output projection has none [bai2023qwen]; (2) a sliding window
applies only to the layers ``config.layer_types`` marks ``"sliding_attention"`` (from
``use_sliding_window`` and ``max_window_layers``: layers ``i >= max_window_layers`` slide), so a
window in the config that no layer uses changes nothing. ``Qwen2LM`` subclasses ``MistralLM`` (a
rolling cache in the layers that slide) and states only these (``# NEW vs Llama``).

First-generation Qwen (2023) ships its own modelling code, which this book never runs; its layer is
this one (a fused ``c_attn`` with a bias, ``c_proj`` without, RMSNorm, SwiGLU). What it adds are two
switches read at inference, kept here under its config's names and off by default (``Qwen2Config``
has neither): ``use_dynamic_ntk`` (RoPE's base raised with the sequence length) and ``use_logn_attn``
(queries scaled by ``log_L`` of their position), both relative to the training length
``seq_length`` (:mod:`demos.layers.long_context`).

Axes: as in :mod:`demos.models.llama`.

References:
    bai2023qwen      Qwen Technical Report, Section 2.3.1 (architecture: bias on the QKV layer),
                     Section 2.3.2 (dynamic NTK, LogN-Scaling, layer-wise windows).
    hf_qwen15_configs  config.json of the Qwen1.5 checkpoints.
    qwen2023modeling  modeling_qwen.py of Qwen/Qwen-7B (use_dynamic_ntk, use_logn_attn, seq_length).

Reference implementation:
    transformers==5.23.0, models/qwen2/modeling_qwen2.py::Qwen2Attention (``bias=True`` on q/k/v,
    ``bias=False`` on o; ``sliding_window`` if ``config.layer_types[layer_idx]`` slides),
    models/qwen2/configuration_qwen2.py::Qwen2Config.__post_init__ (``layer_types``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from demos.layers.attention import AttentionConfig
from demos.layers.long_context import LogNAttention, dynamic_ntk_inv_freq
from demos.layers.rope import rope_cos_sin
from demos.models import check_model_type, fields_from_hf, rope_theta_from_hf
from demos.models.llama import LlamaLMBlock, LlamaLMConfig
from demos.models.mistral import MistralLM
from demos.validation import check_positive_int


@dataclass(frozen=True)
class Qwen2LMConfig(LlamaLMConfig):
    """:class:`LlamaLMConfig` read from a ``Qwen2Config``: q/k/v biases, a window per layer."""

    model_types: ClassVar[tuple[str, ...]] = ("qwen2",)  # NEW vs Llama: Qwen2Config
    hf_reads: ClassVar[dict[str, str]] = {
        "rope_parameters": "rope_theta; rope types other than 'default' refused",
        "use_sliding_window": "through sliding_window (None unless set) and layer_types, which "
        "Qwen2Config.__post_init__ derives from it",
        "max_window_layers": "through layer_types (layers i >= max_window_layers slide)",
        "head_dim": "not a Qwen2Config field, but Qwen2Attention reads getattr(config, 'head_dim')",
    }

    # NEW vs Llama: first-generation Qwen's inference-time switches, under its QWenConfig names.
    # Qwen2Config has none of them, so from_hf leaves them off; set them with dataclasses.replace.
    seq_length: int | None = None  # L, the training length both switches refer to (Qwen: 2048)
    use_dynamic_ntk: bool = False  # RoPE base * alpha ** (d / (d - 2)), alpha from the length
    use_logn_attn: bool = False  # queries times log_L(position + 1) past L

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("use_dynamic_ntk", "use_logn_attn"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} ({getattr(self, name)!r}) must be a bool")
        if self.use_dynamic_ntk or self.use_logn_attn:
            if self.seq_length is None:
                raise ValueError("use_dynamic_ntk and use_logn_attn need seq_length (L)")
            check_positive_int("seq_length", self.seq_length)
            if self.seq_length < 2:
                raise ValueError(f"seq_length ({self.seq_length}) must be >= 2")

    def attention_config(self, layer_idx: int | None = None) -> AttentionConfig:
        # NEW vs Llama: a bias on q, k and v, none on o (Qwen2Config has no switch for either)
        config = super().attention_config(layer_idx)
        return dataclasses.replace(config, qkv_bias=True, o_bias=False)

    @classmethod
    def from_hf(cls, hf_config: Any) -> Qwen2LMConfig:
        """Read a transformers ``Qwen2Config``; which layers slide is its ``layer_types``."""
        check_model_type(cls, hf_config)  # first: the checks below read this type's fields
        layer_types = tuple(hf_config.layer_types)  # NEW vs Llama: the window is per layer
        return fields_from_hf(
            cls, hf_config, rope_theta=rope_theta_from_hf(hf_config), layer_types=layer_types
        )


class Qwen2LMBlock(LlamaLMBlock):
    """Llama's block; its attention LogN-scales the queries when ``config.use_logn_attn``."""

    def make_attention(self, config: Qwen2LMConfig, layer_idx: int) -> nn.Module:
        if not config.use_logn_attn:
            return super().make_attention(config, layer_idx)
        return LogNAttention(config.attention_config(layer_idx), config.seq_length)  # NEW vs Llama


class Qwen2LM(MistralLM):
    """:class:`~demos.models.mistral.MistralLM` (a rolling cache in each sliding layer) reading a
    ``Qwen2Config``; the blocks are Llama's, with the q/k/v biases of :class:`Qwen2LMConfig`, and
    first-generation Qwen's dynamic NTK and LogN when its config switches them on."""

    config_class = Qwen2LMConfig  # NEW vs Llama: Qwen2Config, q/k/v bias, layer_types
    block_class = Qwen2LMBlock  # NEW vs Llama: LogN attention when use_logn_attn

    def position_embeddings(
        self, positions: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """RoPE's tables; with ``use_dynamic_ntk``, from the frequencies for a sequence of
        ``max(positions) + 1`` tokens (:func:`demos.layers.long_context.dynamic_ntk_inv_freq`), as
        transformers' dynamic RoPE counts it. (Qwen's own code keeps the prompt's scale while it
        decodes with a cache; a full forward pass is the same in all three.)"""
        if not self.config.use_dynamic_ntk:
            return super().position_embeddings(positions, dtype)
        d, base = self.config.head_dim, self.config.rope_theta
        seq_len = int(positions.max()) + 1  # NEW vs Llama: the base depends on the length
        inv_freq = dynamic_ntk_inv_freq(d, base, seq_len, self.config.seq_length)  # (d/2,)
        return rope_cos_sin(positions, d, base, dtype, inv_freq=inv_freq)
