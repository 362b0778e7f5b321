"""Sliding-window attention made cheap for a whole prompt: a banded attention.

With a window of ``W`` keys, a query never looks further back than ``W - 1`` positions
[jiang2023mistral], so a whole prompt needs only the scores inside a band of width ``W``
(``O(t * W)`` memory instead of the ``O(t * s)`` of a mask) [child2019sparse].

Axes:
    b  batch
    t  query length (new tokens)
    s  key/value length (cached + new tokens), s >= t
    h  query heads
    g  key/value heads; r = h // g query heads share one
    d  head dimension
    n  number of query blocks, each of ``block`` queries
    w  keys one query block can see: ``block + window - 1``

References:
    jiang2023mistral  Mistral 7B, Section 2 (sliding window attention).
    child2019sparse   sparse (banded) attention patterns.

Reference implementation:
    transformers==5.23.0, models/mistral/modeling_mistral.py::MistralModel (the mask); equal to
    ``demos.layers.attention.attention(q, k, v, window=W)``.
    Deviation: transformers lets a query see ``W`` keys, itself included; mistral-src's prefill
    mask (``triu(..., diagonal=-W)``) lets it see ``W + 1``. We follow transformers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from demos.validation import check_finite_number, check_positive_int, check_qkv


def banded_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    window: int,
    block: int | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """Sliding-window attention computed block by block: equal to ``attention(q, k, v, window=window)``.

    Queries are cut into blocks of ``block`` (default ``window``); each block scores only the
    ``block + window - 1`` keys it can see (its own block and the ``window - 1`` keys before).
    The score tensor is ``(b, h, t, block + window - 1)`` instead of ``(b, h, t, s)``, so memory
    grows linearly in ``t`` for a fixed window.

    Args:
        q: ``(b, h, t, d)``, the last ``t`` of the ``s`` positions.
        k, v: ``(b, g, s, d)``.
        window: keys each query sees, itself included (positive integer).
        block: queries per block (positive integer); defaults to ``window``.
        scale: multiplies the scores; defaults to ``1 / sqrt(d)``.

    Returns:
        ``(b, h, t, d)``.
    """
    check_qkv(q, k, v)
    check_positive_int("window", window)  # None is no window: use attention() for that
    block = window if block is None else block
    check_positive_int("block", block)
    (b, h, t, d), g = q.shape, k.shape[1]
    r = h // g
    if scale is not None:
        check_finite_number("scale", scale)
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    start = max(0, k.shape[2] - t - window + 1)  # keys before `start` are outside every window
    k, v = k[:, :, start:], v[:, :, start:]  # (b, g, s', d), s' - t <= window - 1
    offset = k.shape[2] - t  # position of the first query among the kept keys
    n = -(-t // block)  # ceil(t / block)
    w = block + window - 1
    front = (
        window - 1 - offset
    )  # pad keys in front so query block j sees padded keys [j*block, j*block + w)
    back = n * block - t
    k = F.pad(k, (0, 0, front, back))  # (b, g, front + s' + back, d)
    v = F.pad(v, (0, 0, front, back))
    k_blocks = k.unfold(2, w, block).transpose(
        -1, -2
    )  # (b, g, n, w, d): overlapping views, no copy
    v_blocks = v.unfold(2, w, block).transpose(-1, -2)  # (b, g, n, w, d)
    q = F.pad(q, (0, 0, 0, back)).view(b, g, r, n, block, d)  # (b, g, r, n, block, d)
    scores = torch.einsum("bgrnqd,bgnkd->bgrnqk", q, k_blocks) * scale  # (b, g, r, n, block, w)
    i = torch.arange(block, device=q.device)[:, None]  # query within its block
    m = torch.arange(w, device=q.device)[None, :]  # key within the block's span
    band = (m >= i) & (m <= i + window - 1)  # (block, w): causal and inside the window
    real = torch.arange(n, device=q.device)[:, None] * block + m >= front  # (n, w): not padding
    mask = band[None] & real[:, None]  # (n, block, w)
    scores = scores.masked_fill(~mask, float("-inf"))
    dtype = torch.promote_types(q.dtype, torch.float32)  # as attention: >= fp32, fp64 stays
    weights = torch.softmax(scores, dim=-1, dtype=dtype).to(q.dtype)
    context = torch.einsum("bgrnqk,bgnkd->bgrnqd", weights, v_blocks)  # (b, g, r, n, block, d)
    return context.reshape(b, h, n * block, d)[:, :, :t]  # (b, h, t, d)
