"""Comparing a learner's answer with the reference value and saying how they differ.

:func:`compare` takes what came back and what was expected (a tensor, a tuple of tensors, or a
number) and returns ``None`` when they agree or one sentence saying where they first differ;
:func:`describe` (from :mod:`demos.exercises.describe`, re-exported here) names a value for a
message; the hints a message ends with come from :mod:`demos.exercises.hints`.
:mod:`demos.exercises.core` runs the answers and turns these sentences into a
:class:`~demos.exercises.core.Check`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from demos.exercises.describe import (
    KINDS,
    counted,
    describe,
    describe_args,
    dtype_kind,
    is_numpy,
    short_number,
)
from demos.exercises.hints import (
    copies_on_another_axis,
    dtype_tolerance,
    rearranged,
    rounded_through_narrower,
    shape_difference,
    tiled_or_repeated,
)

__all__ = ["compare", "describe", "describe_args"]


def _numbers(expected: Any, got: Any) -> tuple[str, str]:
    """Both numbers with as many significant digits (6 or more) as it takes to tell them apart."""
    digits = 6
    if isinstance(expected, float) or isinstance(got, float):
        while digits < 17 and f"{float(expected):.{digits}g}" == f"{float(got):.{digits}g}":
            digits += 1
    return short_number(expected, digits), short_number(got, digits)


def _difference(expected: Any, got: Any) -> str:
    """``5 more than expected``, with ``(2x the expected value)`` when that factor means something.

    Between integers only a whole factor (2x, 0.5x) of values from 10 up is named: 3 where 2 was
    expected is a different index or count, and "1.5x" would suggest a cause that is not there.
    """
    diff = got - expected
    size = abs(diff)
    shown = f"{int(size):,}" if float(size).is_integer() and size < 2**63 else f"{size:.3g}"
    words = f"{shown} {'more' if diff > 0 else 'less'} than expected"
    integers = isinstance(expected, int) and isinstance(got, int)
    if integers and (min(abs(expected), abs(got)) < 10 or (got % expected and expected % got)):
        return words
    if expected and got:
        ratio = got / expected
        if ratio >= 1.5 or 0 < ratio <= 0.67:
            words += f", {ratio:.3g}x the expected value"
    return words


def compare(
    got: Any,
    expected: Any,
    atol: float = 0.0,
    rtol: float = 0.0,
    name: str = "the result",
    names: Sequence[str] | None = None,
    where: Callable[[tuple], str] | None = None,
    values: bool = True,
    exact_dtype: bool = False,
) -> str | None:
    """Explain how ``got`` differs from ``expected``, or return None when it is an equal answer.

    ``expected`` is a tensor, a tuple (of tensors or numbers, named by ``names``) or a number.
    ``where`` turns a tensor index into words (``query 2, key 0``); ``values=False`` compares
    only types, shapes and dtypes. ``exact_dtype=True`` requires a tensor answer in the
    expected tensor's dtype (otherwise another floating dtype is accepted within its rounding).
    """
    if isinstance(got, torch.Tensor) and (problem := _unusual_tensor(got, name)):
        return problem
    if isinstance(expected, tuple):
        problem = _compare_tuple(got, expected, atol, rtol, names, where, exact_dtype)
    elif isinstance(expected, torch.Tensor):
        problem = _compare_tensor(got, expected, atol, rtol, name, where, values, exact_dtype)
    else:
        problem = _compare_number(got, expected, atol, rtol, name, values)
    if got is None and problem:
        problem += " Did the function forget to `return`? (Printing a value returns None.)"
    return problem


def _unusual_tensor(got: torch.Tensor, name: str) -> str | None:
    """A sentence for a tensor whose values cannot be read as they are (sparse, quantized, meta)."""
    if got.is_meta:
        what = "a tensor on the meta device, which has a shape but no values"
    elif got.layout != torch.strided:
        what = f"a {str(got.layout).removeprefix('torch.')} tensor (convert it with .to_dense())"
    elif got.is_quantized:
        what = f"a quantized tensor ({got.dtype}; convert it with .dequantize())"
    else:
        return None
    return f"{name} is {what}: return a dense tensor on the CPU."


def _compare_tuple(got, expected, atol, rtol, names, where, exact_dtype=False) -> str | None:
    names = list(names or [f"item {i}" for i in range(len(expected))])
    want = f"a tuple of {len(expected)} ({', '.join(names)})"
    if not isinstance(got, tuple | list) or len(got) != len(expected):
        return f"expected {want}, got {describe(got)}."
    for values in (False, True):  # every item's type and shape first, then the values
        for item, want_item, item_name in zip(got, expected, names, strict=True):
            problem = compare(
                item,
                want_item,
                atol,
                rtol,
                item_name,
                where=where,
                values=values,
                exact_dtype=exact_dtype,
            )
            if problem and isinstance(got, list) and not values:
                return f"expected {want}, got {describe(got)}: {problem}"
            if problem:
                return problem
    return None


def _compare_tensor(
    got, expected, atol, rtol, name, where, values=True, exact_dtype=False
) -> str | None:
    if not isinstance(got, torch.Tensor):
        problem = f"{name} should be {describe(expected)}, got {describe(got)}."
        if is_numpy(got) or isinstance(got, list | tuple):
            try:
                as_tensor = torch.as_tensor(got)
            except Exception:
                return problem
            if _compare_tensor(as_tensor, expected, atol, rtol, name, where) is None:
                return problem + " Its values are right: return a torch tensor (torch.as_tensor)."
        return problem
    got, expected = got.detach().cpu(), expected.detach().cpu()
    if got.shape != expected.shape:
        problem = shape_difference(tuple(got.shape), tuple(expected.shape), name)
        hint = rearranged(got, expected, atol, rtol) or copies_on_another_axis(got, expected)
        if hint:  # the hint says more than the generic advice on the axes
            problem = problem.replace(
                " It has the right number of elements: check the order of the axes.", ""
            )
            return f"{problem} {hint}"
        return problem
    if dtype_kind(got.dtype) != dtype_kind(expected.dtype):
        return (
            f"{name} is {describe(got)}; expected a {KINDS[dtype_kind(expected.dtype)]} "
            f"tensor ({expected.dtype})."
        )
    if exact_dtype and got.dtype != expected.dtype:
        problem = f"{name} is {describe(got)}; the exercise asks for {expected.dtype}."
        if values and _compare_tensor(got, expected, atol, rtol, name, where) is None:
            problem += f" Its values are right: cast the result with .to({expected.dtype})."
        elif values and got.dtype.is_floating_point:
            problem += " " + _compare_tensor(
                got.to(expected.dtype), expected, atol, rtol, name, where
            )
        return problem
    if not values:
        return None
    if got.is_complex():
        return None if torch.equal(got, expected) else f"{name} differs from the reference."
    precision = ""
    if got.dtype.is_floating_point:
        nan = got.isnan() & ~expected.isnan()
        if nan.any():
            index = tuple(int(i) for i in nan.nonzero()[0])
            return (
                f"{name} has {int(nan.sum()):,} NaN of {counted(nan.numel(), 'element')} (the "
                f"first at "
                f"{_at(index, where)}, where {_value(expected[index])} was expected). NaN comes "
                "from 0/0, inf - inf or the log of a negative number."
            )
        if torch.finfo(got.dtype).eps > torch.finfo(expected.dtype).eps:  # narrower: its tolerance
            low_atol, low_rtol = dtype_tolerance(got.dtype)
            atol, rtol = max(atol, low_atol), max(rtol, low_rtol)
            precision = (
                f" The answer is {got.dtype}, so it was compared with that precision's tolerance "
                f"(rtol={rtol:.1e}); if the difference is rounding, compute in {expected.dtype}."
            )
            got, expected = got.double(), expected.double()
        else:  # as wide or wider: round it to the reference's dtype
            got = got.to(expected.dtype)
        bad = ~torch.isclose(got, expected, atol=atol, rtol=rtol, equal_nan=True)
    else:
        bad = got.long() != expected.long()
    if not bad.any():
        return None
    if (
        not precision
        and got.dtype.is_floating_point
        and not _only_rounding(got[bad], expected[bad])
    ):
        precision = rounded_through_narrower(got, expected, atol, rtol)
    if order := tiled_or_repeated(got, expected, atol, rtol):
        precision = f" {order}{precision}"
    index = tuple(int(i) for i in bad.nonzero()[0])
    want, have = expected[index].item(), got[index].item()
    shown_want, shown_have = _numbers(want, have)
    differing = int(bad.sum())
    message = (
        f"{name}: {differing:,} of {counted(bad.numel(), 'element')} "
        f"{'differs' if differing == 1 else 'differ'}; the first at "
        f"{_at(index, where)}: expected {shown_want}, got {shown_have}"
    )
    if not got.dtype.is_floating_point:
        return message + "." + precision
    diff = abs(have - want)
    message += f" (they differ by {diff:.2g})."
    if not precision and atol == rtol == 0 and _only_rounding(got[bad], expected[bad]):
        message += (
            f" Every difference is {expected.dtype} rounding (at most {_ROUNDING_ULPS} units in the "
            "last place) and "
            "this check is exact: an extra arithmetic step, or the same operations in another "
            "order, rounds differently (x * 3 / 3 is not always x). Compute as the reference "
            "does; an answer that only moves values (indexing, view, reshape, expand, cat) "
            "needs no arithmetic at all."
        )
    return message + precision


def _at(index: tuple, where: Callable[[tuple], str] | None) -> str:
    return where(index) if where else f"index {index}"


def _value(x: torch.Tensor) -> str:
    return short_number(x.item())


_ROUNDING_ULPS = 4  # differences up to this many units in the last place are called rounding


def _only_rounding(got: torch.Tensor, expected: torch.Tensor) -> bool:
    """Whether every (finite) pair differs by at most ``_ROUNDING_ULPS`` units in the last place."""
    finite = got.isfinite().all() and expected.isfinite().all()
    limit = _ROUNDING_ULPS * torch.finfo(expected.dtype).eps * expected.abs()
    return bool(finite and ((got - expected).abs() <= limit).all())


def _as_number(got: Any) -> tuple[Any, str | None]:
    """(value, None) for a Python/numpy number or a 0-d tensor; (None, why not) otherwise."""
    if isinstance(got, bool) or (isinstance(got, torch.Tensor) and got.dtype == torch.bool):
        return None, "a boolean"
    if isinstance(got, int | float):
        return got, None
    if isinstance(got, torch.Tensor) or is_numpy(got):
        size = int(getattr(got, "size", 0) if is_numpy(got) else got.numel())
        if getattr(got, "ndim", None) == 0 and size == 1:
            return got.item(), None
        return None, f"{size} element" + ("" if size == 1 else "s")
    return None, None


def _number_tolerance(got: Any) -> tuple[float, float]:
    """The tolerance of a number's own precision: 0 for integers, the float's rounding otherwise."""
    dtype = getattr(got, "dtype", None)
    if isinstance(dtype, torch.dtype):
        return dtype_tolerance(dtype) if dtype.is_floating_point else (0.0, 0.0)
    if isinstance(got, float):
        return dtype_tolerance(torch.float64)
    if is_numpy(got) and getattr(dtype, "kind", "") == "f":
        narrow = {2: torch.float16, 4: torch.float32}
        return dtype_tolerance(narrow.get(dtype.itemsize, torch.float64))
    return 0.0, 0.0


def _compare_number(got, expected, atol, rtol, name, values=True) -> str | None:
    value, why_not = _as_number(got)
    want = f"{'an int' if isinstance(expected, int) else 'a number'} ({short_number(expected)})"
    if value is None:
        problem = f"{name} should be {want}, got {describe(got)}"
        if why_not and why_not[0].isdigit():
            return problem + f" ({why_not}); return one number, e.g. with .item() or a sum."
        if isinstance(got, str):
            return problem + ": return the number itself, not its text."
        return problem + "."
    if not values:
        return None
    value_atol, value_rtol = _number_tolerance(got)
    atol, rtol = max(atol, value_atol), max(rtol, value_rtol)
    if value != value or abs(value) == float("inf"):
        return f"{name} is {value}, expected {short_number(expected)}."
    if abs(value - expected) > atol + rtol * abs(expected):
        shown_want, shown_have = _numbers(expected, value)
        return f"{name}: expected {shown_want}, got {shown_have} ({_difference(expected, value)})."
    return None
