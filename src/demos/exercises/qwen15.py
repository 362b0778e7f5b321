"""Checkers for the Qwen1.5 chapter's exercises: which top-k assignments experts of a fixed capacity
serve (the dispatch Qwen1.5-MoE does without), the balancing loss and its gradient, and (transfer)
Mixtral's sparse layer, which has no shared expert and renormalises its top-k weights.

The references of the last three are :mod:`demos.layers.moe`, which tests/layers/test_moe.py proves
equal to transformers' ``load_balancing_loss_func`` and ``MixtralSparseMoeBlock``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded


def check_capacity_keep(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``capacity_keep(router_logits, k, capacity)``: ``router_logits (n, e)`` float64 ->
    ``(n, k)`` bool, True where token t's j-th choice (most probable first) is served; the
    assignments are served first choices first (tokens in order), then second choices, and an
    expert takes at most ``capacity``."""
    return check_recorded(
        fn,
        recorded(__name__, "check_capacity_keep"),
        ("router_logits", "k", "capacity"),
        exact_dtype=True,
    )


def check_balancing_loss(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``balancing_loss(router_logits, k)``: ``router_logits (layers, n, e)``, one ``(n, e)``
    per MoE layer -> a scalar tensor, ``E * sum_i f_i P_i`` with ``f_i`` the fraction of tokens whose top-k
    holds expert ``i`` and ``P_i`` its mean softmax probability, both over every layer's tokens."""
    return check_recorded(
        fn, recorded(__name__, "check_balancing_loss"), ("router_logits", "k"), atol=1e-6, rtol=1e-5
    )


def check_balancing_grad(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``balancing_grad(router_logits, k)``: one layer's ``router_logits (n, e)`` float32 ->
    ``(n, e)``, the gradient of ``E * sum_i f_i P_i`` with respect to the logits, ``f`` held fixed:
    ``(E / n) p_tj (f_j - sum_i f_i p_ti)``."""
    return check_recorded(
        fn,
        recorded(__name__, "check_balancing_grad"),
        ("router_logits", "k"),
        atol=1e-6,
        rtol=1e-5,
        exact_dtype=True,
    )


def check_mixtral_moe(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``mixtral_moe(x, gate_weight, gate_up_proj, down_proj, k)``: ``x (n, c)``, the router
    ``gate_weight (e, c)``, experts ``gate_up_proj (e, 2f, c)`` (gate rows first) and ``down_proj
    (e, c, f)`` -> ``(n, c)``: each token the sum of its k experts' SwiGLU outputs, weighted by
    the softmax probabilities of the k experts rescaled to sum to one."""

    return check_recorded(
        fn,
        recorded(__name__, "check_mixtral_moe"),
        ("x", "gate_weight", "gate_up_proj", "down_proj", "k"),
        atol=1e-5,
        rtol=1e-4,
    )
