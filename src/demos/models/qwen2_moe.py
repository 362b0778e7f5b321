"""Qwen1.5-MoE: Qwen2's decoder whose MLP is, in chosen layers, a sparse mixture of experts.

transformers' ``Qwen2MoeForCausalLM`` keeps Qwen2's attention (a bias on q, k, v unless
``qkv_bias=False``; none on o) and its norms, and chooses each layer's MLP from the config: layer
``i`` is sparse (:class:`~demos.layers.moe.SparseMoE`: 60 routed experts, 4 per token, and a
shared expert behind a sigmoid gate in Qwen1.5-MoE-A2.7B [hf_qwen15_moe]) when
``num_experts > 0``, ``(i + 1) % decoder_sparse_step == 0`` and ``i`` is not in
``mlp_only_layers``; otherwise a dense gated MLP of ``intermediate_size``. That choice is data
(:meth:`Qwen2MoeLMConfig.mlp_types`) read by the block's ``make_mlp(config, layer_idx)``.
Our forward returns logits only: the router logits are compared layer by layer, and the balancing
loss is :func:`demos.layers.moe.load_balancing_loss`.

Axes: as in :mod:`demos.models.llama`.

References:
    hf_qwen15_moe  Qwen1.5-MoE-A2.7B's model card and config.json.

Reference implementation:
    transformers==5.23.0, models/qwen2_moe/modeling_qwen2_moe.py::Qwen2MoeDecoderLayer (which MLP),
    ::Qwen2MoeSparseMoeBlock, ::Qwen2MoeAttention; configuration_qwen2_moe.py::Qwen2MoeConfig
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from numbers import Integral
from typing import Any, ClassVar

import torch
from torch import nn

from demos.layers.attention import AttentionConfig
from demos.layers.mlp import GatedMLP
from demos.layers.moe import SparseMoE
from demos.models import check_model_type, fields_from_hf, rope_theta_from_hf
from demos.models.llama import LlamaLMBlock
from demos.models.qwen2 import Qwen2LM, Qwen2LMConfig
from demos.validation import check_positive_int

MLP_TYPES = ("sparse", "dense")  # a layer's MLP: experts (SparseMoE) or one gated MLP


@dataclass(frozen=True)
class Qwen2MoeLMConfig(Qwen2LMConfig):
    """:class:`Qwen2LMConfig` read from a ``Qwen2MoeConfig``: the experts and which layers have them.

    Defaults are transformers' (Qwen1.5-MoE-A2.7B's shape)."""

    model_types: ClassVar[tuple[str, ...]] = ("qwen2_moe",)  # NEW vs Qwen2: Qwen2MoeConfig
    hf_reads: ClassVar[dict[str, str]] = {
        **Qwen2LMConfig.hf_reads,
        "sliding_window": "Qwen2MoeConfig sets it to 0 unless use_sliding_window; read as None "
        "where no layer slides (layer_types)",
    }
    hf_ignores: ClassVar[dict[str, str]] = {
        **Qwen2LMConfig.hf_ignores,
        "router_aux_loss_coef": "weight of the balancing loss in the training loss; our forward "
        "returns logits only (demos.layers.moe.load_balancing_loss computes the loss)",
        "output_router_logits": "an output switch (router logits are compared per layer)",
    }

    num_experts: int = 60  # E, routed experts per sparse layer; 0: every layer dense
    num_experts_per_tok: int = 4  # k
    moe_intermediate_size: int = 1408  # f of one routed expert
    shared_expert_intermediate_size: int = 5632  # f of the shared expert
    decoder_sparse_step: int = 1  # layer i is sparse when (i + 1) % step == 0 ...
    mlp_only_layers: tuple[int, ...] = ()  # ... and i is not listed here
    norm_topk_prob: bool = False  # rescale the top-k weights to sum to one (Mixtral does)
    qkv_bias: bool = True  # NEW vs Qwen2: a switch for the q/k/v bias

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("moe_intermediate_size", "shared_expert_intermediate_size"):
            check_positive_int(name, getattr(self, name))
        check_positive_int("decoder_sparse_step", self.decoder_sparse_step)
        experts = self.num_experts
        if isinstance(experts, bool) or not isinstance(experts, Integral) or experts < 0:
            raise ValueError(f"num_experts ({self.num_experts!r}) must be an integer >= 0")
        if self.num_experts > 0 and not 1 <= self.num_experts_per_tok <= self.num_experts:
            raise ValueError(
                f"num_experts_per_tok ({self.num_experts_per_tok!r}) must lie in "
                f"[1, num_experts = {self.num_experts}]"
            )
        layers = tuple(self.mlp_only_layers)
        if any(
            isinstance(i, bool)
            or not isinstance(i, Integral)
            or not 0 <= i < self.num_hidden_layers
            for i in layers
        ):
            raise ValueError(
                f"mlp_only_layers ({list(layers)}) must hold layer indices in "
                f"[0, num_hidden_layers = {self.num_hidden_layers})"
            )
        object.__setattr__(self, "mlp_only_layers", layers)

    @property
    def mlp_types(self) -> tuple[str, ...]:
        """Each layer's MLP, ``"sparse"`` or ``"dense"``, by transformers' rule."""
        return tuple(
            "sparse"
            if i not in self.mlp_only_layers
            and self.num_experts > 0
            and (i + 1) % self.decoder_sparse_step == 0
            else "dense"
            for i in range(self.num_hidden_layers)
        )

    def attention_config(self, layer_idx: int | None = None) -> AttentionConfig:
        # NEW vs Qwen2: the q/k/v bias follows qkv_bias (still none on o)
        config = super().attention_config(layer_idx)
        return dataclasses.replace(config, qkv_bias=self.qkv_bias)

    @classmethod
    def from_hf(cls, hf_config: Any) -> Qwen2MoeLMConfig:
        """Read a transformers ``Qwen2MoeConfig``."""
        check_model_type(cls, hf_config)
        layer_types = tuple(hf_config.layer_types)
        window = hf_config.sliding_window if "sliding_attention" in layer_types else None
        return fields_from_hf(
            cls,
            hf_config,
            rope_theta=rope_theta_from_hf(hf_config),
            layer_types=layer_types,
            sliding_window=window,
            mlp_only_layers=tuple(hf_config.mlp_only_layers),
        )


class Qwen2MoeLMBlock(LlamaLMBlock):
    """Llama's pre-norm block whose MLP is chosen per layer (``config.mlp_types[layer_idx]``)."""

    def make_mlp(self, config: Qwen2MoeLMConfig, layer_idx: int) -> nn.Module:
        """Hook: :class:`SparseMoE` in a sparse layer, else the dense gated MLP."""
        if config.mlp_types[layer_idx] == "dense":  # NEW vs Llama: the MLP is chosen per layer
            return GatedMLP(
                config.hidden_size, config.intermediate_size, hidden_act=config.hidden_act
            )
        return SparseMoE(
            config.hidden_size,
            config.num_experts,
            config.num_experts_per_tok,
            config.moe_intermediate_size,
            config.shared_expert_intermediate_size,
            config.norm_topk_prob,
            config.hidden_act,
        )


