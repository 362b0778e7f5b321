"""Checkers for the Gemma chapter's exercises: the ``(1 + w)`` RMSNorm, and turning a Gemma norm
weight into the weight a Llama-style ``RMSNorm`` needs for the same output (porting a checkpoint)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded


def check_gemma_rms_norm(fn: Callable[..., torch.Tensor]) -> Check:
    """Check a learner's ``gemma_rms_norm(x, weight, eps)``; the result must have ``x``'s dtype,
    and the bf16 case is compared exactly."""
    return check_recorded(
        fn,
        recorded(__name__, "check_gemma_rms_norm"),
        ("x", "weight", "eps"),
        atol=1e-6,
        rtol=1e-5,
        exact_dtype=True,
    )


def check_llama_norm_weight(fn: Callable[[torch.Tensor], torch.Tensor]) -> Check:
    """Check a learner's ``to_llama_norm_weight(gemma_weight)``: a float32 tensor, within rounding."""
    return check_recorded(
        fn,
        recorded(__name__, "check_llama_norm_weight"),
        ("gemma_weight",),
        atol=1e-6,
        rtol=1e-6,
        exact_dtype=True,
    )
