"""Fused q/k/v projections: cutting one matrix's output into queries, keys and values.

Several families compute q, k and v with one matrix (Falcon's ``query_key_value``). The order of its
output rows is the layout this module reads.

Axes:
    b  batch
    t  tokens
    h  query heads
    g  key/value heads; r = h // g query heads share one
    d  head dimension

References:
    almazrouei2023falcon  The Falcon Series of Open Language Models, Section 4.1.

Reference implementation:
    transformers==5.23.0, models/falcon/modeling_falcon.py::FalconAttention._split_heads
"""

from __future__ import annotations

import torch


def split_fused_qkv(
    fused: torch.Tensor, num_heads: int, num_kv_heads: int, head_dim: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut the output of ``query_key_value`` into queries, keys and values.

    Falcon stores the fused projection group by group: for each of the ``g`` key/value heads, its
    ``r = h // g`` query heads, then its key head, then its value head, ``d`` rows each. One layout
    covers all three cases: Falcon-7B's multi-query layout (``[q_0 .. q_{h-1}, k, v]``) is ``g = 1``
    and the old multi-head layout (``[q_i, k_i, v_i]`` per head) is ``g = h``.

    Args:
        fused: ``(b, t, (h + 2g) * d)``.

    Returns:
        ``q (b, h, t, d)``, ``k (b, g, t, d)``, ``v (b, g, t, d)``; query head ``j`` belongs to
        key/value head ``j // r``, the order :func:`demos.layers.attention.repeat_kv` expects.
    """
    b, t, width = fused.shape
    h, g, d = num_heads, num_kv_heads, head_dim
    if width != (h + 2 * g) * d:
        raise ValueError(
            f"fused qkv width ({width}) must be (num_heads + 2 * num_kv_heads) * head_dim "
            f"= ({h} + 2 * {g}) * {d} = {(h + 2 * g) * d}"
        )
    qkv = fused.view(b, t, g, h // g + 2, d)  # (b, t, g, r + 2, d): r queries, 1 key, 1 value
    q = qkv[:, :, :, :-2].reshape(b, t, h, d).transpose(1, 2)  # (b, h, t, d)
    k = qkv[:, :, :, -2].transpose(1, 2)  # (b, g, t, d)
    v = qkv[:, :, :, -1].transpose(1, 2)  # (b, g, t, d)
    return q, k, v
