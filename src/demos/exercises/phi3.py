"""Checkers for the Phi-3 chapter's exercises: one NF4 block by hand, and a k-bit NormalFloat code book."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded

# ------------------------------------------------------------------ exercise 1: one block by hand


def _integer_codes(fn):
    """Accept any integer dtype for the codes (uint8, int32, int64): compare them as int64. The
    wrapper keeps ``fn``'s name and source (``functools.wraps``), so that check_function still
    recognises the untouched template through it."""
    if not callable(fn):
        return fn  # check_function explains a non-function

    @functools.wraps(fn)
    def wrapped(block):
        result = fn(block)
        if isinstance(result, tuple) and len(result) == 2:
            codes, absmax = result
            if isinstance(codes, torch.Tensor) and not codes.dtype.is_floating_point:
                return codes.long(), absmax
        return result

    return wrapped


def check_quantize_block(fn: Callable) -> Check:
    """Check ``fn(block) -> (codes, absmax)`` for one NF4 block: codes in 0..15 (any integer dtype),
    equal to bitsandbytes' indices; absmax a 0-d float32 tensor."""
    return check_recorded(
        _integer_codes(fn),
        recorded(__name__, "check_quantize_block"),
        ("block",),
        names=("codes", "absmax"),
        atol=0.0,
        rtol=0.0,
    )


# ------------------------------------------------------- exercise 2: a k-bit NormalFloat code book


def check_normal_code(fn: Callable) -> Check:
    """Check ``fn(bits) -> (2**bits,)`` ascending float32 NormalFloat levels for 2 to 5 bits."""
    return check_recorded(
        fn, recorded(__name__, "check_normal_code"), ("bits",), atol=1e-6, rtol=1e-6
    )
