"""References and known mistakes for the Persimmon chapter's exercises: the per-head query/key
LayerNorm, and the gradient of squared ReLU (transfer: what the activation does to learning)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from demos.exercises.core import Check, Mistake, check_function

EPS = 1e-5  # Persimmon's layer_norm_eps


def qk_layernorm(q: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The reference: LayerNorm over the ``d`` channels of each head, ``q (b, h, t, d)``."""
    return F.layer_norm(q, q.shape[-1:], weight, bias, EPS)


def _across_heads(q: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    b, h, t, d = q.shape
    flat = q.transpose(1, 2).reshape(b, t, h * d)  # every head of a token together
    normed = F.layer_norm(flat, (h * d,), eps=EPS).view(b, t, h, d).transpose(1, 2)
    return normed * weight + bias


def _rms(q: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return q * torch.rsqrt(q.pow(2).mean(-1, keepdim=True) + EPS) * weight + bias


def check_qk_layernorm(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``qk_layernorm(q, weight, bias)``: ``q (b, h, t, d)``, ``weight`` and ``bias`` ``(d,)``,
    eps = 1e-5."""
    gen = torch.Generator().manual_seed(0)
    cases = {
        f"b={b}, h={h}, t={t}, d={d}": (
            2.0 * torch.randn(b, h, t, d, generator=gen) + 1.0,
            1.0 + 0.1 * torch.randn(d, generator=gen),
            0.1 * torch.randn(d, generator=gen),
        )
        for b, h, t, d in [(1, 2, 3, 4), (2, 4, 5, 8)]
    }
    mistakes = [
        Mistake(
            _across_heads,
            "the statistics were taken over all heads of a token (h * d channels); Persimmon "
            "normalises each head's d channels on their own.",
        ),
        Mistake(_rms, "the mean was not subtracted (that is RMSNorm); LayerNorm centres first."),
        Mistake(
            lambda q, weight, bias: F.layer_norm(q, q.shape[-1:], eps=EPS),
            "the learned weight and bias were not applied.",
        ),
    ]
    return check_function(
        fn, qk_layernorm, cases, ("q", "weight", "bias"), mistakes=mistakes, atol=1e-5, rtol=1e-5
    )


def squared_relu_grad(x: torch.Tensor) -> torch.Tensor:
    """The reference: d/dx relu(x)**2, by autograd."""
    x = x.detach().clone().requires_grad_(True)
    (torch.square(F.relu(x))).sum().backward()
    return x.grad


def check_squared_relu_grad(fn: Callable[[torch.Tensor], torch.Tensor]) -> Check:
    """Check ``grad(x)``: the derivative of ``relu(x)**2`` at every entry of ``x`` (any shape)."""
    gen = torch.Generator().manual_seed(0)
    cases = {
        "a row through zero": (torch.tensor([-2.0, -0.5, 0.0, 0.5, 3.0]),),
        "a (3, 4) batch": (torch.randn(3, 4, generator=gen),),
    }
    mistakes = [
        Mistake(
            lambda x: (x > 0).to(x.dtype),
            "that is ReLU's derivative (a step); squaring makes it 2 relu(x), growing with x.",
        ),
        Mistake(lambda x: 2 * x, "for x < 0 the derivative is 0, not 2x: relu cuts it off."),
        Mistake(lambda x: F.relu(x), "the factor 2 from the square's derivative is missing."),
    ]
    return check_function(fn, squared_relu_grad, cases, ("x",), mistakes=mistakes, atol=1e-6)
