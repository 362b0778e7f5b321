"""Naming a value in a message: ``a float32 tensor of shape (2, 3)``, ``None``, ``a str '12'``.

:func:`describe` names one value, :func:`describe_args` the arguments a check passed and
:func:`in_case` the case they make; :func:`counted` writes a count with its noun (``1 case``,
``3 cases``), :func:`short_number` a number as the messages show it, and :func:`describe_error`
an exception the learner's code raised, with the line of that code that raised it. The messages
of :mod:`demos.exercises.compare`, :mod:`demos.exercises.hints` and the chapters' own checks use
them.
"""

from __future__ import annotations

import linecache
import re
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import torch

__all__ = [
    "KINDS",
    "counted",
    "describe",
    "describe_args",
    "describe_error",
    "dtype_kind",
    "in_case",
    "is_numpy",
    "short_number",
]


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and its noun, singular or plural as ``n`` asks: ``1 case``, ``3 cases``, ``0 cases``,
    ``1,024 elements``; ``plural`` where adding an s is wrong (``counted(2, "axis", "axes")``)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def is_numpy(value: Any) -> bool:
    return type(value).__module__ == "numpy"


def short_number(x: Any, digits: int = 6) -> str:
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return repr(x)


_SHOWN_IN_FULL = 80  # a list, tuple, dict or set whose repr is this short is shown as it is


def describe(value: Any) -> str:
    """A short phrase for a value: ``a float32 tensor of shape (2, 3)``, ``None``, ``a str '12'``."""
    if value is None:
        return "None"
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        article = "an" if dtype.startswith("int") else "a"
        return f"{article} {dtype} tensor of shape {tuple(value.shape)}"
    if is_numpy(value):
        shape = getattr(value, "shape", ())
        what = "a numpy array" if shape else "a numpy scalar"
        return f"{what} ({getattr(value, 'dtype', '?')}) of shape {tuple(shape)}"
    if isinstance(value, bool):
        return f"the bool {value}"
    if isinstance(value, int | float):
        return f"the {type(value).__name__} {short_number(value)}"
    if isinstance(value, str):
        text = value if len(value) <= 20 else value[:17] + "..."
        return f"a str {text!r}"
    if isinstance(value, list | tuple | dict | set):
        items = "item" if len(value) == 1 else "items"
        return f"a {type(value).__name__} of {len(value)} {items}"
    return f"a {type(value).__name__}"


def describe_args(names: Sequence[str], args: tuple) -> str:
    """The inputs of a case in words: ``x of shape (1, 2, 3, 4), n_rep = 2``; a small container
    of plain values in full (``per_subject = {'law': [1.0, 0.0], 'physics': [1.0]}``)."""
    parts = []
    for name, a in zip(names, args, strict=False):
        if isinstance(a, torch.Tensor) and a.dim() == 0:
            parts.append(f"{name} = {short_number(a.item())}")
        elif isinstance(a, torch.Tensor):
            dtype = "" if a.dtype == torch.float32 else f" ({str(a.dtype).removeprefix('torch.')})"
            parts.append(f"{name} of shape {tuple(a.shape)}{dtype}")
        elif isinstance(a, int | float | bool) or a is None:
            parts.append(f"{name} = {short_number(a)}")
        elif _plain(a) and len(repr(a)) <= _SHOWN_IN_FULL:
            parts.append(f"{name} = {a!r}")
        else:
            parts.append(f"{name} = {describe(a)}")
    return ", ".join(parts)


def in_case(case: str, names: Sequence[str], args: tuple) -> str:
    """The opening of a message about one case: ``In case 'prompt' (t = 6, s = 6)``, or only
    ``In case 'by hand'`` for a function that takes no arguments (no empty brackets)."""
    inputs = describe_args(names, args)
    return f"In case '{case}'" + (f" ({inputs})" if inputs else "")


# Where code that is not the learner's lives: this package and the libraries it runs on.
_NOT_THE_LEARNERS = tuple(
    Path(p).resolve()
    for p in {
        str(Path(__file__).resolve().parents[1]),  # demos/
        str(Path(torch.__file__).resolve().parent),
        *(sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")),
    }
)
_CELL = re.compile(r"(ipykernel_\d+[/\\]\d+\.py|<ipython-input-[\w-]+>)$")


def _cell(filename: str) -> bool:
    """Whether code comes from a notebook cell or an IPython prompt (whose lines linecache holds)."""
    return bool(_CELL.search(filename)) or (
        filename.startswith("<") and bool(linecache.getlines(filename))
    )


def _learners(filename: str) -> bool:
    if filename.startswith("<"):
        return _cell(filename)  # not <frozen ...> or <string>: no source the learner can open
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return True
    return not any(path.is_relative_to(root) for root in _NOT_THE_LEARNERS)


def _learner_frame(tb: TracebackType | None) -> TracebackType | None:
    """The innermost traceback entry in the learner's code (not in demos, torch or the standard
    library): the line the learner wrote that raised, or that called the library that raised."""
    found = None
    while tb is not None:
        if _learners(tb.tb_frame.f_code.co_filename):
            found = tb
        tb = tb.tb_next
    return found


def describe_error(error: BaseException) -> str:
    """``raised ZeroDivisionError: division by zero, at line 3 of the cell, in `scores`:
    `return q / 0```: the exception, then where the learner's code raised it (the innermost line of
    the traceback that is not in demos, torch or the standard library; a notebook cell is named
    as the cell, a file by its name), with that line's text."""
    text = f"raised {type(error).__name__}" + (f": {error}" if str(error) else "")
    entry = _learner_frame(error.__traceback__)
    if entry is None:
        return text
    filename, line = entry.tb_frame.f_code.co_filename, entry.tb_lineno
    where = "the cell" if _cell(filename) else Path(filename).name
    function = entry.tb_frame.f_code.co_name
    text += f", at line {line} of {where}"
    if not function.startswith("<"):  # not <module> or <lambda>
        text += f", in `{function}`"
    source = linecache.getline(filename, line, entry.tb_frame.f_globals).strip()
    return text + (f": `{source}`" if source else "")


def _plain(value: Any) -> bool:
    """Whether ``value`` is built of numbers, strings and None only (its repr reads as code)."""
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return all(_plain(v) for v in value)
    return False


KINDS = {"bool": "boolean", "int": "integer", "float": "floating-point", "complex": "complex"}


def dtype_kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "bool"
    if dtype.is_complex:
        return "complex"
    return "float" if dtype.is_floating_point else "int"
