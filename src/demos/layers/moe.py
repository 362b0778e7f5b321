"""Total against active parameters of a mixture-of-experts (MoE) decoder, counted on the meta device.

In a sparse MoE layer (Mixtral's), each token's MLP is computed by only ``k`` of the ``E`` experts that a
router picks, so a forward pass for one token touches every parameter *except* ``E - k`` experts per layer.
That is the "active" count model cards quote next to the total, e.g. 141B total and 39B active for
Mixtral-8x22B. Embeddings and the output head count in full in both numbers, as the model cards do.

Reference implementation: transformers==5.23.0, models/mixtral/modeling_mixtral.py (MixtralExperts holds
each layer's experts as two fused tensors whose first axis is the expert).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class MoECounts:
    total: int  # every parameter of the model
    active: int  # parameters one token's forward pass uses: total minus the unused experts
    per_expert: int  # parameters of one expert in one layer
    experts: int  # E, experts per layer
    top_k: int  # k, experts per token
    layers: int  # MoE layers

    def __str__(self) -> str:
        return (
            f"{self.total / 1e9:.2f}B total, {self.active / 1e9:.2f}B active "
            f"({self.top_k} of {self.experts} experts per token in each of {self.layers} layers; "
            f"one expert {self.per_expert / 1e6:.1f}M)"
        )


def moe_parameter_counts(config: Any) -> MoECounts:
    """Count total and active parameters of the causal LM that ``config`` (e.g. ``MixtralConfig``) builds.

    The model is built on the meta device, so no memory is allocated and nothing is downloaded. An expert's
    parameters are the slices ``[i]`` of the tensors under ``.experts.``; each layer keeps
    ``num_experts_per_tok`` of its ``num_local_experts``.
    """
    from transformers import AutoModelForCausalLM

    experts = getattr(config, "num_local_experts", None)
    top_k = getattr(config, "num_experts_per_tok", None)
    if not experts or not top_k:
        raise ValueError(
            f"config {type(config).__name__} has no num_local_experts/num_experts_per_tok: not an MoE config"
        )
    if not 1 <= top_k <= experts:
        raise ValueError(
            f"num_experts_per_tok ({top_k}) must be in [1, num_local_experts={experts}]"
        )
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    expert_params = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
    layers = config.num_hidden_layers
    per_expert = expert_params // (experts * layers)
    if per_expert * experts * layers != expert_params:
        raise ValueError(
            f"expert parameters ({expert_params}) do not split into {experts} x {layers}"
        )
    active = total - (experts - top_k) * per_expert * layers
    return MoECounts(total, active, per_expert, experts, top_k, layers)
