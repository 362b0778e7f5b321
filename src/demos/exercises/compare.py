"""Comparing a learner's answer with the reference value and saying how they differ.

:func:`compare` takes what came back and what was expected (a tensor, a tuple of tensors, or a
number) and returns ``None`` when they agree or one sentence saying where they first differ;
:func:`describe` names a value for a message. :mod:`demos.exercises.core` runs the answers and
turns these sentences into a :class:`~demos.exercises.core.Check`.
"""

from __future__ import annotations

import itertools
import math
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


def _number(x: Any, digits: int = 6) -> str:
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return repr(x)


def _numbers(expected: Any, got: Any) -> tuple[str, str]:
    """Both numbers with as many significant digits (6 or more) as it takes to tell them apart."""
    digits = 6
    if isinstance(expected, float) or isinstance(got, float):
        while digits < 17 and f"{float(expected):.{digits}g}" == f"{float(got):.{digits}g}":
            digits += 1
    return _number(expected, digits), _number(got, digits)


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


_SHOWN_IN_FULL = 80  # a list, tuple, dict or set whose repr is this short is shown as it is


def describe_args(names: Sequence[str], args: tuple) -> str:
    """The inputs of a case in words: ``x of shape (1, 2, 3, 4), n_rep = 2``; a small container
    of plain values in full (``per_subject = {'law': [1.0, 0.0], 'physics': [1.0]}``)."""
    parts = []
    for name, a in zip(names, args, strict=False):
        if isinstance(a, torch.Tensor) and a.dim() == 0:
            parts.append(f"{name} = {_number(a.item())}")
        elif isinstance(a, torch.Tensor):
            dtype = "" if a.dtype == torch.float32 else f" ({str(a.dtype).removeprefix('torch.')})"
            parts.append(f"{name} of shape {tuple(a.shape)}{dtype}")
        elif isinstance(a, int | float | bool) or a is None:
            parts.append(f"{name} = {_number(a)}")
        elif _plain(a) and len(repr(a)) <= _SHOWN_IN_FULL:
            parts.append(f"{name} = {a!r}")
        else:
            parts.append(f"{name} = {describe(a)}")
    return ", ".join(parts)


