"""Grouped-query attention: one module whose settings give multi-head, grouped-query and multi-query attention.

Each of the ``g`` key/value heads is shared by ``h / g`` query heads [ainslie2023gqa].
``g == h`` is multi-head attention [vaswani2017attention], ``g == 1`` is multi-query
attention [shazeer2019mqa]. Fewer key/value heads shrink the KV cache that decoding keeps,
by the factor ``h / g``. An optional sliding window limits each query to the ``W`` most
recent keys (Mistral). Queries are the *last* ``t`` of the ``s`` key positions, so the same
code serves a whole prompt (``t == s``) and one decoding step with a KV cache (``t == 1``).

Axes:
    b  batch
    t  query length (new tokens)
    s  key/value length (cached + new tokens), s >= t when causal
    h  query heads
    g  key/value heads (h % g == 0); h // g query heads share one key/value head
    d  head dimension
    c  hidden size (model width)

References:
    vaswani2017attention  scaled dot-product attention, Eq. (1).
    ainslie2023gqa        grouped-query attention, Section 2.2.
    shazeer2019mqa        multi-query attention.

Reference implementation:
    transformers==5.23.0, models/llama/modeling_llama.py::LlamaAttention, ::repeat_kv,
    ::eager_attention_forward; masking_utils.py::causal_mask_function, ::sliding_window_overlay

Over ~300 lines on purpose: multi-head, grouped-query and multi-query attention are settings of this
one module (with its window, cache and ``from_hf``), not three classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from demos.layers.kv_cache import KVCache
from demos.layers.masks import causal_mask, sliding_window_mask
from demos.layers.rope import apply_rope
from demos.validation import (
    check_attention_mask,
    check_finite_number,
    check_positive_int,
    check_qkv,
    check_window,
)
from demos.weights import load_hf_weights


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """Repeat each key/value head ``n_rep`` times: ``(b, g, s, d) -> (b, g * n_rep, s, d)``.

    Query head ``j`` then lines up with key/value head ``j // n_rep``, which is how the
    projections of a grouped-query checkpoint are laid out.
    """
    check_positive_int("n_rep", n_rep)
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must have 4 dims (b, g, s, d), got {got}")
    if n_rep == 1:
        return x
    b, g, s, d = x.shape
    x = x[:, :, None].expand(b, g, n_rep, s, d)  # (b, g, n_rep, s, d): a view, no copy yet
    return x.reshape(b, g * n_rep, s, d)  # (b, h, s, d)


def hide_padded_keys(
    scores: torch.Tensor, key_padding_mask: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Softmax of ``scores (b, h, t, s)`` over the keys ``key_padding_mask (b, s)`` marks real (1/True).

    A query that sees no key at all (a left-padding position: its only visible keys are padding)
    gets all-zero weights, not the NaN of a softmax over nothing, so no NaN reaches a gradient.
    Returns weights ``(b, h, t, s)`` computed in ``dtype`` (fp32 as transformers; fp64 for fp64 scores).
    """
    b, _, _, s = scores.shape
    key_padding_mask = check_attention_mask(key_padding_mask, b, s, every_row_real=False)
    scores = scores.masked_fill(key_padding_mask[:, None, None, :] == 0, float("-inf"))
    empty = torch.isneginf(scores).all(dim=-1, keepdim=True)  # (b, h, t, 1): nothing visible
    weights = torch.softmax(scores.masked_fill(empty, 0.0), dim=-1, dtype=dtype)
    return weights.masked_fill(empty, 0.0)  # (b, h, t, s)


