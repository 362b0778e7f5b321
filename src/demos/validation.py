"""Checks at the boundary of the public API: bad input fails early with a ``ValueError`` that names the
value and the rule, never with a torch error from deep inside and never with a silent wrong answer.

Every module of ``demos`` validates its arguments with these helpers, so that one kind of mistake
(a non-integer size, token ids outside the vocabulary, q/k/v that do not fit together) gets one
message everywhere.

Axes (for :func:`check_qkv`): ``b`` batch, ``h`` query heads, ``g`` key/value heads, ``t`` query
length, ``s`` key length, ``d`` head dimension.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import torch


def check_positive_int(name: str, value: Any) -> None:
    """``ValueError`` unless ``value`` is an integer >= 1 (``bool`` is refused: ``True`` is not a size)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} ({value!r}) must be a positive integer")


def check_window(window: Any) -> None:
    """``ValueError`` unless ``window`` is ``None`` (no window) or a positive integer."""
    if window is not None:
        check_positive_int("window", window)


def check_token_ids(input_ids: torch.Tensor, vocab_size: int, shape: str = "(b, t)") -> None:
    """``ValueError`` unless ``input_ids`` is a non-empty integer tensor of ``shape``, ids in ``[0, vocab_size)``.

    ``shape`` is written as in the docstrings, e.g. ``"(b, t)"`` or ``"(b,)"``; only its number of axes is checked.
    """
    dims = len([axis for axis in shape.strip("()").split(",") if axis.strip()])  # "(b, t)" -> 2
    if (
        not isinstance(input_ids, torch.Tensor)
        or input_ids.dim() != dims
        or input_ids.dtype not in (torch.int32, torch.int64)
    ):
        got = (
            f"{input_ids.dtype} {tuple(input_ids.shape)}"
            if isinstance(input_ids, torch.Tensor)
            else type(input_ids).__name__
        )
        raise ValueError(f"input_ids must be an integer tensor of shape {shape}, got {got}")
    if input_ids.numel() == 0:
        raise ValueError(
            f"input_ids must hold at least one token, got shape {tuple(input_ids.shape)}"
        )
    lo, hi = int(input_ids.min()), int(input_ids.max())
    if lo < 0 or hi >= vocab_size:
        raise ValueError(f"token ids must lie in [0, {vocab_size}), got values from {lo} to {hi}")


def check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """``ValueError`` unless ``q (b, h, t, d)``, ``k, v (b, g, s, d)`` fit together: ``h % g == 0``, ``s >= t``."""
    for name, x in (("q", q), ("k", k), ("v", v)):
        if x.dim() != 4:
            raise ValueError(
                f"{name} must have 4 dims (b, heads, length, d), got shape {tuple(x.shape)}"
            )
    if k.shape != v.shape:
        raise ValueError(
            f"k and v must have the same shape, got {tuple(k.shape)} and {tuple(v.shape)}"
        )
    (b, h, t, d), (bk, g, s, dk) = q.shape, k.shape
    if b != bk:
        raise ValueError(f"batch sizes differ: q has {b}, k and v have {bk}")
    if d != dk:
        raise ValueError(f"head_dim differs: q has {d}, k and v have {dk}")
    if h % g:
        raise ValueError(f"query heads h ({h}) must be divisible by key/value heads g ({g})")
    if s < t:
        raise ValueError(f"key length s ({s}) must be at least the query length t ({t})")
