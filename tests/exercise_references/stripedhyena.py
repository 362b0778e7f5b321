"""References and known mistakes for the StripedHyena chapter's exercises: the shortest FFT that gives a linear (not
circular) convolution, a causal convolution worked by hand, and the length from which attention
costs more than the FFT convolution, from two measured constants.

Lengths are counts and must be Python ``int``; the hand-worked outputs are a list of numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from demos.exercises.core import Check, Mistake, check_function
from demos.exercises.stripedhyena import HAND_U, _int_only  # shared with the package

# ---------------------------------------------------------------- exercise 1: the FFT's length


def min_fft_length(length: int, filter_length: int) -> int:
    """The reference: the shortest FFT whose circular convolution of a length-``length`` input with
    a length-``filter_length`` filter equals the linear one on the first ``length`` outputs. The full
    linear convolution has ``length + filter_length - 1`` entries; a shorter FFT folds its tail onto
    the start."""
    return length + filter_length - 1


def check_min_fft_length(fn: Callable[..., Any]) -> Check:
    """Check ``min_fft_length(length, filter_length)``; the answer must be a Python int."""
    cases = {
        "l = 8, k = 3": (8, 3),
        "l = 8, k = 8 (a filter as long as the input)": (8, 8),
        "l = 1000, k = 1": (1000, 1),
        "l = 4096, k = 128": (4096, 128),
        "l = 7, k = 5 (odd)": (7, 5),
    }
    mistakes = [
        Mistake(
            lambda n, k: 2 * n,
            "2 l always works (it is what the page's code uses) but it is "
            "not the shortest when the filter is shorter than the input: l + k - 1 suffices.",
        ),
        Mistake(
            lambda n, k: n,
            "no padding at all: that is the circular convolution of the "
            "chapter's first trap, the filter's tail wraps onto the first outputs.",
        ),
        Mistake(
            lambda n, k: n + k,
            "one more than needed: the full linear convolution has l + k - 1 entries, not l + k.",
        ),
        Mistake(
            lambda n, k: n + k - 2,
            "one too short: the last entry of the linear convolution "
            "(index l + k - 2) wraps onto output 0.",
        ),
        Mistake(
            lambda n, k: 2 ** math.ceil(math.log2(n + k - 1)),
            "that rounds up to a power of "
            "two, a common speed choice; the exercise asks for the shortest length that works.",
        ),
    ]
    names = ("length", "filter_length")
    verdict = check_function(fn, min_fft_length, cases, names, mistakes=mistakes)
    return _int_only(fn, verdict, cases, names)


# ---------------------------------------------------------------- exercise 2: a convolution by hand

HAND_H = (2.0, -1.0, 0.5)  # the filter h_0 (weighs the current input), h_1, h_2


def _conv(u: Sequence[float], h: Sequence[float], flip: bool = False, wrap: bool = False):
    n, k = len(u), len(h)
    taps = list(reversed(h)) if flip else list(h)
    out = []
    for t in range(n):
        total = 0.0
        for j in range(k):
            s = t - j
            if s >= 0 or wrap:
                total += taps[j] * u[s % n]
        out.append(total)
    return out


def conv_by_hand() -> tuple[float, ...]:
    """The reference: ``y_0 .. y_4`` of the causal convolution of ``HAND_U`` with ``HAND_H``."""
    return tuple(_conv(HAND_U, HAND_H))


HAND_MISTAKES = {
    "flipped": (
        tuple(_conv(HAND_U, HAND_H, flip=True)),
        "the filter ran backwards: h_0 multiplies the current input u_t, h_1 the one before it, "
        "h_2 the one before that.",
    ),
    "circular": (
        tuple(_conv(HAND_U, HAND_H, wrap=True)),
        "the first outputs picked up the last inputs (u_4, u_3): that is the circular "
        "convolution; before u_0 there are only zeros.",
    ),
    "future": (
        tuple(sum(HAND_H[j] * HAND_U[t + j] for j in range(3) if t + j < 5) for t in range(5)),
        "each output used the inputs after it (u_t, u_(t+1), u_(t+2)): a causal output sees "
        "only u_t and earlier.",
    ),
}


def check_conv_by_hand(fn: Callable[..., Any]) -> Check:
    """Check ``conv_by_hand()``: no arguments, returns the five outputs ``y_0 .. y_4`` of the causal
    convolution of ``HAND_U`` with ``HAND_H``, worked out by hand, as a tuple of numbers."""
    cases = {"u = (1, 2, 0, -1, 3), h = (2, -1, 0.5)": ()}
    mistakes = [Mistake(lambda wrong=wrong: wrong, why) for wrong, why in HAND_MISTAKES.values()]
    names = [f"y_{t}" for t in range(len(HAND_U))]
    return check_function(
        fn, conv_by_hand, cases, (), mistakes=mistakes, atol=1e-9, rtol=0, names=names
    )


# ---------------------------------------------------------------- exercise 3: the crossover


def crossover_from_constants(attention: float, fft: float) -> int:
    """The reference: the smallest ``L >= 4`` at which ``attention * L**2 >= fft * L * log2(L)``
    (attention costs ``attention`` seconds per ``L^2``, the FFT ``fft`` seconds per ``L log2 L``).
    From ``L = 4`` on, ``L / log2 L`` only grows, so attention stays dearer after it."""
    n = 4
    while attention * n * n < fft * n * math.log2(n):
        n += 1
    return n


def check_crossover_from_constants(fn: Callable[..., Any]) -> Check:
    """Check ``crossover_from_constants(attention, fft)``; the answer must be a Python int."""
    cases = {
        "attention 2.7e-8 s per L^2, FFT 1.5e-7 s per L log2 L": (2.7e-8, 1.5e-7),
        "a fast attention kernel: 1e-9 and 1.5e-7": (1e-9, 1.5e-7),
        "equal constants": (1e-8, 1e-8),
        "a slow FFT: 1e-8 and 1e-5": (1e-8, 1e-5),
        "a tie at L = 8: 3 and 8 (3 L^2 = 8 L log2 L exactly)": (3.0, 8.0),
    }

    def natural_log(a, f):
        n = 4
        while a * n * n < f * n * math.log(n):
            n += 1
        return n

    def no_log(a, f):
        return max(4, math.ceil(f / a))

    def strict(a, f):
        n = 4
        while a * n * n <= f * n * math.log2(n):
            n += 1
        return n

    def power_of_two(a, f):
        n = crossover_from_constants(a, f)
        return 2 ** math.ceil(math.log2(n))

    mistakes = [
        Mistake(
            natural_log,
            "log2 L is the FFT's cost model here; the natural log makes the FFT "
            "look 1.44 times cheaper.",
        ),
        Mistake(no_log, "the FFT's log2 L factor was dropped: its cost is fft * L * log2 L."),
        Mistake(
            strict,
            "at a tie (attention * L^2 equal to fft * L * log2 L) the answer is that L: the "
            "condition is >=, so the loop continues only while attention is strictly cheaper (<).",
        ),
        Mistake(
            power_of_two,
            "that rounds up to a power of two (the lengths the benchmark "
            "measured); the exercise asks for the smallest integer L.",
        ),
        Mistake(
            lambda a, f: crossover_from_constants(a, f) - 1,
            "one too short: at that length attention is still the cheaper of the two.",
        ),
    ]
    names = ("attention", "fft")
    verdict = check_function(fn, crossover_from_constants, cases, names, mistakes=mistakes)
    return _int_only(fn, verdict, cases, names)