def _plain(value: Any) -> bool:
    """Whether ``value`` is built of numbers, strings and None only (its repr reads as code)."""
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return all(_plain(v) for v in value)
    return False


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
        problem = _compare_shapes(tuple(got.shape), tuple(expected.shape), name)
        hint = _rearranged(got, expected, atol, rtol) or _copies_on_another_axis(got, expected)
        if hint:  # the hint says more than the generic advice on the axes
            problem = problem.replace(
                " It has the right number of elements: check the order of the axes.", ""
            )
            return f"{problem} {hint}"
        return problem
    if _kind(got.dtype) != _kind(expected.dtype):
        return (
            f"{name} is {describe(got)}; expected a {_KINDS[_kind(expected.dtype)]} "
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
    if (
        not precision
        and got.dtype.is_floating_point
        and not _only_rounding(got[bad], expected[bad])
    ):
        precision = _rounded_through_narrower(got, expected, atol, rtol)
    if order := _tiled_or_repeated(got, expected, atol, rtol):
        precision = f" {order}{precision}"
    index = tuple(int(i) for i in bad.nonzero()[0])
    want, have = expected[index].item(), got[index].item()
    shown_want, shown_have = _numbers(want, have)
    message = (
        f"{name}: {int(bad.sum())} of {bad.numel()} elements differ; the first at "
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


_MAX_HINT_ELEMENTS = 1_000_000  # the value-based hints below try rearrangements; keep them cheap


def _close(a: torch.Tensor, b: torch.Tensor, atol: float, rtol: float) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.is_floating_point or b.dtype.is_floating_point:
        a, b = a.double(), b.double()
        atol, rtol = max(atol, 1e-12), max(rtol, 1e-6)  # a rearrangement moves values, exactly
        return bool(torch.isclose(a, b, atol=atol, rtol=rtol, equal_nan=True).all())
    return bool(torch.equal(a.long(), b.long()))


def _rearranged(got: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float) -> str | None:
    """A sentence when ``got`` holds the right values laid out in another shape: a reshape, a
    permutation of the axes, or a reshape followed by a permutation, gives ``expected``."""
    if got.numel() != expected.numel() or not 0 < got.numel() <= _MAX_HINT_ELEMENTS:
        return None
    if _kind(got.dtype) != _kind(expected.dtype) or expected.dim() > 5:
        return None
    shape = tuple(expected.shape)
    if got.dim() == expected.dim():
        for perm in itertools.permutations(range(got.dim())):
            if tuple(got.shape[i] for i in perm) == shape and _close(
                got.permute(perm), expected, atol, rtol
            ):
                swapped = [i for i, p in enumerate(perm) if i != p]
                how = (
                    f".transpose({swapped[0]}, {swapped[1]})"
                    if len(swapped) == 2
                    else f".permute{perm}"
                )
                return f"Its values are right, with the axes in another order: {how} fixes it."
    for perm in itertools.permutations(range(expected.dim())):
        laid_out = tuple(shape[p] for p in perm)  # the expected tensor, permuted
        inverse = tuple(perm.index(i) for i in range(len(perm)))
        if _close(got.reshape(laid_out).permute(inverse), expected, atol, rtol):
            if perm == tuple(range(len(perm))):
                return f"Its values are right in memory order: .reshape{shape} fixes it."
            return (
                f"Its values are right, laid out differently: .reshape{laid_out}"
                f".permute{inverse} fixes it."
            )
    return None


def _copies_on_another_axis(got: torch.Tensor, expected: torch.Tensor) -> str | None:
    """A sentence when one axis is k times too long and another k times too short: copies made
    along the wrong axis (repeat along the sequence instead of the heads)."""
    if got.dim() != expected.dim():
        return None
    differ = [i for i in range(got.dim()) if got.shape[i] != expected.shape[i]]
    if len(differ) != 2:
        return None
    for short, long in (differ, differ[::-1]):
        g_short, e_short = got.shape[short], expected.shape[short]
        g_long, e_long = got.shape[long], expected.shape[long]
        if g_short and e_long and e_short % g_short == 0 and g_long % e_long == 0:
            k = e_short // g_short
            if k > 1 and g_long // e_long == k:
                return (
                    f"Axis {long} is {k}x too long ({g_long}, expected {e_long}) and axis {short} "
                    f"{k}x too short ({g_short}, expected {e_short}): were the copies made along "
                    f"axis {long} instead of axis {short}?"
                )
    return None


def _tiled_or_repeated(got: torch.Tensor, expected: torch.Tensor, atol, rtol) -> str | None:
    """A sentence when, along one axis, ``got`` tiles copies (0, 1, 0, 1) where ``expected``
    repeats each entry in place (0, 0, 1, 1), or the other way round."""
    if got.numel() > _MAX_HINT_ELEMENTS or got.numel() == 0:
        return None
    for axis, size in enumerate(expected.shape):
        for r in range(2, size):
            if size % r:
                continue
            m = size // r  # m distinct entries, r copies each
            perm = torch.tensor([j * m + i for i in range(m) for j in range(r)])
            if not _close(got.index_select(axis, perm), expected, atol, rtol):
                continue
            interleaved = expected.unflatten(axis, (m, r))
            if _close(interleaved, interleaved.narrow(axis + 1, 0, 1).expand_as(interleaved), 0, 0):
                order = "tiles the copies (0, 1, 0, 1, as .repeat does)"
                wanted = "repeats each entry in place (0, 0, 1, 1, as .repeat_interleave does)"
            else:
                order = "repeats each entry in place (0, 0, 1, 1, as .repeat_interleave does)"
                wanted = "tiles the copies (0, 1, 0, 1, as .repeat does)"
            return (
                f"Along axis {axis} the answer {order}; the reference {wanted}: the same values "
                "in another order."
            )
    return None


def _rounded_through_narrower(got: torch.Tensor, expected: torch.Tensor, atol, rtol) -> str:
    """A sentence when the answer is the expected value passed through float16 or bfloat16: it
    equals ``expected`` rounded to that dtype, or every value is exactly representable in it and
    within two of its units in the last place. A wide answer that is merely a little off (a
    float32 ``exp`` where a float64 one was expected) is not representable in a narrow dtype,
    so it gets no such hint."""
    candidates = [
        narrow
        for narrow in (torch.float16, torch.bfloat16)
        if rtol < _dtype_tolerance(narrow)[1]
        and torch.finfo(narrow).eps > torch.finfo(expected.dtype).eps
        and torch.finfo(narrow).eps > torch.finfo(got.dtype).eps
    ]
    if not candidates or not (got.isfinite().all() and expected.isfinite().all()):
        return ""
    g, e = got.double(), expected.double()

    def rounded(narrow: torch.dtype) -> bool:  # exactly the expected value, rounded to narrow
        return torch.equal(g, e.to(narrow).double())

    def representable_and_close(narrow: torch.dtype) -> bool:
        if not torch.equal(g.to(narrow).double(), g):
            return False
        low_atol, low_rtol = _dtype_tolerance(narrow)
        return bool(torch.isclose(g, e, atol=max(atol, low_atol), rtol=2 * low_rtol).all())

    for test in (rounded, representable_and_close):
        for narrow in candidates:
            if test(narrow):
                dtype, low = (str(t).removeprefix("torch.") for t in (got.dtype, narrow))
                wide = str(expected.dtype).removeprefix("torch.")
                return (
                    f" The answer is {dtype}, but every difference is within {low}'s rounding: "
                    f"was a step computed in {low} (an input cast with .half() or .bfloat16(), "
                    f"or autocast)? Compute in {wide} throughout."
                )
    return ""


def _compare_shapes(got: tuple, expected: tuple, name: str) -> str:
    """Say how two shapes differ and which axes to reorder, drop, add, merge or split."""
    problem = f"{name} has shape {got}, expected {expected}."
    same_numel = math.prod(got) == math.prod(expected)
    if len(got) == len(expected):
        if same_numel:
            problem += " It has the right number of elements: check the order of the axes."
        return problem
    dimensions = "dimension" if len(got) == 1 else "dimensions"
    problem = (
        f"{name} has shape {got}, expected {expected}: {len(got)} {dimensions} instead of "
        f"{len(expected)}."
    )
    if (extra := _size_one_axes(got, expected)) is not None:
        return problem + (
            f" The answer has {_size_one(extra)}: drop {_it(extra)} with "
            f".squeeze({_dims(extra)}) (or leave out keepdim=True)."
        )
    if (missing := _size_one_axes(expected, got)) is not None:
        return problem + (
            f" The answer lacks the expected shape's {_size_one(missing)[len('an extra ') :]}: "
            f"add {_it(missing)} with .unsqueeze(dim) (or keepdim=True)."
        )
    if not same_numel:
        return problem
    if (merge := _groups(got, expected)) is not None:
        (start, stop), j = merge
        return problem + (
            f" It has the right number of elements: {_axes(range(start, stop))} "
            f"{got[start:stop]} of the answer should be one axis of size {expected[j]}: merge "
            f"them with .reshape or .flatten({start}, {stop - 1})."
        )
    if (split := _groups(expected, got)) is not None:
        (start, stop), j = split
        return problem + (
            f" It has the right number of elements: axis {j} (size {got[j]}) of the answer "
            f"should be {stop - start} axes {expected[start:stop]}; split it with .reshape."
        )
    return problem + " It has the right number of elements: reshape it to the expected shape."


def _size_one(axes: list[int]) -> str:
    if len(axes) == 1:
        return f"an extra size-1 axis {axes[0]}"
    return f"extra size-1 {_axes(axes)}"


def _it(axes: list[int]) -> str:
    return "it" if len(axes) == 1 else "them"


def _dims(axes: list[int]) -> str:
    return str(axes[0]) if len(axes) == 1 else str(tuple(axes))


def _axes(axes) -> str:
    axes = [str(a) for a in axes]
    if len(axes) == 1:
        return f"axis {axes[0]}"
    return f"axes {', '.join(axes[:-1])} and {axes[-1]}"


def _size_one_axes(longer: tuple, shorter: tuple) -> list[int] | None:
    """The axes of ``longer`` that are size 1 and absent from ``shorter`` (None when not so)."""
    if len(longer) <= len(shorter):
        return None
    extra, j = [], 0
    for i, size in enumerate(longer):
        if j < len(shorter) and size == shorter[j]:
            j += 1
        elif size == 1:
            extra.append(i)
        else:
            return None
    return extra if j == len(shorter) else None


def _groups(longer: tuple, shorter: tuple) -> tuple[tuple[int, int], int] | None:
    """The first run of 2+ consecutive axes of ``longer`` whose product is one axis of
    ``shorter``, as ((start, stop), that axis), when ``longer`` folds into ``shorter`` so."""
    if len(longer) <= len(shorter) or 0 in longer:
        return None
    runs, i = [], 0
    for j, size in enumerate(shorter):
        start, product = i, 1
        while i < len(longer) and (product < size or i == start):
            product *= longer[i]
            i += 1
        if product != size:
            return None
        runs.append(((start, i), j))
    if i != len(longer):
        return None
    return next((run for run in runs if run[0][1] - run[0][0] > 1), None)


def _at(index: tuple, where: Callable[[tuple], str] | None) -> str:
    return where(index) if where else f"index {index}"


def _value(x: torch.Tensor) -> str:
    return _number(x.item())


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
        shown_want, shown_have = _numbers(expected, value)
        return f"{name}: expected {shown_want}, got {shown_have} ({_difference(expected, value)})."
    return None


# ---------------------------------------------------------------------------- running answers
