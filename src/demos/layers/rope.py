"""Rotary position embeddings (RoPE) in the split-halves convention of transformers.

RoPE turns a position into a rotation: channel pair ``(i, i + d/2)`` of a query or key
vector at position ``m`` is rotated by the angle ``m * theta_i`` with
``theta_i = base ** (-2i / d)``. The dot product of a rotated query and key then depends
only on the distance between their positions [su2021roformer]. Meta's original Llama code
rotates *adjacent* pairs ``(2i, 2i + 1)``; transformers permutes the q/k projection rows
when it converts checkpoints and rotates *halves* instead. We follow transformers.

Axes:
    b  batch
    h  heads (query heads or key/value heads: RoPE treats them alike)
    t  positions
    d  head dimension (even); the d/2 frequencies are indexed by i

References:
    su2021roformer  RoFormer: Enhanced Transformer with Rotary Position Embedding, Eq. (34).

Reference implementation:
    transformers==5.23.0, models/llama/modeling_llama.py::LlamaRotaryEmbedding,
    ::rotate_half and ::apply_rotary_pos_emb
"""

from __future__ import annotations

from numbers import Integral

import torch

from demos.validation import check_floating, check_rope_theta, check_same_device


def rope_inv_freq(
    head_dim: int, base: float = 10000.0, device: torch.device | None = None
) -> torch.Tensor:
    """The d/2 angular frequencies ``theta_i = base ** (-2i / d)``, float32, shape ``(d/2,)``."""
    if (
        isinstance(head_dim, bool)
        or not isinstance(head_dim, Integral)
        or head_dim < 2
        or head_dim % 2
    ):
        raise ValueError(f"head_dim ({head_dim!r}) must be a positive even integer")
    check_rope_theta(base, "base")
    # Computed on the CPU, then moved: transformers builds this buffer on the CPU too, and a GPU's pow
    # can differ from the CPU's by one ulp, which at position 4096 moves an angle by ~1e-4 rad.
    i2 = torch.arange(0, head_dim, 2, dtype=torch.float32)  # (d/2,): 0, 2, 4, ...
    return (1.0 / (base ** (i2 / head_dim))).to(device)


