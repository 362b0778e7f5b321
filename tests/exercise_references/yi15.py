"""References and known mistakes for the Yi-1.5 chapter's exercises: the parameter count of a model grown by depth
up-scaling (from the count before and the shape of one layer), and (transfer) the layer map of
SOLAR 10.7B's other layout, two copies of the model with the seam trimmed.

The count must be a Python ``int`` (a float is exact only up to 2**53, a tensor is not a count);
the layer map a ``tuple`` of ints, one per layer of the grown model, as
:func:`demos.models.upscaling.upscaled_layer_map` returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from demos.exercises.compare import describe
from demos.exercises.core import Check, Mistake, check_function
from demos.exercises.xgen import _int_only  # the same rule: counts are Python ints
from demos.exercises.yi15 import _LONG_TUPLE, GROWN_ARGS  # shared with the package

# ---------------------------------------------------------------- exercise 1: the grown count


def layer_parameters(hidden: int, heads: int, kv_heads: int, head_dim: int, inter: int) -> int:
    """One Llama layer without biases: q and o (``c x hd`` each), k and v (``c x gd`` each), the
    gated MLP's three ``c x f`` matrices, and the two RMSNorm weights (``c`` each)."""
    c, h, g, d, f = hidden, heads, kv_heads, head_dim, inter
    return 2 * c * h * d + 2 * c * g * d + 3 * c * f + 2 * c


def grown_parameters(
    before: int, hidden: int, heads: int, kv_heads: int, head_dim: int, inter: int, span: tuple
) -> int:
    """The reference: ``before`` plus ``j - i`` copies of one layer (the span is half-open)."""
    i, j = span
    return before + (j - i) * layer_parameters(hidden, heads, kv_heads, head_dim, inter)


def _with_layer(layer: Callable[..., int], copies: Callable[[tuple], int] = lambda s: s[1] - s[0]):
    return lambda b, c, h, g, d, f, s: b + copies(s) * layer(c, h, g, d, f)


def check_grown_parameters(fn: Callable[..., Any]) -> Check:
    """Check ``grown_parameters(before, hidden, heads, kv_heads, head_dim, intermediate, span)``:
    see :func:`grown_parameters`. The answer must be a Python int."""
    cases = {
        "Yi-1.5-6B grown by (12, 28)": (6_061_035_520, 4096, 32, 4, 128, 11008, (12, 28)),
        "tiny, head_dim * heads != hidden": (100_000, 32, 4, 2, 16, 48, (1, 3)),
        "Yi-1.5-34B's shape, one layer copied": (34_388_917_248, 7168, 56, 8, 128, 20480, (30, 31)),
        "the whole model copied": (5_000, 16, 2, 1, 8, 24, (0, 4)),
    }
    mistakes = [
        Mistake(
            _with_layer(lambda c, h, g, d, f: layer_parameters(c, h, g, d, f) - 2 * c),
            "the two RMSNorm weights of each copied layer (hidden each) are missing.",
        ),
        Mistake(
            _with_layer(lambda c, h, g, d, f: layer_parameters(c, h, h, d, f)),
            "k and v were counted with the query heads; they have kv_heads heads (GQA).",
        ),
        Mistake(
            _with_layer(lambda c, h, g, d, f: 2 * c * h * d + 2 * c * g * d + 2 * c * f + 2 * c),
            "the MLP has three matrices (gate, up and down), not two.",
        ),
        Mistake(
            _with_layer(
                lambda c, h, g, d, f: c * h * d + c * c + 2 * c * g * d + 3 * c * f + 2 * c
            ),
            "the output projection maps heads * head_dim back to hidden: hidden x (heads * "
            "head_dim), not hidden x hidden (they differ when head_dim * heads != hidden).",
        ),
        Mistake(
            _with_layer(layer_parameters, lambda s: s[1] - s[0] + 1),
            "the span is half-open: (12, 28) copies layers 12 to 27, 16 layers, not 17.",
        ),
        Mistake(
            _with_layer(layer_parameters, lambda s: s[1] - s[0] - 1),
            "one layer too few: the half-open span (i, j) holds j - i layers, (12, 28) is 16, "
            "not 15 (j is the first layer after the span, not its last).",
        ),
        Mistake(
            _with_layer(layer_parameters, lambda s: 2 * (s[1] - s[0])),
            "the originals are already in 'before': only the j - i copies are new.",
        ),
        Mistake(
            lambda b, c, h, g, d, f, s: (s[1] - s[0]) * layer_parameters(c, h, g, d, f),
            "that is only what the copies add; the question asks for the grown model's total.",
        ),
    ]
    verdict = check_function(fn, grown_parameters, cases, GROWN_ARGS, mistakes=mistakes)
    return _int_only(fn, verdict, cases, GROWN_ARGS, "parameter counts")