class Qwen2MoeLM(Qwen2LM):
    """:class:`~demos.models.qwen2.Qwen2LM` with :class:`Qwen2MoeLMBlock`: experts in the layers the
    config names. Forward returns ``(b, t, v)`` logits, as every model here."""

    config_class = Qwen2MoeLMConfig  # NEW vs Qwen2: reads Qwen2MoeConfig
    block_class = Qwen2MoeLMBlock  # NEW vs Qwen2: the MLP chosen per layer


def forward_with_router_logits(
    model: Qwen2MoeLM, input_ids: torch.Tensor, **forward_kwargs: Any
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``(logits (b, t, v), router_logits)`` of one forward pass of ``model``: each sparse layer's
    router logits ``(b * t, e)`` in layer order, caught by hooks on the routers (removed
    afterwards). The list is what transformers returns with ``output_router_logits=True`` and what
    :func:`demos.layers.moe.load_balancing_loss` takes; gradients flow if the caller allows them."""
    captured: list[torch.Tensor] = []
    hooks = [
        block.mlp.gate.register_forward_hook(lambda m, args, out: captured.append(out))
        for block in model.blocks
        if isinstance(block.mlp, SparseMoE)
    ]
    try:
        logits = model(input_ids, **forward_kwargs)
    finally:
        for hook in hooks:
            hook.remove()
    return logits, captured
