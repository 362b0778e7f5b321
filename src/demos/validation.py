"""Checks at the boundary of the public API: bad input fails early with a ``ValueError`` that names the
value and the rule, never with a torch error from deep inside and never with a silent wrong answer.

Every module of ``demos`` validates its arguments with these helpers, so that one kind of mistake
(a non-integer size, token ids outside the vocabulary, q/k/v that do not fit together) gets one
message everywhere.

Axes (for :func:`check_qkv`): ``b`` batch, ``h`` query heads, ``g`` key/value heads, ``t`` query
length, ``s`` key length, ``d`` head dimension.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
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


def check_attention_mask(
    attention_mask: Any, b: int, s: int, every_row_real: bool = True
) -> torch.Tensor | None:
    """``None``, or the padding mask as a ``(b, s)`` long tensor of zeros and ones; ``ValueError`` otherwise.

    The convention is transformers' ``attention_mask``: 1 (or True) for a real token, 0 (False) for
    padding. An *additive* mask (0 / -inf) or any other value is refused rather than read the wrong
    way round. ``every_row_real``: a row must hold at least one real token (a prompt cannot be empty).
    """
    if attention_mask is None:
        return None
    if not isinstance(attention_mask, torch.Tensor) or tuple(attention_mask.shape) != (b, s):
        got = (
            tuple(attention_mask.shape)
            if isinstance(attention_mask, torch.Tensor)
            else type(attention_mask).__name__
        )
        raise ValueError(f"attention_mask must have shape (b, s) = ({b}, {s}), got {got}")
    rule = "attention_mask must hold integers 0 (padding) and 1 (real token), or booleans"
    if attention_mask.dtype.is_floating_point:
        raise ValueError(
            f"{rule}, got dtype {attention_mask.dtype} (an additive 0/-inf mask reads the other way round)"
        )
    bad = (attention_mask != 0) & (attention_mask != 1)
    if bool(bad.any()):
        raise ValueError(f"{rule}, got the value {attention_mask[bad].flatten()[0].item()}")
    if every_row_real and not bool(attention_mask.any(dim=1).all()):
        raise ValueError("attention_mask: every row needs at least one real token (a 1)")
    return attention_mask.long()


def check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, fewer_keys: bool = False) -> None:
    """``ValueError`` unless ``q (b, h, t, d)``, ``k, v (b, g, s, d)`` fit together: ``h % g == 0``, ``s >= t``
    (unless ``fewer_keys``: non-causal attention, where the queries need not be the last ``t`` of
    the keys' positions), ``h, t, d, g, s >= 1``, one floating-point dtype for all three (integer
    tensors would give integer "probabilities")."""
    check_same_dtype(q=q, k=k, v=v)
    check_same_device(q=q, k=k, v=v)
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
    for axis, size in (("query heads h", h), ("query length t", t), ("head_dim d", d)):
        if size < 1:
            raise ValueError(f"{axis} ({size}) must be at least 1: q has shape {tuple(q.shape)}")
    for axis, size in (("key/value heads g", g), ("key length s", s)):
        if size < 1:
            raise ValueError(f"{axis} ({size}) must be at least 1: k has shape {tuple(k.shape)}")
    if h % g:
        raise ValueError(f"query heads h ({h}) must be divisible by key/value heads g ({g})")
    if s < t and not fewer_keys:
        raise ValueError(
            f"key length s ({s}) must be at least the query length t ({t}): causal queries are "
            "the last t of the s positions (causal=False allows fewer keys)"
        )


def check_nonnegative_int(name: str, value: Any) -> None:
    """``ValueError`` unless ``value`` is an integer >= 0 (``bool`` refused)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"{name} ({value!r}) must be a non-negative integer")


