"""Why a wrong answer is wrong, read from its shape or its values: the hints a message ends with.

:func:`shape_difference` says how two shapes differ (which axes to reorder, drop, add, merge or
split). The value-based hints try what a learner most often did instead: the right values laid out
in another shape (:func:`rearranged`), copied along another axis (:func:`copies_on_another_axis`),
tiled or repeated (:func:`tiled_or_repeated`), or rounded through a narrower dtype
(:func:`rounded_through_narrower`). :func:`demos.exercises.compare.compare` calls them.
"""

from __future__ import annotations

import itertools
import math

import torch

from demos.exercises.describe import dtype_kind

__all__ = [
    "copies_on_another_axis",
    "dtype_tolerance",
    "rearranged",
    "rounded_through_narrower",
    "shape_difference",
    "tiled_or_repeated",
]


def dtype_tolerance(dtype: torch.dtype) -> tuple[float, float]:
    """(atol, rtol) that cover rounding a correct value to ``dtype`` (twice the unit roundoff)."""
    info = torch.finfo(dtype)
    return info.eps * info.smallest_normal, info.eps


_MAX_HINT_ELEMENTS = 1_000_000  # the value-based hints below try rearrangements; keep them cheap


def _close(a: torch.Tensor, b: torch.Tensor, atol: float, rtol: float) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.is_floating_point or b.dtype.is_floating_point:
        a, b = a.double(), b.double()
        atol, rtol = max(atol, 1e-12), max(rtol, 1e-6)  # a rearrangement moves values, exactly
        return bool(torch.isclose(a, b, atol=atol, rtol=rtol, equal_nan=True).all())
    return bool(torch.equal(a.long(), b.long()))


def rearranged(got: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float) -> str | None:
    """A sentence when ``got`` holds the right values laid out in another shape: a reshape, a
    permutation of the axes, or a reshape followed by a permutation, gives ``expected``."""
    if got.numel() != expected.numel() or not 0 < got.numel() <= _MAX_HINT_ELEMENTS:
        return None
    if dtype_kind(got.dtype) != dtype_kind(expected.dtype) or expected.dim() > 5:
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


def copies_on_another_axis(got: torch.Tensor, expected: torch.Tensor) -> str | None:
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


def tiled_or_repeated(got: torch.Tensor, expected: torch.Tensor, atol, rtol) -> str | None:
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


def rounded_through_narrower(got: torch.Tensor, expected: torch.Tensor, atol, rtol) -> str:
    """A sentence when the answer is the expected value passed through float16 or bfloat16: it
    equals ``expected`` rounded to that dtype, or every value is exactly representable in it and
    within two of its units in the last place. A wide answer that is merely a little off (a
    float32 ``exp`` where a float64 one was expected) is not representable in a narrow dtype,
    so it gets no such hint."""
    candidates = [
        narrow
        for narrow in (torch.float16, torch.bfloat16)
        if rtol < dtype_tolerance(narrow)[1]
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
        low_atol, low_rtol = dtype_tolerance(narrow)
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


def shape_difference(got: tuple, expected: tuple, name: str) -> str:
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
