"""Checkers for the StripedHyena chapter's exercises: the shortest FFT that gives a linear (not
circular) convolution, a causal convolution worked by hand, and the length from which attention
costs more than the FFT convolution, from two measured constants.

Lengths are counts and must be Python ``int``; the hand-worked outputs are a list of numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from demos.exercises.core import Check, check_recorded
from demos.exercises.describe import describe, describe_error, in_case
from demos.exercises.recorded import recorded


def _int_only(fn: Any, verdict: Check, cases: Mapping[str, tuple], names: Sequence[str]) -> Check:
    """``verdict``, unless it accepted an answer that returns something other than a Python int."""
    if not verdict.ok:
        return verdict
    for case, args in cases.items():
        try:
            value = fn(*args)
        except Exception as error:  # it passed a moment ago; report rather than raise
            return Check(False, f"{in_case(case, names, args)} it {describe_error(error)}")
        if not isinstance(value, int) or isinstance(value, bool):
            return Check(
                False,
                f"{in_case(case, names, args)} it returned {describe(value)}: the value is right "
                "but a length is a whole number; return a Python int.",
            )
    return verdict


# ---------------------------------------------------------------- exercise 1: the FFT's length


def check_min_fft_length(fn: Callable[..., Any]) -> Check:
    """Check ``min_fft_length(length, filter_length)``; the answer must be a Python int."""
    cases = recorded(__name__, "check_min_fft_length").cases
    names = ("length", "filter_length")
    verdict = check_recorded(fn, recorded(__name__, "check_min_fft_length"), names)
    return _int_only(fn, verdict, cases, names)


# ---------------------------------------------------------------- exercise 2: a convolution by hand

HAND_U = (1.0, 2.0, 0.0, -1.0, 3.0)  # the input u_0 .. u_4


def check_conv_by_hand(fn: Callable[..., Any]) -> Check:
    """Check ``conv_by_hand()``: no arguments, returns the five outputs ``y_0 .. y_4`` of the causal
    convolution of ``HAND_U`` with ``HAND_H``, worked out by hand, as a tuple of numbers."""
    names = [f"y_{t}" for t in range(len(HAND_U))]
    return check_recorded(
        fn, recorded(__name__, "check_conv_by_hand"), (), atol=1e-9, rtol=0, names=names
    )


# ---------------------------------------------------------------- exercise 3: the crossover


def check_crossover_from_constants(fn: Callable[..., Any]) -> Check:
    """Check ``crossover_from_constants(attention, fft)``; the answer must be a Python int."""
    cases = recorded(__name__, "check_crossover_from_constants").cases

    names = ("attention", "fft")
    verdict = check_recorded(fn, recorded(__name__, "check_crossover_from_constants"), names)
    return _int_only(fn, verdict, cases, names)
