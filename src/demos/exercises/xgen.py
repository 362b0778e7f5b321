"""Checkers for the XGen chapter's exercises: the score-matrix FLOPs of generating with a KV cache
(a prompt, then one token at a time), the longest context whose KV cache fits in a memory budget
(the cache formula turned around), and (transfer) the bytes of Mistral-7B's rolling cache.

Every answer is a count (FLOPs, tokens, bytes) and must be a Python ``int``: a float is exact only
up to 2**53 and a tensor is not a count; the messages say so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from demos.exercises.core import Check, check_recorded
from demos.exercises.describe import describe, describe_error, in_case
from demos.exercises.recorded import recorded


def _int_only(
    fn: Any, verdict: Check, cases: Mapping[str, tuple], arg_names: Sequence[str], what: str
) -> Check:
    """``verdict`` unless it accepted an answer that returns something other than a Python int
    (a float, a numpy number, a tensor) on some case: then a Check naming the type and why."""
    if not verdict.ok:
        return verdict
    for case, args in cases.items():
        try:
            value = fn(*args)
        except Exception as error:  # it passed a moment ago; report rather than raise
            return Check(False, f"{in_case(case, arg_names, args)} it {describe_error(error)}")
        if isinstance(value, int) and not isinstance(value, bool):
            continue
        return Check(
            False,
            f"{in_case(case, arg_names, args)} it returned {describe(value)}, "
            f"equal to the expected value, but the exercise asks for a Python int: {what} are "
            "whole numbers, a float is exact only up to 2**53 (about 9.0e15) and a tensor is not "
            "a count. Keep the arithmetic in Python ints (// rather than /, no torch or math "
            "functions), or convert at the end with int(...) or .item().",
        )
    return verdict


# ---------------------------------------------------------------- exercise 1: generating


def check_generation_score_flops(fn: Callable[..., Any]) -> Check:
    """Check ``generation_score_flops(batch, heads, head_dim, prompt, steps)``, as the chapter's
    exercise asks. The answer must be a Python int."""
    cases = recorded(__name__, "check_generation_score_flops").cases
    names = ("batch", "heads", "head_dim", "prompt", "steps")
    verdict = check_recorded(fn, recorded(__name__, "check_generation_score_flops"), names)
    return _int_only(fn, verdict, cases, names, "FLOPs")


# ---------------------------------------------------------------- exercise 2: the longest context


def check_max_context_tokens(fn: Callable[..., Any]) -> Check:
    """Check ``max_context_tokens(memory_bytes, layers, heads, kv_heads, head_dim,
    bytes_per_value)``, as the chapter's exercise asks. The answer must be a Python int."""
    cases = recorded(__name__, "check_max_context_tokens").cases

    names = ("memory_bytes", "layers", "heads", "kv_heads", "head_dim", "bytes_per_value")
    verdict = check_recorded(fn, recorded(__name__, "check_max_context_tokens"), names)
    return _int_only(fn, verdict, cases, names, "tokens")


# ---------------------------------------------------------------- exercise 3: Mistral (transfer)


def check_mistral_cache_bytes(fn: Callable[[int], Any]) -> Check:
    """Check ``mistral_cache_bytes(length)``: bytes of Mistral-7B-v0.1's rolling KV cache (32 layers,
    8 key/value heads of 128, window 4096, bf16) after ``length`` tokens of one sequence. The answer
    must be a Python int."""
    cases = recorded(__name__, "check_mistral_cache_bytes").cases
    verdict = check_recorded(fn, recorded(__name__, "check_mistral_cache_bytes"), ("length",))
    return _int_only(fn, verdict, cases, ("length",), "bytes")
