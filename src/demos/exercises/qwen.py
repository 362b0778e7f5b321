"""Checkers for the Qwen chapter's exercises: the first position LogN-Scaling multiplies by a given
factor (its inverse problem), the RoPE base that slows any one channel by a given factor (NTK-aware
interpolation's derivation, generalised), and (transfer) cutting first-generation Qwen's fused
``c_attn`` into transformers' ``q_proj``, ``k_proj`` and ``v_proj``."""

from __future__ import annotations

from collections.abc import Callable

from demos.exercises.core import Check, check_recorded
from demos.exercises.describe import describe
from demos.exercises.recorded import recorded


def _not_int(fn: Callable, cases: dict[str, tuple]) -> str | None:
    """A sentence naming the first case where ``fn`` returns something other than a Python int."""
    for case, args in cases.items():
        try:
            value = fn(*args)
        except Exception:  # the value check already ran it without error; stay silent
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            return (
                f"In case '{case}' the value is right but it came back as {describe(value)}. "
                "A position is a Python int (it indexes a sequence): math.ceil returns one; "
                "convert a float or a tensor with int(...)."
            )
    return None


def check_logn_position(fn: Callable[[float, int], int]) -> Check:
    """Check ``first_position(factor, train_len) -> int``: the smallest 0-based position whose query
    LogN-Scaling multiplies by at least ``factor``; the value must be a Python int."""
    cases = recorded(__name__, "check_logn_position").cases
    check = check_recorded(fn, recorded(__name__, "check_logn_position"), ("factor", "train_len"))
    if not check.ok:
        return check
    try:
        problem = _not_int(fn, cases)
    except Exception:  # a checker never raises on a learner's answer
        problem = None
    return Check(False, problem) if problem else check


def check_base_for_channel(fn: Callable[[float, int, int, float], float]) -> Check:
    """Check ``base_for_channel(base, head_dim, channel, slowdown) -> float``: the base under which
    channel ``channel`` turns ``slowdown`` times slower."""
    return check_recorded(
        fn,
        recorded(__name__, "check_base_for_channel"),
        ("base", "head_dim", "channel", "slowdown"),
        rtol=1e-9,
    )


def check_split_c_attn(fn: Callable[..., tuple]) -> Check:
    """Check ``split(weight, bias) -> (q_w, k_w, v_w, q_b, k_b, v_b)`` for first-generation Qwen's
    ``c_attn`` (``weight (3c, c)``, ``bias (3c,)``, 4 heads)."""
    names = ("q_proj.weight", "k_proj.weight", "v_proj.weight")
    names += ("q_proj.bias", "k_proj.bias", "v_proj.bias")
    return check_recorded(
        fn, recorded(__name__, "check_split_c_attn"), ("weight", "bias"), names=names
    )
