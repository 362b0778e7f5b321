"""Mixture of experts (MoE): a router sends each token to ``k`` of ``E`` expert MLPs, and a model
counts "total" parameters (every expert) against "active" ones (the experts one token uses).

A sparse MoE layer [shazeer2017moe] replaces one MLP by ``E`` smaller ones. A linear router scores
every expert per token, a softmax turns the scores into probabilities, the ``k`` largest are kept
(Qwen1.5-MoE keeps them as they are, ``norm_topk_prob=False``; Mixtral rescales them to sum to one
[jiang2024mixtral]) and weight the chosen experts' outputs. Qwen1.5-MoE adds a *shared expert*, a
wider MLP every token passes through, scaled by a sigmoid gate of its own [hf_qwen15_moe]. Training
adds Switch Transformer's balancing loss [fedus2022switch], smallest when the experts share the
tokens evenly. Embeddings and the output head count in full in both parameter counts, as the model
cards do (Mixtral-8x22B: 141B total, 39B active).

Axes:
    n  tokens (batch and sequence flattened)
    c  hidden size
    e  experts (``E``)
    k  experts per token (top-k)
    f  width of one expert's MLP

References:
    shazeer2017moe    Outrageously Large Neural Networks, Section 2.1 (top-k gating).
    fedus2022switch   Switch Transformers, Eqs. (4)-(6) (the auxiliary load-balancing loss).
    jiang2024mixtral  Mixtral of Experts, Section 2.1 (softmax over the top-k logits).
    hf_qwen15_moe     Qwen1.5-MoE-A2.7B's model card and config.json.

Reference implementation: transformers==5.23.0,
    models/qwen2_moe/modeling_qwen2_moe.py::Qwen2MoeTopKRouter, ::Qwen2MoeExperts (the eager loop),
    ::Qwen2MoeSparseMoeBlock, ::load_balancing_loss_func;
    models/mixtral/modeling_mixtral.py::MixtralSparseMoeBlock (no shared expert, renormalised).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from demos.layers.mlp import GATE_ACTIVATIONS, GatedMLP
from demos.validation import check_floating, check_positive_int


def route_top_k(
    router_logits: torch.Tensor, top_k: int, norm_topk_prob: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The router's choice: each token's ``k`` most probable experts and their weights.

    Args:
        router_logits: ``(n, e)`` scores, any float dtype.
        top_k: ``k``, in ``[1, e]``.
        norm_topk_prob: rescale the ``k`` kept probabilities to sum to one per token (Mixtral;
            Qwen1.5-MoE's released config: ``False``).

    Returns:
        ``(weights, experts)``: ``(n, k)`` weights in ``router_logits``' dtype (the softmax runs in
        float32, or float64 for float64 logits) and ``(n, k)`` expert indices, most probable first.
        Ties between equal probabilities go to ``torch.topk``'s choice, as in transformers.

    ``ValueError`` for a ``top_k`` outside ``[1, e]``.
    """
    e = router_logits.shape[-1]
    if isinstance(top_k, bool) or not isinstance(top_k, Integral) or not 1 <= top_k <= e:
        raise ValueError(f"top_k ({top_k!r}) must be an integer in [1, num_experts = {e}]")
    upcast = torch.float64 if router_logits.dtype == torch.float64 else torch.float32
    probs = F.softmax(router_logits, dim=-1, dtype=upcast)  # (n, e): over ALL experts first
    weights, experts = torch.topk(probs, top_k, dim=-1)  # (n, k), (n, k)
    if norm_topk_prob:
        weights = weights / weights.sum(dim=-1, keepdim=True)  # (n, k): sums to 1 per token
    return weights.to(router_logits.dtype), experts