# ---------------------------------------------------------------- exercise 2: SOLAR's layout

# "a tuple of 48 (item 0, ..., item 47)" or "(an int; ...; an int)": a layer map's length, in words


def solar_layer_map(num_layers: int, dropped: int) -> tuple[int, ...]:
    """The reference: SOLAR's depth up-scaling [kim2023solar]: two copies of an ``n``-layer model,
    the last ``m`` layers of the first and the first ``m`` of the second removed, so the grown
    model runs layers ``0 .. n - m - 1`` then ``m .. n - 1``: ``2 (n - m)`` layers."""
    n, m = num_layers, dropped
    return (*range(n - m), *range(m, n))


def check_solar_layer_map(fn: Callable[..., Any]) -> Check:
    """Check ``solar_layer_map(num_layers, dropped)``: see :func:`solar_layer_map`."""
    cases = {
        "Mistral 7B's 32 layers, 8 dropped (48)": (32, 8),
        "8 layers, 2 dropped": (8, 2),
        "4 layers, 1 dropped": (4, 1),
        "6 layers, none dropped": (6, 0),
    }
    mistakes = [
        Mistake(
            lambda n, m: (*range(m, n), *range(n - m)),
            "the two copies are in the wrong order: the first copy keeps its bottom layers "
            "(0 .. n - m - 1) and runs first; the second keeps its top layers (m .. n - 1).",
        ),
        Mistake(
            lambda n, m: (*range(m, n), *range(m, n)),
            "both copies lost their first m layers; only the second copy does (the first keeps "
            "the embedding's layers and loses its last m).",
        ),
        Mistake(
            lambda n, m: (*range(n - m), *range(n - m)),
            "both copies lost their last m layers; only the first copy does.",
        ),
        Mistake(
            lambda n, m: (*range(n), *range(n)),
            "nothing was dropped: SOLAR removes m layers from each copy where they meet.",
        ),
        Mistake(
            lambda n, m: (*range(n - m + 1), *range(m, n)),
            "one layer too many in the first copy: range(n - m) stops before n - m.",
        ),
        Mistake(
            lambda n, m: (*range(n - m), *range(m - 1, n)),
            "one layer too many in the second copy: it starts at layer m, not m - 1.",
        ),
        Mistake(
            lambda n, m: (*range(n - m - 1), *range(m, n)),
            "one layer too few in the first copy: it keeps layers 0 .. n - m - 1, which is "
            "range(n - m), not range(n - m - 1).",
        ),
        Mistake(
            lambda n, m: (*range(n - m), *range(m + 1, n)),
            "one layer too few in the second copy: the first m layers (0 .. m - 1) are removed, "
            "so it starts at layer m, not m + 1.",
        ),
    ]
    verdict = check_function(
        fn, solar_layer_map, cases, ("num_layers", "dropped"), mistakes=mistakes
    )
    if not verdict.ok:  # the generic message lists a long map's items one by one: name it instead
        message = _LONG_TUPLE.sub(r"a tuple of \1 layer numbers", verdict.message)
        return Check(False, message, verdict.attempted)
    for case, args in cases.items():  # right values: now the type, as upscaled_layer_map's
        value = fn(*args)
        if not isinstance(value, tuple) or not all(
            isinstance(k, int) and not isinstance(k, bool) for k in value
        ):
            return Check(
                False,
                f"In case '{case}' it returned {describe(value)} with the right layers; return a "
                "tuple of Python ints, as upscaled_layer_map does (tuple(...) around it).",
            )
    return verdict