def rope_cos_sin(
    positions: torch.Tensor,
    head_dim: int,
    base: float = 10000.0,
    dtype: torch.dtype = torch.float32,
    inv_freq: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosines and sines of the rotation angles for integer ``positions``.

    Args:
        positions: integer positions, shape ``(t,)`` or ``(b, t)``.
        head_dim: the number of rotated channels (even): ``d``, or fewer for partial rotary
            (GPT-NeoX's ``rotary_pct``), where :func:`apply_rope` leaves the rest unrotated.
        base: the RoPE base (Llama 2: 10000).
        dtype: dtype of the returned tables (floating). Angles are computed in float32, as in
            transformers, because ``m * theta_i`` loses precision in half precision at large ``m``;
            for float64 tables in float64 (from the same float32 frequencies), so that the rotation
            stays a rotation to float64 precision.
        inv_freq: frequencies to use instead of ``rope_inv_freq(head_dim, base)``, shape
            ``(head_dim/2,)``: how scaled variants (Llama 3's, LongRoPE) plug in their own.

    Returns:
        ``(cos, sin)``, each of shape ``positions.shape + (d,)``: the d/2 angles repeated twice,
        once for each half of the head.
    """
    if not isinstance(positions, torch.Tensor):
        raise ValueError(f"positions must be an integer tensor, got {type(positions).__name__}")
    if positions.dtype.is_floating_point or positions.dtype == torch.bool:
        raise ValueError(f"positions must be an integer tensor, got dtype {positions.dtype}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype ({dtype!r}) must be a floating-point dtype for cos/sin tables")
    work = torch.promote_types(dtype, torch.float32)  # fp32 as transformers; fp64 tables stay fp64
    if inv_freq is None:
        inv_freq = rope_inv_freq(head_dim, base, device=positions.device)
    elif not isinstance(inv_freq, torch.Tensor) or inv_freq.shape != (head_dim // 2,):
        shape = (
            tuple(inv_freq.shape) if isinstance(inv_freq, torch.Tensor) else type(inv_freq).__name__
        )
        raise ValueError(
            f"inv_freq must have shape ({head_dim // 2},) = (head_dim/2,), got {shape}"
        )
    inv_freq = inv_freq.to(positions.device, work)  # (d/2,)
    angles = positions[..., None].to(work) * inv_freq  # (..., t, d/2): m * theta_i
    angles = torch.cat(
        (angles, angles), dim=-1
    )  # (..., t, d): same angle for channel i and i + d/2
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``(x1, x2) -> (-x2, x1)`` on the two halves of the last axis: a 90-degree turn of each pair.

    ``ValueError`` unless ``x`` is a tensor whose last axis has even length (an odd one has no
    pairs: ``chunk`` would split it unevenly and the result is no rotation).
    """
    if not isinstance(x, torch.Tensor) or x.dim() == 0 or x.shape[-1] % 2:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(
            f"x's last axis must have even length (pairs of channels to rotate), got shape {got}"
        )
    x1, x2 = x.chunk(2, dim=-1)  # (..., d/2) each
    return torch.cat((-x2, x1), dim=-1)  # (..., d)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate queries or keys by their positions' angles.

    Args:
        x: ``(b, h, t, d)`` queries or keys.
        cos, sin: from :func:`rope_cos_sin`, shape ``(t, r)`` (shared by the batch) or ``(b, t, r)``
            with ``r = d`` or, for partial rotary (GPT-NeoX, Persimmon, Phi), an even ``r < d``.

    Returns:
        ``x * cos + rotate_half(x) * sin``, shape ``(b, h, t, d)``; in 2-D coordinates, each pair
        ``(x_i, x_{i+d/2})`` becomes ``(x_i cos - x_{i+d/2} sin, x_{i+d/2} cos + x_i sin)``. With
        ``r < d`` only the first ``r`` channels turn (pairs ``(i, i + r/2)``); the other ``d - r``
        pass through unchanged.

    Reference implementation: transformers==5.23.0,
    models/gpt_neox/modeling_gpt_neox.py::apply_rotary_pos_emb (the partial case).
    """
    check_floating(x=x, cos=cos, sin=sin)  # integer tables would round every cosine to -1, 0 or 1
    check_same_device(x=x, cos=cos, sin=sin)
    if x.dim() != 4:
        raise ValueError(f"x must have shape (b, h, t, d), got {tuple(x.shape)}")
    if x.shape[-1] % 2:
        raise ValueError(f"head_dim d ({x.shape[-1]}) must be even: RoPE turns channel pairs")
    t, d = x.shape[-2:]
    r = cos.shape[-1] if cos.dim() else 0  # rotated channels
    if (
        cos.shape != sin.shape
        or cos.dim() not in (2, 3)
        or cos.shape[-2] != t
        or not 0 < r <= d
        or r % 2
    ):
        raise ValueError(
            f"cos and sin must both have shape (t, r) or (b, t, r) with t = {t} and an even r <= d = {d}, "
            f"got {tuple(cos.shape)} and {tuple(sin.shape)}"
        )
    if cos.dim() == 3 and cos.shape[0] != x.shape[0]:  # would broadcast x to the tables' batch
        raise ValueError(
            f"cos and sin have batch {cos.shape[0]}, x has batch {x.shape[0]}: one table per sequence"
        )
    if cos.dim() == 3:
        cos, sin = cos[:, None], sin[:, None]  # (b, 1, t, r): broadcast over heads
    if r < d:  # partial rotary: rotate the first r channels, pass the rest through
        x_rot, x_pass = x[..., :r], x[..., r:]  # (b, h, t, r), (b, h, t, d - r)
        return torch.cat((x_rot * cos + rotate_half(x_rot) * sin, x_pass), dim=-1)  # (b, h, t, d)
    return x * cos + rotate_half(x) * sin