def check_attn_mask(attn_mask: Any, shape: tuple[int, int, int, int]) -> torch.Tensor:
    """``attn_mask`` as an additive float32 mask (0 where a query may attend, -inf where not), or
    ``ValueError``. ``shape`` is the scores' ``(b, h, t, s)``; the mask must broadcast to it.

    As torch's ``scaled_dot_product_attention``: a boolean mask is True where a query *may* attend;
    a floating-point mask is added to the scores (NaN and +inf refused).
    """
    if not isinstance(attn_mask, torch.Tensor) or attn_mask.dim() > 4:
        got = tuple(attn_mask.shape) if isinstance(attn_mask, torch.Tensor) else type(attn_mask)
        raise ValueError(
            f"attn_mask must be a tensor that broadcasts to (b, h, t, s) = {shape}, got {got}"
        )
    try:
        fits = torch.broadcast_shapes(attn_mask.shape, shape) == shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"attn_mask of shape {tuple(attn_mask.shape)} does not broadcast to (b, h, t, s) = {shape}"
        )
    if attn_mask.dtype == torch.bool:
        zero = torch.zeros((), dtype=torch.float32, device=attn_mask.device)
        return zero.masked_fill(~attn_mask, float("-inf"))  # True: 0, False: -inf
    if not attn_mask.dtype.is_floating_point:
        raise ValueError(
            f"attn_mask must be boolean (True: may attend) or floating-point (added to the scores), "
            f"got {attn_mask.dtype}: an integer 0/1 mask is ambiguous, convert it with .bool()"
        )
    bad = torch.isnan(attn_mask) | torch.isposinf(attn_mask)
    if bool(bad.any()):
        raise ValueError(
            f"an additive attn_mask must hold no NaN or +inf, got {attn_mask[bad][0].item()}"
        )
    return attn_mask


def attention_weights(
    q: torch.Tensor,
    k: torch.Tensor,
    *,
    causal: bool = True,
    window: int | None = None,
    scale: float | None = None,
    key_padding_mask: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Softmax attention probabilities ``(b, h, t, s)``; see :func:`attention` for the arguments."""
    check_qkv(q, k, k, fewer_keys=not causal)
    check_window(window)
    if window is not None and not causal:
        raise ValueError("window needs causal=True: a sliding window looks back only")
    (b, h, t, d), (_, g, s, _) = q.shape, k.shape
    if scale is not None:
        check_finite_number("scale", scale)
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    extra = None if attn_mask is None else check_attn_mask(attn_mask, (b, h, t, s))
    k = repeat_kv(k, h // g)  # (b, h, s, d)
    scores = torch.matmul(q, k.transpose(2, 3)) * scale  # (b, h, t, s): Q K^T / sqrt(d), Eq. (1)
    if causal:
        mask = (
            causal_mask(t, s, q.device)
            if window is None
            else sliding_window_mask(t, s, window, q.device)
        )
        scores = scores.masked_fill(~mask, float("-inf"))  # (b, h, t, s)
    dtype = torch.promote_types(q.dtype, torch.float32)  # softmax in fp32, as HF; fp64 stays fp64
    if extra is not None:  # an arbitrary mask: added in the softmax's dtype
        scores = scores.to(dtype) + extra.to(dtype)  # (b, h, t, s)
        if key_padding_mask is None:  # a query that sees no key gets zeros, as torch's SDPA
            key_padding_mask = torch.ones(b, s, dtype=torch.long, device=q.device)
    if key_padding_mask is not None:  # a padded batch: hide the padding keys
        return hide_padded_keys(scores, key_padding_mask, dtype).to(q.dtype)
    return torch.softmax(scores, dim=-1, dtype=dtype).to(q.dtype)


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = True,
    window: int | None = None,
    scale: float | None = None,
    key_padding_mask: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scaled dot-product attention with grouped key/value heads.

    Args:
        q: queries ``(b, h, t, d)``: with ``causal``, the last ``t`` of the ``s`` positions.
        k, v: keys and values ``(b, g, s, d)``, ``h`` divisible by ``g``; ``s >= t`` when causal,
            any ``s >= 1`` otherwise (fewer keys than queries: cross-attention to a short memory).
        causal: hide keys after each query's position (bottom-right aligned, as transformers'
            causal mask with a cache: query ``i`` sits at position ``s - t + i``).
        window: if set, each query sees at most the ``window`` most recent keys, itself included.
        scale: multiplies the scores; defaults to ``1 / sqrt(d)``.
        key_padding_mask: ``(b, s)``, 1 (True) for a real key, 0 for padding; padding keys are
            hidden from every query, and a query that sees no key returns zeros.
        attn_mask: any mask that broadcasts to ``(b, h, t, s)``, as torch's
            ``scaled_dot_product_attention`` takes it: boolean, True where a query may attend, or
            floating-point, added to the scores. Applied on top of ``causal``, ``window`` and
            ``key_padding_mask``; a query it leaves no key returns zeros (as torch's SDPA does).

    Returns:
        ``(b, h, t, d)``: for each query, the attention-weighted mean of the values.

    Raises:
        ValueError: ``h % g != 0``, ``s < t`` with ``causal``, an empty axis, ``window < 1`` or
            not an integer, batch or head_dim mismatch, ``window`` without ``causal``, q/k/v not
            of one floating dtype, ``scale`` not a finite number, an ``attn_mask`` that does not
            broadcast, is an integer tensor or holds NaN or +inf.

    The softmax runs in ``promote_types(q.dtype, float32)``: fp32 for fp32/bf16/fp16 (as transformers),
    fp64 for fp64.
    """
    check_qkv(q, k, v, fewer_keys=not causal)
    weights = attention_weights(
        q,
        k,
        causal=causal,
        window=window,
        scale=scale,
        key_padding_mask=key_padding_mask,
        attn_mask=attn_mask,
    )  # (b, h, t, s)
    v = repeat_kv(v, q.shape[1] // v.shape[1])  # (b, h, s, d)
    return torch.matmul(weights, v)  # (b, h, t, d)


def rotate_cache_attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    position_embeddings: tuple[torch.Tensor, torch.Tensor],
    cache: KVCache | None = None,
    attention_mask: torch.Tensor | None = None,
    window: int | None = None,
) -> torch.Tensor:
    """What every attention layer does between its projections: RoPE, the cache, causal attention.

    Args:
        q: ``(b, h, t, d)`` and k, v: ``(b, g, t, d)``, the new tokens' projections.
        position_embeddings: ``(cos, sin)`` of the new tokens' positions, ``(t, d)`` or ``(b, t, d)``.
        cache: the layer's :class:`~demos.layers.kv_cache.KVCache`, updated in place with k and v.
        attention_mask: ``(b, cached + t)``, 1 for a real token, 0 for (left) padding.
        window: a sliding window of keys (Mistral), or ``None``.

    Returns:
        ``(b, t, h * d)``: the heads' contexts side by side, ready for the output projection.
    """
    cos, sin = position_embeddings
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)  # rotate by position
    if cache is not None:
        k, v = cache.update(k, v)  # (b, g, s, d): past keys and values plus the new ones
    pad = None if attention_mask is None else attention_mask[:, -k.shape[2] :]  # (b, s)
    context = attention(q, k, v, window=window, key_padding_mask=pad)  # (b, h, t, d)
    b, _, t, _ = q.shape
    return context.transpose(1, 2).reshape(b, t, -1)  # (b, t, h * d)