def check_finite_number(name: str, value: Any, minimum: float | None = None) -> None:
    """``ValueError`` unless ``value`` is a finite real number (not a bool, string or None), >= ``minimum``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not math.isfinite(value)
        or (minimum is not None and value < minimum)
    ):
        rule = "a finite number" + ("" if minimum is None else f" >= {minimum}")
        raise ValueError(f"{name} ({value!r}) must be {rule}")


def check_floating(**tensors: torch.Tensor) -> None:
    """``ValueError`` unless every tensor has a floating-point dtype (an integer tensor would truncate)."""
    for name, x in tensors.items():
        if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
            got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a floating-point tensor, got {got}")


def check_same_dtype(**tensors: torch.Tensor) -> None:
    """``ValueError`` unless every tensor is floating-point and all share one dtype."""
    check_floating(**tensors)
    dtypes = {name: x.dtype for name, x in tensors.items()}
    if len(set(dtypes.values())) > 1:
        raise ValueError(f"inputs must share one dtype, got {dtypes}")


def check_same_device(**tensors: torch.Tensor) -> None:
    """``ValueError`` unless every tensor lives on one device (torch's own error comes from deep inside)."""
    devices = {name: str(x.device) for name, x in tensors.items()}
    if len(set(devices.values())) > 1:
        raise ValueError(f"inputs must be on one device, got {devices}")


def check_log_probs(finite: bool = True, **tensors: torch.Tensor) -> None:
    """``ValueError`` unless each tensor holds log-probabilities: floating-point, every value <= 0, no NaN,
    and (with ``finite``) no -inf, where a loss of differences would compute ``-inf - -inf = NaN``."""
    check_floating(**tensors)
    for name, x in tensors.items():
        bad = torch.isnan(x) | (x > 0) | (torch.isinf(x) if finite else False)
        if bad.any():
            rule = "finite and <= 0" if finite else "<= 0 and not NaN"
            value = x[bad].flatten()[0].item()
            raise ValueError(f"{name} must hold log-probabilities ({rule}), got {value}")


def check_cache_update(
    k: torch.Tensor, v: torch.Tensor, held: torch.Tensor | None, name: str = "cache"
) -> None:
    """``ValueError`` unless new keys/values ``(b, g, t, d)`` fit each other and the ``held`` ``(b, g, s, d)``.

    k and v must be 4-D floating-point tensors of one shape and dtype; batch, heads and head_dim must
    match what the cache already holds (a cache belongs to one batch: reuse it with another and it
    would mix sequences).
    """
    check_same_dtype(k=k, v=v)
    if k.dim() != 4 or k.shape != v.shape:
        raise ValueError(
            f"k and v must have one shape (b, g, t, d), got {tuple(k.shape)} and {tuple(v.shape)}"
        )
    if held is not None:
        (b, g, _, d), (hb, hg, _, hd) = k.shape, held.shape
        if (b, g, d) != (hb, hg, hd):
            raise ValueError(
                f"{name} holds (b, g, d) = {(hb, hg, hd)}, got new keys with (b, g, d) = {(b, g, d)}: "
                "a cache serves one batch and one layer; start a new one"
            )
        if k.dtype != held.dtype:
            raise ValueError(f"{name} holds {held.dtype}, got new keys of {k.dtype}")


def check_state(name: str, state: torch.Tensor, shape: tuple[int, ...]) -> None:
    """``ValueError`` unless a recurrent state (Mamba's conv or ssm state) has the ``shape`` this call needs.

    For a state reused with another batch size or width: say so instead of failing inside ``torch.cat``.
    """
    if not isinstance(state, torch.Tensor) or tuple(state.shape) != tuple(shape):
        got = tuple(state.shape) if isinstance(state, torch.Tensor) else type(state).__name__
        raise ValueError(
            f"{name} state has shape {got}, this call needs {tuple(shape)}: "
            "a state serves one batch of one model; start a new one"
        )


def check_rope_theta(value: Any, name: str = "rope_theta") -> None:
    """``ValueError`` unless the RoPE base is a finite number > 1 (at 1 every angle is the position itself;
    below 1 the frequencies grow with the channel instead of falling)."""
    check_finite_number(name, value)
    if not value > 1:
        raise ValueError(f"{name} ({value!r}) must be greater than 1")
