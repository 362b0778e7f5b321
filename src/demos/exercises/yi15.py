"""Checkers for the Yi-1.5 chapter's exercises: the parameter count of a model grown by depth
up-scaling (from the count before and the shape of one layer), and (transfer) the layer map of
SOLAR 10.7B's other layout, two copies of the model with the seam trimmed.

The count must be a Python ``int`` (a float is exact only up to 2**53, a tensor is not a count);
the layer map a ``tuple`` of ints, one per layer of the grown model, as
:func:`demos.models.upscaling.upscaled_layer_map` returns.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from demos.exercises.compare import describe
from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded
from demos.exercises.xgen import _int_only  # the same rule: counts are Python ints

# ---------------------------------------------------------------- exercise 1: the grown count


GROWN_ARGS = ("before", "hidden", "heads", "kv_heads", "head_dim", "intermediate", "span")


def check_grown_parameters(fn: Callable[..., Any]) -> Check:
    """Check ``grown_parameters(before, hidden, heads, kv_heads, head_dim, intermediate, span)``,
    as the chapter's exercise asks. The answer must be a Python int."""
    cases = recorded(__name__, "check_grown_parameters").cases
    verdict = check_recorded(fn, recorded(__name__, "check_grown_parameters"), GROWN_ARGS)
    return _int_only(fn, verdict, cases, GROWN_ARGS, "parameter counts")


# ---------------------------------------------------------------- exercise 2: SOLAR's layout

# "a tuple of 48 (item 0, ..., item 47)" or "(an int; ...; an int)": a layer map's length, in words
_LONG_TUPLE = re.compile(r"a tuple of (\d+) \((?:(?:item \d+|an int)[,;] )*(?:item \d+|an int)\)")


def check_solar_layer_map(fn: Callable[..., Any]) -> Check:
    """Check ``solar_layer_map(num_layers, dropped)``, as the chapter's exercise asks."""
    cases = recorded(__name__, "check_solar_layer_map").cases
    verdict = check_recorded(
        fn, recorded(__name__, "check_solar_layer_map"), ("num_layers", "dropped")
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