class MoEExperts(nn.Module):
    """``E`` gated MLPs held as two tensors whose first axis is the expert (transformers' layout):
    ``gate_up_proj (e, 2f, c)`` (the gate's ``f`` rows, then the up projection's) and
    ``down_proj (e, c, f)``. Expert ``i`` computes ``down_i(act(gate_i x) * up_i x)``."""

    def __init__(self, num_experts: int, hidden_size: int, expert_size: int, hidden_act: str):
        super().__init__()
        self.hidden_act = hidden_act
        self.gate_up_proj = nn.Parameter(torch.empty(num_experts, 2 * expert_size, hidden_size))
        self.down_proj = nn.Parameter(torch.empty(num_experts, hidden_size, expert_size))
        nn.init.normal_(self.gate_up_proj, std=0.02)
        nn.init.normal_(self.down_proj, std=0.02)

    def expert(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Expert ``i`` on ``x (m, c)``: ``(m, c)``."""
        gate, up = F.linear(x, self.gate_up_proj[i]).chunk(2, dim=-1)  # each (m, f)
        return F.linear(GATE_ACTIVATIONS[self.hidden_act](gate) * up, self.down_proj[i])

    def forward(
        self, x: torch.Tensor, experts: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """Dispatch and combine: ``x (n, c)``, ``experts`` and ``weights`` ``(n, k)`` -> ``(n, c)``,
        each token the weighted sum of its ``k`` experts' outputs. Experts no token chose are
        skipped; each runs once on all of its tokens, in expert order, as transformers' eager loop."""
        out = torch.zeros_like(x)  # (n, c)
        chosen = F.one_hot(experts, self.gate_up_proj.shape[0]).permute(2, 1, 0)  # (e, k, n)
        for i in chosen.sum(dim=(1, 2)).nonzero().flatten().tolist():
            slot, token = torch.where(chosen[i])  # its tokens, and its place in their top-k
            y = self.expert(i, x[token]) * weights[token, slot, None]  # (m, c): dispatch, weight
            out.index_add_(0, token, y.to(out.dtype))  # combine: add back into the tokens' rows
        return out


class SparseMoE(nn.Module):
    """Top-k routed experts plus an optional shared expert behind a sigmoid gate (Qwen1.5-MoE):

    ``y = sum_{i in top-k} w_i expert_i(x) + sigmoid(g . x) * shared(x)``.

    ``shared_expert_size=None`` and ``norm_topk_prob=True`` give Mixtral's layer. Parameter names
    are transformers' (``gate``, ``experts``, ``shared_expert``, ``shared_expert_gate``), so
    ``Qwen2MoeSparseMoeBlock`` weights load with no renaming. ``forward``: ``(..., c)`` -> ``(..., c)``.
    ``ValueError`` for sizes that are not positive integers or ``top_k`` outside ``[1, E]``.
    """

    def __init__(
        self,
        hidden_size: int,
        num_experts: int,
        top_k: int,
        expert_size: int,
        shared_expert_size: int | None = None,
        norm_topk_prob: bool = False,
        hidden_act: str = "silu",
    ) -> None:
        super().__init__()
        for name, value in (("hidden_size", hidden_size), ("num_experts", num_experts)):
            check_positive_int(name, value)
        check_positive_int("expert_size", expert_size)
        if (
            isinstance(top_k, bool)
            or not isinstance(top_k, Integral)
            or not 1 <= top_k <= num_experts
        ):
            raise ValueError(
                f"top_k ({top_k!r}) must be an integer in [1, num_experts = {num_experts}]"
            )
        if hidden_act not in GATE_ACTIVATIONS:
            raise ValueError(
                f"hidden_act ({hidden_act!r}) must be one of {sorted(GATE_ACTIVATIONS)}"
            )
        self.top_k, self.norm_topk_prob = top_k, norm_topk_prob
        self.gate = nn.Linear(hidden_size, num_experts, bias=False)  # the router, W_r (e, c)
        self.experts = MoEExperts(num_experts, hidden_size, expert_size, hidden_act)
        if shared_expert_size is not None:
            check_positive_int("shared_expert_size", shared_expert_size)
            self.shared_expert = GatedMLP(hidden_size, shared_expert_size, hidden_act=hidden_act)
            self.shared_expert_gate = nn.Linear(hidden_size, 1, bias=False)  # one scalar per token

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(router_logits (n, e), weights (n, k), experts (n, k))`` for ``x (..., c)``."""
        logits = self.gate(x.reshape(-1, x.shape[-1]))  # (n, e)
        return logits, *route_top_k(logits, self.top_k, self.norm_topk_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_floating(x=x)
        flat = x.reshape(-1, x.shape[-1])  # (n, c)
        # the shared expert first, as transformers: in bf16 the order in which autograd sums the
        # four gradients of flat (shared expert, router, experts, gate) shows in their last bits
        shared = self.shared_expert(flat) if hasattr(self, "shared_expert") else None  # (n, c)
        _, weights, experts = self.route(flat)  # (n, k) each
        out = self.experts(flat, experts, weights)  # (n, c): the routed experts, weighted
        if shared is not None:  # every token, scaled by its own sigmoid gate
            out = out + torch.sigmoid(self.shared_expert_gate(flat)) * shared
        return out.reshape(x.shape)  # (..., c)


def load_balancing_loss(
    router_logits: Sequence[torch.Tensor],
    top_k: int,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Switch Transformer's auxiliary loss over every MoE layer's router: ``E * sum_i f_i P_i``.

    ``f_i`` is the share of tokens whose top-k holds expert ``i`` and ``P_i`` the mean router
    probability of expert ``i`` [fedus2022switch], Eqs. (4)-(6), both over all layers' tokens, as
    transformers' ``load_balancing_loss_func`` counts them. With top-k, ``sum_i f_i = k``, so a
    perfectly even router scores ``k`` (1 for Switch's top-1). The gradient flows through ``P``
    only (the top-k choice is a count).

    Args:
        router_logits: one ``(n, e)`` tensor per MoE layer (``n = b * t``), same ``n`` and ``e``.
        top_k: ``k``, in ``[1, e]``.
        attention_mask: ``(b, t)``, 1 for a real token; padding is left out of both averages.

    Returns:
        A scalar in float32 (float64 for float64 logits). ``ValueError`` for no layers, or
        layers or a mask of different sizes.
    """
    if not router_logits:
        raise ValueError("router_logits must hold one (n, e) tensor per MoE layer, got none")
    shapes = {tuple(r.shape) for r in router_logits}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"router_logits must be (n, e) tensors of one shape, got {sorted(shapes)}")
    n, e = next(iter(shapes))
    upcast = torch.float64 if router_logits[0].dtype == torch.float64 else torch.float32
    logits = torch.cat(list(router_logits)).to(upcast)  # (layers * n, e)
    probs = F.softmax(logits, dim=-1)  # (layers * n, e)
    _, experts = route_top_k(logits, top_k, False)  # (layers * n, k)
    chosen = F.one_hot(experts, e).sum(dim=1).to(upcast)  # (layers * n, e): 1 where in the top-k
    if attention_mask is None:
        real = torch.ones(len(logits), 1, dtype=upcast, device=logits.device)
    else:
        if attention_mask.numel() != n:
            raise ValueError(f"attention_mask has {attention_mask.numel()} tokens, the routers {n}")
        real = attention_mask.reshape(-1, 1).to(upcast).repeat(len(router_logits), 1)
    f = (chosen * real).sum(0) / real.sum()  # (e,): share of tokens sent to each expert
    p = (probs * real).sum(0) / real.sum()  # (e,): mean router probability of each expert
    return e * (f * p).sum()