# transformers model types whose attention layer is Llama's (q_proj k_proj v_proj o_proj, one bias
# switch, an optional sliding window): what AttentionConfig.from_hf reads
LLAMA_LIKE_ATTENTION = ("llama", "mistral", "mixtral", "gemma")


@dataclass(frozen=True)
class AttentionConfig:
    """Shape of one attention layer, with transformers' field names."""

    hidden_size: int  # c, the model width
    num_attention_heads: int  # h, query heads
    num_key_value_heads: int | None = None  # g; None means g == h (multi-head attention)
    head_dim: int | None = None  # d; None means hidden_size // num_attention_heads
    qkv_bias: bool = False  # biases on q_proj, k_proj, v_proj (Llama: none; Qwen: yes)
    o_bias: bool = False  # bias on o_proj (Llama, Qwen: none; Phi: yes)
    sliding_window: int | None = None  # W; None means full causal attention

    def __post_init__(self) -> None:
        check_positive_int("hidden_size", self.hidden_size)
        check_positive_int("num_attention_heads", self.num_attention_heads)
        if self.num_key_value_heads is None:
            object.__setattr__(self, "num_key_value_heads", self.num_attention_heads)
        check_positive_int("num_key_value_heads", self.num_key_value_heads)
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be divisible by "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        if self.head_dim is None:
            if self.hidden_size % self.num_attention_heads:
                raise ValueError(
                    f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                    f"({self.num_attention_heads}) when head_dim is not given"
                )
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_attention_heads)
        check_positive_int("head_dim", self.head_dim)
        if self.head_dim % 2:
            raise ValueError(f"head_dim ({self.head_dim}) must be even for rotary embeddings")
        if self.sliding_window is not None:
            check_positive_int("sliding_window", self.sliding_window)

    @classmethod
    def from_hf(cls, hf_config: Any) -> AttentionConfig:
        """Read the attention fields of a transformers ``LlamaConfig``, ``MistralConfig``,
        ``MixtralConfig`` or ``GemmaConfig`` (their attention is Llama's); ``ValueError`` for
        another ``model_type``: its fields may carry the same names and mean another layer
        (Qwen2's q/k/v biases come with no ``attention_bias`` field, GPT-NeoX fuses q, k and v)."""
        model_type = getattr(hf_config, "model_type", None)
        if model_type not in LLAMA_LIKE_ATTENTION:
            raise ValueError(
                f"AttentionConfig.from_hf reads the attention of model_type "
                f"{', '.join(map(repr, LLAMA_LIKE_ATTENTION))}, got {model_type!r}: build that "
                "family's model with its class in demos.models (demos.catalog names it)"
            )
        return cls(
            hidden_size=hf_config.hidden_size,
            num_attention_heads=hf_config.num_attention_heads,
            num_key_value_heads=getattr(hf_config, "num_key_value_heads", None),
            head_dim=getattr(hf_config, "head_dim", None),
            qkv_bias=getattr(hf_config, "attention_bias", False),  # Llama's one switch for all four
            o_bias=getattr(hf_config, "attention_bias", False),
            sliding_window=getattr(hf_config, "sliding_window", None),
        )


