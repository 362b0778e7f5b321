"""FlashAttention's idea from scratch: attention computed block by block with an online softmax.

Masked attention builds the whole ``(t, s)`` score matrix, so its memory grows with the square of
the length. Cutting queries and keys into blocks and keeping, per query, a running maximum ``m``, a
running sum ``ell`` and an unnormalised output ``acc`` (each rescaled when a larger maximum arrives)
gives the same result with only one ``(block, block)`` tile of scores alive at a time: the tiling of
FlashAttention [dao2022flashattention]. This is the algorithm, in PyTorch; the speed of FlashAttention
comes from running it inside one GPU kernel, which this module does not do.

Axes:
    b  batch
    t  query length (new tokens)
    s  key/value length (cached + new tokens), s >= t
    h  query heads
    g  key/value heads; r = h // g query heads share one
    d  head dimension
    i  queries in one block, j  keys in one block (both <= block_size)

References:
    dao2022flashattention  FlashAttention: exact attention computed in tiles.
    flashattn_readme       the causal mask aligned bottom-right when t < s (flash-attn >= 2.1).

Reference implementation:
    equal to ``demos.layers.attention.attention`` (transformers==5.23.0,
    models/llama/modeling_llama.py::eager_attention_forward) and to
    ``torch.nn.functional.scaled_dot_product_attention`` (torch==2.13.0). Deviation from
    FlashAttention: the backward pass is autograd's, which keeps every tile's probabilities;
    FlashAttention's own backward pass recomputes them instead (unverified here: we read only the
    paper's abstract).
"""

from __future__ import annotations

import math

import torch

from demos.validation import check_finite_number, check_positive_int, check_qkv


def online_softmax_update(
    m: torch.Tensor,
    ell: torch.Tensor,
    acc: torch.Tensor,
    scores: torch.Tensor,
    v: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fold one block of keys into the running statistics of each query.

    Args:
        m: ``(..., i, 1)`` running maximum of the scores seen so far (``-inf`` before any).
        ell: ``(..., i, 1)`` running sum of ``exp(score - m)``.
        acc: ``(..., i, d)`` running sum of ``exp(score - m) * value``.
        scores: ``(..., i, j)`` this block's scores, ``-inf`` where a key is hidden.
        v: ``(..., j, d)`` this block's values.

    Returns:
        ``(m, ell, acc)`` after the block. ``acc / ell`` is then the attention output over every key
        seen so far.
    """
    m_new = torch.maximum(m, scores.amax(dim=-1, keepdim=True))  # (..., i, 1)
    p = torch.exp(scores - m_new)  # (..., i, j): this block's weights, not yet normalised
    alpha = torch.exp(m - m_new)  # (..., i, 1): how much the old maximum overstated the new one
    ell = alpha * ell + p.sum(dim=-1, keepdim=True)  # (..., i, 1)
    acc = alpha * acc + p @ v  # (..., i, d)
    return m_new, ell, acc


def tiled_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = True,
    block_size: int = 64,
    scale: float | None = None,
) -> torch.Tensor:
    """Scaled dot-product attention, block by block: equal to :func:`demos.layers.attention.attention`.

    Queries and keys are cut into blocks of ``block_size``. For each query block, the key blocks are
    visited in order and folded in by :func:`online_softmax_update`; with ``causal``, key blocks
    wholly after the block's last query are skipped and the block on the diagonal is masked. The
    largest intermediate is one ``(b, g, r, block_size, block_size)`` tile of scores, whatever
    ``t`` and ``s``.

    Args:
        q: queries ``(b, h, t, d)``: the last ``t`` of the ``s`` positions (decoding with a cache
            when ``t < s``: query ``i`` sits at position ``s - t + i``).
        k, v: keys and values ``(b, g, s, d)``, ``h`` divisible by ``g``; the ``h // g`` query
            heads of a group read its key/value head without copying it.
        causal: hide keys after each query's position.
        block_size: queries and keys per block (a positive integer).
        scale: multiplies the scores; defaults to ``1 / sqrt(d)``.

    Returns:
        ``(b, h, t, d)`` in ``q``'s dtype; computed in ``promote_types(q.dtype, float32)`` (fp64 stays
        fp64).

    Raises:
        ValueError: what :func:`~demos.layers.attention.attention` refuses (``h % g != 0``,
            ``s < t``, batch or head_dim mismatch, q/k/v not of one floating dtype or device, not
            4-D), ``block_size`` not a positive integer, ``scale`` not a finite number.
    """
    check_qkv(q, k, v)
    check_positive_int("block_size", block_size)
    if scale is not None:
        check_finite_number("scale", scale)
    (b, h, t, d), (_, g, s, _) = q.shape, k.shape
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    dtype, work = q.dtype, torch.promote_types(q.dtype, torch.float32)
    q = q.to(work).view(b, g, h // g, t, d)  # (b, g, r, t, d): query heads grouped by kv head
    k = k.to(work)[:, :, None]  # (b, g, 1, s, d): broadcast over the r heads, no copy
    v = v.to(work)[:, :, None]  # (b, g, 1, s, d)
    offset = s - t  # absolute position of query 0
    blocks = []
    for i0 in range(0, t, block_size):
        i1 = min(i0 + block_size, t)
        q_blk = q[..., i0:i1, :] * scale  # (b, g, r, i, d)
        m = q.new_full((*q_blk.shape[:-1], 1), -math.inf)  # (b, g, r, i, 1)
        ell = q.new_zeros(m.shape)
        acc = torch.zeros_like(q_blk)  # (b, g, r, i, d)
        last = offset + i1 if causal else s  # keys at or past `last` are after every query here
        for j0 in range(0, last, block_size):  # key block 0 holds key 0, which every query sees
            j1 = min(j0 + block_size, last)
            scores = q_blk @ k[..., j0:j1, :].transpose(-1, -2)  # (b, g, r, i, j)
            if causal and j1 > offset + i0 + 1:  # a key after some query of the block: mask
                q_pos = torch.arange(offset + i0, offset + i1, device=q.device)[:, None]  # (i, 1)
                k_pos = torch.arange(j0, j1, device=q.device)[None, :]  # (1, j)
                scores = scores.masked_fill(k_pos > q_pos, -math.inf)  # (b, g, r, i, j)
            m, ell, acc = online_softmax_update(m, ell, acc, scores, v[..., j0:j1, :])
        blocks.append(acc / ell)  # (b, g, r, i, d): the softmax's denominator, applied once
    out = torch.cat(blocks, dim=-2)  # (b, g, r, t, d)
    return out.reshape(b, h, t, d).to(dtype)  # (b, h, t, d)
