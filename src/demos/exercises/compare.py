"""Comparing a learner's answer with the reference value and saying how they differ.

:func:`compare` takes what came back and what was expected (a tensor, a tuple of tensors, or a
number) and returns ``None`` when they agree or one sentence saying where they first differ;
:func:`describe` names a value for a message. :mod:`demos.exercises.core` runs the answers and
turns these sentences into a :class:`~demos.exercises.core.Check`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch


def describe(value: Any) -> str:
    """A short phrase for a value: ``a float32 tensor of shape (2, 3)``, ``None``, ``a str '12'``."""
    if value is None:
        return "None"
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        article = "an" if dtype.startswith("int") else "a"
        return f"{article} {dtype} tensor of shape {tuple(value.shape)}"
    if _is_numpy(value):
        shape = getattr(value, "shape", ())
        what = "a numpy array" if shape else "a numpy scalar"
        return f"{what} ({getattr(value, 'dtype', '?')}) of shape {tuple(shape)}"
    if isinstance(value, bool):
        return f"the bool {value}"
    if isinstance(value, int | float):
        return f"the {type(value).__name__} {_number(value)}"
    if isinstance(value, str):
        text = value if len(value) <= 20 else value[:17] + "..."
        return f"a str {text!r}"
    if isinstance(value, list | tuple | dict | set):
        items = "item" if len(value) == 1 else "items"
        return f"a {type(value).__name__} of {len(value)} {items}"
    return f"a {type(value).__name__}"


def _is_numpy(value: Any) -> bool:
    return type(value).__module__ == "numpy"


def _number(x: Any) -> str:
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:.6g}"
    return repr(x)


def describe_args(names: Sequence[str], args: tuple) -> str:
    parts = []
    for name, a in zip(names, args, strict=False):
        shown = f"shape {tuple(a.shape)}" if isinstance(a, torch.Tensor) else _number(a)
        parts.append(f"{name}: {shown}" if isinstance(a, torch.Tensor) else f"{name}={shown}")
    return ", ".join(parts)


# ---------------------------------------------------------------------------- comparing values

_KINDS = {"bool": "boolean", "int": "integer", "float": "floating-point", "complex": "complex"}


def _kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "bool"
    if dtype.is_complex:
        return "complex"
    return "float" if dtype.is_floating_point else "int"


def _dtype_tolerance(dtype: torch.dtype) -> tuple[float, float]:
    """(atol, rtol) that cover rounding a correct value to ``dtype`` (twice the unit roundoff)."""
    info = torch.finfo(dtype)
    return info.eps * info.smallest_normal, info.eps


def compare(
    got: Any,
    expected: Any,
    atol: float = 0.0,
    rtol: float = 0.0,
    name: str = "the result",
    names: Sequence[str] | None = None,
    where: Callable[[tuple], str] | None = None,
    values: bool = True,
) -> str | None:
    """Explain how ``got`` differs from ``expected``, or return None when it is an equal answer.

    ``expected`` is a tensor, a tuple (of tensors or numbers, named by ``names``) or a number.
    ``where`` turns a tensor index into words (``query 2, key 0``); ``values=False`` compares
    only types, shapes and dtypes.
    """
    if isinstance(expected, tuple):
        return _compare_tuple(got, expected, atol, rtol, names, where)
    if isinstance(expected, torch.Tensor):
        return _compare_tensor(got, expected, atol, rtol, name, where, values)
    return _compare_number(got, expected, atol, rtol, name, values)


def _compare_tuple(got, expected, atol, rtol, names, where) -> str | None:
    names = list(names or [f"item {i}" for i in range(len(expected))])
    want = f"a tuple of {len(expected)} ({', '.join(names)})"
    if not isinstance(got, tuple | list) or len(got) != len(expected):
        return f"expected {want}, got {describe(got)}."
    for values in (False, True):  # every item's type and shape first, then the values
        for item, want_item, item_name in zip(got, expected, names, strict=True):
            problem = compare(item, want_item, atol, rtol, item_name, where=where, values=values)
            if problem and isinstance(got, list) and not values:
                return f"expected {want}, got {describe(got)}: {problem}"
            if problem:
                return problem
    return None


def _compare_tensor(got, expected, atol, rtol, name, where, values=True) -> str | None:
    if not isinstance(got, torch.Tensor):
        problem = f"{name} should be {describe(expected)}, got {describe(got)}."
        if got is None:
            return problem + " Did the function forget to `return`?"
        if _is_numpy(got) or isinstance(got, list | tuple):
            try:
                as_tensor = torch.as_tensor(got)
            except Exception:
                return problem
            if _compare_tensor(as_tensor, expected, atol, rtol, name, where) is None:
                return problem + " Its values are right: return a torch tensor (torch.as_tensor)."
        return problem
    got, expected = got.detach().cpu(), expected.detach().cpu()
    if got.shape != expected.shape:
        problem = f"{name} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}."
        if got.numel() == expected.numel():
            problem += " It has the right number of elements: check the order of the axes."
        return problem
    if _kind(got.dtype) != _kind(expected.dtype):
        return (
            f"{name} is {describe(got)}; expected a {_KINDS[_kind(expected.dtype)]} "
            f"tensor ({expected.dtype})."
        )
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
                f"{name} has {int(nan.sum())} NaN of {nan.numel()} elements (the first at "
                f"{_at(index, where)}, where {_value(expected[index])} was expected). NaN comes "
                "from 0/0, inf - inf or the log of a negative number."
            )
        if torch.finfo(got.dtype).eps > torch.finfo(expected.dtype).eps:  # narrower: its tolerance
            low_atol, low_rtol = _dtype_tolerance(got.dtype)
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
    index = tuple(int(i) for i in bad.nonzero()[0])
    return (
        f"{name}: {int(bad.sum())} of {bad.numel()} elements differ; the first at "
        f"{_at(index, where)}: expected {_value(expected[index])}, got {_value(got[index])}."
        + precision
    )


def _at(index: tuple, where: Callable[[tuple], str] | None) -> str:
    return where(index) if where else f"index {index}"


def _value(x: torch.Tensor) -> str:
    return _number(x.item())


def _as_number(got: Any) -> tuple[Any, str | None]:
    """(value, None) for a Python/numpy number or a 0-d tensor; (None, why not) otherwise."""
    if isinstance(got, bool) or (isinstance(got, torch.Tensor) and got.dtype == torch.bool):
        return None, "a boolean"
    if isinstance(got, int | float):
        return got, None
    if isinstance(got, torch.Tensor) or _is_numpy(got):
        size = int(getattr(got, "size", 0) if _is_numpy(got) else got.numel())
        if getattr(got, "ndim", None) == 0 and size == 1:
            return got.item(), None
        return None, f"{size} element" + ("" if size == 1 else "s")
    return None, None


def _number_tolerance(got: Any) -> tuple[float, float]:
    """The tolerance of a number's own precision: 0 for integers, the float's rounding otherwise."""
    dtype = getattr(got, "dtype", None)
    if isinstance(dtype, torch.dtype):
        return _dtype_tolerance(dtype) if dtype.is_floating_point else (0.0, 0.0)
    if isinstance(got, float):
        return _dtype_tolerance(torch.float64)
    if _is_numpy(got) and getattr(dtype, "kind", "") == "f":
        narrow = {2: torch.float16, 4: torch.float32}
        return _dtype_tolerance(narrow.get(dtype.itemsize, torch.float64))
    return 0.0, 0.0


def _compare_number(got, expected, atol, rtol, name, values=True) -> str | None:
    value, why_not = _as_number(got)
    want = f"{'an int' if isinstance(expected, int) else 'a number'} ({_number(expected)})"
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
        return f"{name} is {value}, expected {_number(expected)}."
    if abs(value - expected) > atol + rtol * abs(expected):
        ratio = f" ({value / expected:.3g}x the expected value)" if expected else ""
        return f"{name}: expected {_number(expected)}, got {_number(value)}{ratio}."
    return None


# ---------------------------------------------------------------------------- running answers
