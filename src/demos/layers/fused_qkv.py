"""Fused q/k/v projections: one matrix computes queries, keys and values; its row order is a layout.

Falcon, GPT-NeoX (Pythia), Persimmon and Phi-3 each compute q, k and v with one matrix. The numbers
are the same as three separate projections; what differs between families is the order of the
output rows, and cutting them the wrong way gives a model that runs and is wrong. Three layouts:

``"falcon"``    group by group: for each of the ``g`` key/value heads, its ``r = h / g`` query heads,
                then its key head, then its value head (Falcon-7B's multi-query layout is ``g = 1``).
``"gpt_neox"``  head by head ``[q_i, k_i, v_i]`` (GPT-NeoX/Pythia, Persimmon, Falcon's old multi-head
                layout); only ``g == h``. It is the falcon layout with ``g == h``.
``"phi3"``      three blocks ``[all q | all k | all v]`` (Phi-3's ``qkv_proj``).

Axes:
    b  batch
    t  tokens
    s  keys (cached + new)
    h  query heads
    g  key/value heads; r = h // g query heads share one
    d  head dimension
    c  hidden size

References:
    almazrouei2023falcon  The Falcon Series of Open Language Models, Section 4.1.

Reference implementation:
    transformers==5.23.0, models/falcon/modeling_falcon.py::FalconAttention._split_heads,
    models/gpt_neox/modeling_gpt_neox.py::GPTNeoXAttention.forward,
    models/persimmon/modeling_persimmon.py::PersimmonAttention._split_heads,
    models/phi3/modeling_phi3.py::Phi3Attention.forward
"""

from __future__ import annotations

import torch
from torch import nn

from demos.layers.attention import rotate_cache_attend
from demos.layers.kv_cache import KVCache
from demos.validation import check_positive_int

LAYOUTS = ("falcon", "gpt_neox", "phi3")


def check_fused_qkv(num_heads: int, num_kv_heads: int, head_dim: int, layout: str) -> None:
    """``ValueError`` unless the head counts and the layout fit together."""
    for name, value in (("num_heads", num_heads), ("num_kv_heads", num_kv_heads)):
        check_positive_int(name, value)
    check_positive_int("head_dim", head_dim)
    if layout not in LAYOUTS:
        raise ValueError(f"layout ({layout!r}) must be one of {LAYOUTS}")
    if num_heads % num_kv_heads:
        raise ValueError(
            f"num_heads ({num_heads}) must be divisible by num_kv_heads ({num_kv_heads})"
        )
    if layout == "gpt_neox" and num_kv_heads != num_heads:
        raise ValueError(
            f"layout 'gpt_neox' has one key/value head per query head: num_kv_heads "
            f"({num_kv_heads}) must equal num_heads ({num_heads})"
        )


def split_fused_qkv(
    fused: torch.Tensor, num_heads: int, num_kv_heads: int, head_dim: int, layout: str = "falcon"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut the output of a fused q/k/v projection into queries, keys and values.

    Args:
        fused: ``(b, t, (h + 2g) * d)``.
        num_heads, num_kv_heads, head_dim: ``h``, ``g`` (``h % g == 0``), ``d``.
        layout: ``"falcon"``, ``"gpt_neox"`` (needs ``g == h``) or ``"phi3"`` (module docstring).

    Returns:
        ``q (b, h, t, d)``, ``k (b, g, t, d)``, ``v (b, g, t, d)``; query head ``j`` belongs to
        key/value head ``j // r``, the order :func:`demos.layers.attention.repeat_kv` expects.

    Raises:
        ValueError: ``fused`` not 3-D or of the wrong width, ``g < 1``, ``h % g != 0``, an
            unknown layout, ``gpt_neox`` with ``g != h``.
    """
    check_fused_qkv(num_heads, num_kv_heads, head_dim, layout)
    if not isinstance(fused, torch.Tensor) or fused.dim() != 3:
        got = tuple(fused.shape) if isinstance(fused, torch.Tensor) else type(fused).__name__
        raise ValueError(f"fused must have shape (b, t, (h + 2g) * d), got {got}")
    b, t, width = fused.shape
    h, g, d = num_heads, num_kv_heads, head_dim
    if width != (h + 2 * g) * d:
        raise ValueError(
            f"fused qkv width ({width}) must be (num_heads + 2 * num_kv_heads) * head_dim "
            f"= ({h} + 2 * {g}) * {d} = {(h + 2 * g) * d}"
        )
    if layout == "phi3":  # [all q | all k | all v]
        q, k, v = fused.split([h * d, g * d, g * d], dim=-1)  # (b, t, h*d), 2 x (b, t, g*d)
        q, k, v = (x.view(b, t, -1, d).transpose(1, 2) for x in (q, k, v))  # (b, heads, t, d)
        return q, k, v
    # falcon and gpt_neox: group by group [q .. q, k, v]; gpt_neox is the case r = 1
    qkv = fused.view(b, t, g, h // g + 2, d)  # (b, t, g, r + 2, d): r queries, 1 key, 1 value
    q = qkv[:, :, :, :-2].reshape(b, t, h, d).transpose(1, 2)  # (b, h, t, d)
    k = qkv[:, :, :, -2].transpose(1, 2)  # (b, g, t, d)
    v = qkv[:, :, :, -1].transpose(1, 2)  # (b, g, t, d)
    return q, k, v


class FusedQKVAttention(nn.Module):
    """Causal attention with one fused q/k/v matrix, ``g`` key/value heads, RoPE and a KV cache.

    Parameter names follow Falcon, GPT-NeoX and Persimmon (``query_key_value``, ``dense``).
    The cache holds the ``g`` key/value heads the weights produce.
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        num_kv_heads: int,
        head_dim: int,
        bias: bool = False,
        layout: str = "falcon",
    ) -> None:
        super().__init__()
        check_fused_qkv(num_heads, num_kv_heads, head_dim, layout)
        check_positive_int("hidden_size", hidden_size)
        self.hidden_size, self.layout = hidden_size, layout
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        h, g, d = num_heads, num_kv_heads, head_dim
        # (h + 2g) * d outputs instead of 3 * h * d; Falcon-7B: (71 + 2) * 64
        self.query_key_value = nn.Linear(hidden_size, (h + 2 * g) * d, bias=bias)
        self.dense = nn.Linear(h * d, hidden_size, bias=bias)

    def forward(
        self,
        x: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        cache: KVCache | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Args:
            x: ``(b, t, c)`` normalised hidden states of the new tokens.
            position_embeddings: ``(cos, sin)``, ``(t, d)`` or ``(b, t, d)``, for the new tokens.
            cache: this layer's :class:`~demos.layers.kv_cache.KVCache`, updated in place.
            attention_mask: ``(b, cached + t)``, 1 for a real token, 0 for (left) padding.

        Returns:
            ``(b, t, c)``.
        """
        if x.dim() != 3 or x.shape[-1] != self.hidden_size:
            raise ValueError(f"x must have shape (b, t, {self.hidden_size}), got {tuple(x.shape)}")
        q, k, v = split_fused_qkv(
            self.query_key_value(x), self.num_heads, self.num_kv_heads, self.head_dim, self.layout
        )  # (b, h, t, d), (b, g, t, d), (b, g, t, d)
        context = rotate_cache_attend(q, k, v, position_embeddings, cache, attention_mask)
        return self.dense(context)  # (b, t, h * d) -> (b, t, c); the cache keeps only g heads
