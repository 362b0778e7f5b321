"""Mistral's sliding-window attention made cheap: a rolling-buffer KV cache and a banded attention.

With a window of ``W`` keys, a query never looks further back than ``W - 1`` positions
[jiang2023mistral]. Two consequences, both built here on top of :mod:`demos.attention`:
decoding needs only the last ``W`` keys and values per layer (a *rolling buffer* that
overwrites position ``i`` in slot ``i % W``), and a whole prompt needs only the scores
inside a band of width ``W`` (``O(t * W)`` memory instead of the ``O(t * s)`` of a mask).

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
    jiang2023mistral  Mistral 7B, Section 2 (sliding window attention, rolling buffer cache).
    child2019sparse   sparse (banded) attention patterns.

Reference implementation:
    transformers==5.23.0, models/mistral/modeling_mistral.py::MistralModel (the mask),
    cache_utils.py::DynamicSlidingWindowLayer (the cache); mistral-src one_file_ref.py (2023-09-27),
    ``Attention.forward``'s rotating buffer.
    Deviation: transformers lets a query see ``W`` keys, itself included; mistral-src's prefill
    mask (``triu(..., diagonal=-W)``) lets it see ``W + 1``. We follow transformers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from demos.attention import KVCache, _check_positive_int, _check_qkv, _check_window
from demos.decoder import DecoderLM


class RollingKVCache(KVCache):
    """A KV cache of fixed size ``window``: position ``i`` is stored in slot ``i % window``.

    ``len(cache)`` is the number of tokens seen so far (the next token's position), however
    many are still held; the buffers ``k`` and ``v`` are ``(b, g, window, d)`` from the first
    update on, and never grow.
    """

    def __init__(self, window: int) -> None:
        super().__init__()
        if window is None:
            raise ValueError("window (None) must be a positive integer")
        _check_window(window)
        self.window = window
        self.seen = 0  # tokens written so far

    def __len__(self) -> int:
        return self.seen

    def _held(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The held keys and values, oldest first: ``(b, g, min(seen, window), d)``."""
        positions = torch.arange(max(0, self.seen - self.window), self.seen, device=self.k.device)
        slot = positions % self.window  # where each held position lives in the buffer
        return self.k[:, :, slot], self.v[:, :, slot]

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``(b, g, t, d)`` new keys and values; return the held ones plus the new, oldest first.

        The returned ``(b, g, min(seen, W) + t, d)`` keys end at the newest position, which is
        what :func:`demos.attention.attention` assumes; its window mask hides any extra ones.
        """
        b, g, t, d = k.shape
        if self.k is None:  # allocate the whole buffer once
            self.k, self.v = k.new_zeros(b, g, self.window, d), v.new_zeros(b, g, self.window, d)
        past_k, past_v = self._held()  # (b, g, min(seen, W), d)
        keys, values = torch.cat((past_k, k), dim=2), torch.cat((past_v, v), dim=2)
        keep = min(t, self.window)  # only the last W new positions can ever be seen again
        slot = torch.arange(self.seen + t - keep, self.seen + t, device=k.device) % self.window
        self.k[:, :, slot] = k[:, :, t - keep :]  # overwrite the oldest slots
        self.v[:, :, slot] = v[:, :, t - keep :]
        self.seen += t
        return keys, values  # (b, g, min(seen_before, W) + t, d)


class MistralLM(DecoderLM):
    """:class:`~demos.decoder.DecoderLM` with a sliding window: the only change is the cache.

    The window itself already lives in the attention (``DecoderConfig.sliding_window``, read
    from ``MistralConfig``); here decoding keeps a :class:`RollingKVCache` of ``W`` positions
    per layer instead of a cache that grows with the sequence.
    """

    def new_cache(self) -> list[KVCache]:  # NEW vs DecoderLM: fixed-size caches
        window = self.config.sliding_window
        if window is None:
            return super().new_cache()  # no window: every past token stays visible
        return [RollingKVCache(window) for _ in self.model.layers]


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
    _check_qkv(q, k, v)
    if window is None:
        raise ValueError("window (None) must be a positive integer")
    _check_window(window)
    block = window if block is None else block
    _check_positive_int("block", block)
    (b, h, t, d), g = q.shape, k.shape[1]
    r = h // g
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
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)  # fp32, as attention
    context = torch.einsum("bgrnqk,bgnkd->bgrnqd", weights, v_blocks)  # (b, g, r, n, block, d)
    return context.reshape(b, h, n * block, d)[:, :, :t]  # (b, h, t, d)