class GroupedQueryAttention(nn.Module):
    """Attention layer with ``g`` key/value heads shared by ``h`` query heads, RoPE and a KV cache.

    Parameter names match transformers' ``LlamaAttention`` (``q_proj k_proj v_proj o_proj``),
    so an HF layer's ``state_dict`` loads with no renaming.
    """

    def __init__(self, config: AttentionConfig) -> None:
        super().__init__()
        self.config = config
        c, h, g, d = (
            config.hidden_size,
            config.num_attention_heads,
            config.num_key_value_heads,
            config.head_dim,
        )
        self.q_proj = nn.Linear(c, h * d, bias=config.qkv_bias)
        self.k_proj = nn.Linear(c, g * d, bias=config.qkv_bias)  # NEW vs MHA: g * d, not h * d
        self.v_proj = nn.Linear(c, g * d, bias=config.qkv_bias)
        self.o_proj = nn.Linear(h * d, c, bias=config.o_bias)

    def forward(
        self,
        x: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        cache: KVCache | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Args:
            x: ``(b, t, c)`` hidden states of the new tokens.
            position_embeddings: ``(cos, sin)`` of the new tokens' positions, ``(t, d)`` or ``(b, t, d)``.
            cache: this layer's :class:`KVCache`; updated in place with the new keys and values.
            attention_mask: ``(b, cached + t)``, 1 for a real token, 0 for (left) padding.

        Returns:
            ``(b, t, c)``.
        """
        if x.dim() != 3 or x.shape[-1] != self.config.hidden_size:
            raise ValueError(
                f"x must have shape (b, t, {self.config.hidden_size}), got {tuple(x.shape)}"
            )
        b, t, _ = x.shape
        d = self.config.head_dim
        q = self.queries(x, cache)  # (b, h, t, d)
        k = self.k_proj(x).view(b, t, -1, d).transpose(1, 2)  # (b, g, t, d)
        v = self.v_proj(x).view(b, t, -1, d).transpose(1, 2)  # (b, g, t, d)
        context = rotate_cache_attend(
            q, k, v, position_embeddings, cache, attention_mask, self.config.sliding_window
        )  # (b, t, h * d)
        return self.o_proj(context)  # (b, t, c)

    def queries(self, x: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
        """Hook: the new tokens' queries ``(b, h, t, d)`` from ``x (b, t, c)`` (a variant that scales
        them by position, as Qwen's LogN attention, reads the cache's length)."""
        b, t, _ = x.shape
        return self.q_proj(x).view(b, t, -1, self.config.head_dim).transpose(1, 2)

    @classmethod
    def from_hf(cls, hf_attention: nn.Module) -> GroupedQueryAttention:
        """Build from a transformers attention layer (``LlamaAttention``, ``MistralAttention``) and copy its weights."""
        return load_hf_weights(cls(AttentionConfig.from_hf(hf_attention.config)), hf_attention)
