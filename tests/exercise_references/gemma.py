"""References and known mistakes for the Gemma chapter's exercises: the ``(1 + w)`` RMSNorm, and turning a Gemma norm
weight into the weight a Llama-style ``RMSNorm`` needs for the same output (porting a checkpoint)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, Mistake, check_function


def gemma_rms_norm_reference(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """``x / sqrt(mean(x^2) + eps) * (1 + weight)`` in float32, then cast to ``x``'s dtype."""
    xf = x.float()
    normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (normed * (1.0 + weight.float())).to(x.dtype)


def _plain_gain(x, weight, eps):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * weight.float()).to(x.dtype)


def _cast_first(x, weight, eps):
    xf = x.float()
    normed = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)
    return normed * (1.0 + weight)


def _all_in_x_dtype(x, weight, eps):
    normed = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return normed * (1.0 + weight)


def _no_eps(x, weight, eps):
    return gemma_rms_norm_reference(x, weight, 0.0)


def check_gemma_rms_norm(fn: Callable[..., torch.Tensor]) -> Check:
    """Check a learner's ``gemma_rms_norm(x, weight, eps)``; the result must have ``x``'s dtype,
    and the bf16 case is compared exactly."""
    gen = torch.Generator().manual_seed(0)
    cases = {
        "fp32, x (2, 3, 8), eps = 1e-6": (
            torch.randn(2, 3, 8, generator=gen),
            0.3 * torch.randn(8, generator=gen),
            1e-6,
        ),
        "fp32, small x (1, 4, 16), eps = 1e-2": (
            1e-2 * torch.randn(1, 4, 16, generator=gen),
            0.3 * torch.randn(16, generator=gen),
            1e-2,
        ),
        "bf16, x (4, 64), eps = 1e-6": (
            torch.randn(4, 64, generator=gen).bfloat16(),
            (0.5 * torch.randn(64, generator=gen)).bfloat16(),
            1e-6,
        ),
    }
    mistakes = [
        Mistake(
            _plain_gain,
            "the gain is w, as in Llama. Gemma stores w as an offset from one: scale by (1 + w).",
        ),
        Mistake(
            _cast_first,
            "the result was cast back to x's dtype *before* multiplying by (1 + w), as Llama does. "
            "Gemma multiplies in float32 and casts last; in bfloat16 the two round differently.",
        ),
        Mistake(
            _all_in_x_dtype,
            "everything was computed in x's dtype. In bfloat16 the mean of squares, the "
            "reciprocal square root and the product each round to 8 bits; Gemma upcasts x to "
            "float32, computes the statistics and the product (1 + w) there, and casts last.",
        ),
        Mistake(_no_eps, "eps is missing inside the square root: sqrt(mean(x^2) + eps)."),
    ]
    return check_function(
        fn,
        gemma_rms_norm_reference,
        cases,
        ("x", "weight", "eps"),
        mistakes=mistakes,
        atol=1e-6,
        rtol=1e-5,
        exact_dtype=True,
    )


def llama_norm_weight_reference(gemma_weight: torch.Tensor) -> torch.Tensor:
    """The weight a Llama ``RMSNorm`` (gain ``w``) needs to compute Gemma's ``(1 + w)``: ``1 + w``."""
    return 1.0 + gemma_weight


def check_llama_norm_weight(fn: Callable[[torch.Tensor], torch.Tensor]) -> Check:
    """Check a learner's ``to_llama_norm_weight(gemma_weight)``: a float32 tensor, within rounding."""
    gen = torch.Generator().manual_seed(1)
    cases = {
        "zeros (a freshly initialised Gemma norm)": (torch.zeros(8),),
        "small offsets (16,)": (0.1 * torch.randn(16, generator=gen),),
        "offsets of a trained norm (2048,)": (torch.randn(2048, generator=gen),),
    }
    mistakes = [
        Mistake(
            lambda w: w,
            "the Gemma weight came back as is; Llama scales by its weight, Gemma by 1 + w.",
        ),
        Mistake(lambda w: w - 1.0, "the offset went the wrong way: Gemma scales by 1 + w."),
        Mistake(lambda w: torch.ones_like(w), "the learned offsets were dropped: keep w, add 1."),
    ]
    return check_function(
        fn,
        llama_norm_weight_reference,
        cases,
        ("gemma_weight",),
        mistakes=mistakes,
        atol=1e-6,
        rtol=1e-6,
        exact_dtype=True,
    )
