"""Naming a value in a message: ``a float32 tensor of shape (2, 3)``, ``None``, ``a str '12'``.

:func:`describe` names one value, :func:`describe_args` the arguments a check passed;
:func:`short_number` writes a number as the messages show it. The messages of
:mod:`demos.exercises.compare`, :mod:`demos.exercises.hints` and the chapters' own checks use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["KINDS", "describe", "describe_args", "dtype_kind", "is_numpy", "short_number"]


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
