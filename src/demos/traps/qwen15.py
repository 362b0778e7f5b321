"""The Qwen1.5 chapter's traps, in the sparse MoE layer: Mixtral's router on Qwen's config (a softmax
over the top-k logits, which renormalises the weights), the shared expert without its sigmoid gate,
and the experts' fused ``gate_up_proj`` read as up, then gate.

Each is a natural port from a neighbouring model: Mixtral's paper writes its router as a softmax of
the top-k logits, DeepSeekMoE-style shared experts have no gate, and some checkpoints store up before
gate. Measured against transformers' ``Qwen2MoeForCausalLM`` (transformers==5.23.0), the catalogue's
row ``qwen1.5-moe-like`` (every layer sparse, 2 of 4 experts, ``norm_topk_prob=False``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from demos.catalog import ROWS
from demos.layers.moe import MoEExperts, SparseMoE
from demos.models.qwen2_moe import Qwen2MoeLM
from demos.traps import Measured, Trap
from demos.traps.tiny import measure_models, seeded, token_ids


class SoftmaxAfterTopK(SparseMoE):
    """The wrong router: the softmax over the k kept logits (Mixtral's formula)."""

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = self.gate(x.reshape(-1, x.shape[-1]))  # (n, e)
        top, experts = torch.topk(logits, self.top_k, dim=-1)  # the wrong order: top-k first
        return logits, F.softmax(top, dim=-1, dtype=torch.float32).to(logits.dtype), experts


class UngatedSharedExpert(SparseMoE):
    """The wrong combine: the shared expert added without sigmoid(shared_expert_gate(x))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        _, weights, experts = self.route(flat)
        out = self.experts(flat, experts, weights) + self.shared_expert(flat)  # the wrong line
        return out.reshape(x.shape)


class UpThenGate(MoEExperts):
    """The wrong split of gate_up_proj: the first f rows read as the up projection."""

    def expert(self, i: int, x: torch.Tensor) -> torch.Tensor:
        up, gate = F.linear(x, self.gate_up_proj[i]).chunk(2, dim=-1)  # the wrong order
        return F.linear(F.silu(gate) * up, self.down_proj[i])


def _swap_moe(right: Qwen2MoeLM, moe_class: type, experts_class: type = MoEExperts) -> Qwen2MoeLM:
    """A copy of ``right`` whose sparse layers are ``moe_class`` with ``experts_class``, same weights."""
    wrong = Qwen2MoeLM(right.config)
    config = right.config
    for block in wrong.blocks:
        if isinstance(block.mlp, SparseMoE):
            block.mlp = moe_class(
                config.hidden_size,
                config.num_experts,
                config.num_experts_per_tok,
                config.moe_intermediate_size,
                config.shared_expert_intermediate_size,
                config.norm_topk_prob,
            )
            block.mlp.experts.__class__ = experts_class
    wrong.load_state_dict(right.state_dict())
    return wrong.eval()


def _measure(make_wrong: Callable[[Qwen2MoeLM], Qwen2MoeLM]) -> Measured:
    with seeded(0):
        reference = ROWS["qwen1.5-moe-like"].reference()
        ids = token_ids(reference.config.vocab_size)
    right = Qwen2MoeLM.from_hf(reference).eval()
    quantity = "max |logits - Qwen2MoeForCausalLM's|, 2 sparse layers, 12 tokens, fp32"
    return measure_models(reference, right, make_wrong(right), ids, quantity)


def measure_softmax_after_top_k() -> Measured:
    """Ours (right) and ours with the softmax over the top-k logits (wrong), same weights."""
    return _measure(lambda right: _swap_moe(right, SoftmaxAfterTopK))


def measure_ungated_shared_expert() -> Measured:
    """Ours (right) and ours adding the shared expert ungated (wrong), same weights."""
    return _measure(lambda right: _swap_moe(right, UngatedSharedExpert))


def measure_up_then_gate() -> Measured:
    """Ours (right) and ours splitting gate_up_proj as up, then gate (wrong), same weights."""
    return _measure(lambda right: _swap_moe(right, SparseMoE, UpThenGate))


TRAPS = [
    Trap(
        chapter="qwen15",
        title="Softmax after the top-k (Mixtral's router on Qwen's config)",
        wrong="w, i = topk(logits, k); w = softmax(w)  # sums to 1",
        right="w, i = topk(softmax(logits), k)  # norm_topk_prob=False: kept",
        shows="every routed expert's weight, so every sparse layer's output",
        measure=measure_softmax_after_top_k,
    ),
    Trap(
        chapter="qwen15",
        title="The shared expert without its sigmoid gate",
        wrong="out = routed + shared_expert(x)",
        right="out = routed + sigmoid(shared_expert_gate(x)) * shared_expert(x)",
        shows="every token's shared-expert term, in every sparse layer",
        measure=measure_ungated_shared_expert,
    ),
    Trap(
        chapter="qwen15",
        title="The experts' fused gate_up_proj split as up, then gate",
        wrong="up, gate = linear(x, gate_up_proj[i]).chunk(2, dim=-1)",
        right="gate, up = linear(x, gate_up_proj[i]).chunk(2, dim=-1)",
        shows="every routed expert's output (the shared expert is right)",
        measure=measure_up_then_gate,
    ),
]
