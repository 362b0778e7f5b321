"""Checkers for the Qwen1.5 chapter's exercises: the router's top-k weights, the balancing loss and
its gradient, and (transfer) Mixtral's sparse layer, which has no shared expert and renormalises its top-k weights.

The references are :mod:`demos.layers.moe`, which tests/layers/test_moe.py proves equal to
transformers' ``Qwen2MoeTopKRouter``, ``load_balancing_loss_func`` and ``MixtralSparseMoeBlock``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded

INT64_WHY = (
    "The expert indices must be int64 (torch.long), as torch.topk returns them: F.one_hot, "
    "which the balancing loss uses to count the tokens each expert receives, accepts only "
    "int64 indices."
)


def _explain_dtypes(result: Check) -> Check:
    """Add why the indices must be int64 to a message that says they are not."""
    if not result.ok and "experts is an int" in result.message and "torch.int64" in result.message:
        return Check(False, f"{result.message} {INT64_WHY}", result.attempted)
    return result


def check_top_k_weights(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Check:
    """Check ``top_k_weights(router_logits, k)``: ``router_logits (n, e)`` float32 -> ``(weights
    (n, k) float32, experts (n, k) int64)``, the k largest softmax probabilities over all experts,
    not rescaled, most probable first."""

    result = check_recorded(
        fn,
        recorded(__name__, "check_top_k_weights"),
        ("router_logits", "k"),
        atol=1e-6,
        rtol=1e-5,
        names=("weights", "experts"),
        exact_dtype=True,
    )
    return _explain_dtypes(result)


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
