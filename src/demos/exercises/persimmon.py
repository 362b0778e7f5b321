"""Checkers for the Persimmon chapter's exercises: the per-head query/key LayerNorm, and the gradient
of squared ReLU (transfer: what the activation does to learning)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded


def check_qk_layernorm(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``qk_layernorm(q, weight, bias)``: ``q (b, h, t, d)``, ``weight`` and ``bias`` ``(d,)``,
    eps = 1e-5."""
    return check_recorded(
        fn, recorded(__name__, "check_qk_layernorm"), ("q", "weight", "bias"), atol=1e-5, rtol=1e-5
    )


def check_squared_relu_grad(fn: Callable[[torch.Tensor], torch.Tensor]) -> Check:
    """Check ``grad(x)``: the derivative of ``relu(x)**2`` at every entry of ``x`` (any shape)."""
    return check_recorded(fn, recorded(__name__, "check_squared_relu_grad"), ("x",), atol=1e-6)