@dataclass(frozen=True)
class MoECounts:
    total: int  # every parameter of the model
    active: int  # parameters one token's forward pass uses: total minus the unused experts
    per_expert: int  # parameters of one routed expert in one layer
    experts: int  # E, routed experts per MoE layer
    top_k: int  # k, experts per token
    layers: int  # MoE layers
    shared: int = 0  # parameters of the shared experts and their gates, all layers (always active)

    def __str__(self) -> str:
        shared = f"; shared experts {self.shared / 1e6:.0f}M" if self.shared else ""
        return (
            f"{self.total / 1e9:.2f}B total, {self.active / 1e9:.2f}B active "
            f"({self.top_k} of {self.experts} experts per token in each of {self.layers} layers; "
            f"one expert {self.per_expert / 1e6:.1f}M{shared})"
        )


def moe_parameter_counts(config: Any) -> MoECounts:
    """Count total and active parameters of the causal LM that ``config`` builds (``MixtralConfig``,
    ``Qwen2MoeConfig``).

    The model is built on the meta device, so no memory is allocated and nothing is downloaded. A
    routed expert's parameters are the slices ``[i]`` of the tensors under ``.experts.``; each MoE
    layer keeps ``num_experts_per_tok`` of its ``num_local_experts`` (Mixtral) or ``num_experts``
    (Qwen). Everything else, shared experts and dense layers included, is active. ``ValueError``
    for a config without experts or a ``num_experts_per_tok`` outside ``[1, E]``.
    """
    from transformers import AutoModelForCausalLM

    experts = getattr(config, "num_local_experts", None) or getattr(config, "num_experts", None)
    top_k = getattr(config, "num_experts_per_tok", None)
    if not experts or not top_k:
        raise ValueError(
            f"config {type(config).__name__} has no num_local_experts (or num_experts) and "
            "num_experts_per_tok: not an MoE config"
        )
    if not 1 <= top_k <= experts:
        raise ValueError(f"num_experts_per_tok ({top_k}) must be in [1, num_experts = {experts}]")
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    named = dict(model.named_parameters())
    total = sum(p.numel() for p in named.values())
    routed = {n: p.numel() for n, p in named.items() if ".experts." in n}
    layers = len({n.split(".experts.")[0] for n in routed})  # the layers that hold experts
    per_expert = sum(routed.values()) // (experts * layers)
    if per_expert * experts * layers != sum(routed.values()):
        raise ValueError(
            f"expert parameters ({sum(routed.values())}) do not split into {experts} x {layers}"
        )
    shared = sum(p.numel() for n, p in named.items() if ".shared_expert" in n)
    active = total - (experts - top_k) * per_expert * layers
    return MoECounts(total, active, per_expert, experts, top_k, layers, shared)
