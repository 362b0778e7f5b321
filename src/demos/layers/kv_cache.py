"""Key/value caches for decoding: one that grows with the sequence, and Mistral's rolling buffer of ``W`` slots.

Decoding one token at a time re-uses the keys and values of every earlier token; a cache keeps them so
that each step computes only the new token's. With a sliding window of ``W`` keys [jiang2023mistral], a
query never looks further back than ``W - 1`` positions, so the cache needs only the last ``W``: a
*rolling buffer* that overwrites position ``i`` in slot ``i % W``.

Axes:
    b  batch
    g  key/value heads
    t  new tokens in this call
    s  all tokens so far (cache + new)
    d  head dimension

References:
    jiang2023mistral  Mistral 7B, Section 2 (rolling buffer cache).

Reference implementation:
    transformers==5.23.0, cache_utils.py::DynamicLayer, ::DynamicSlidingWindowLayer
"""

from __future__ import annotations

from typing import Any

import torch

from demos.validation import check_cache_update, check_positive_int


class KVCache:
    """Keys and values of one attention layer, grown by one step per decoding call.

    Memory grows linearly with the sequence: ``2 * b * g * s * d`` numbers per layer.
    """

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None  # (b, g, s, d)
        self.v: torch.Tensor | None = None  # (b, g, s, d)

    def __len__(self) -> int:
        return 0 if self.k is None else self.k.shape[2]

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``(b, g, t, d)`` new keys and values; return all ``(b, g, s, d)`` of them.

        Raises ``ValueError`` when k and v differ in shape or dtype, or do not fit what the cache holds.
        """
        check_cache_update(k, v, self.k, type(self).__name__)
        if self.k is not None:
            k = torch.cat((self.k, k), dim=2)  # (b, g, s, d)
            v = torch.cat((self.v, v), dim=2)
        self.k, self.v = k, v
        return k, v


class RollingKVCache(KVCache):
    """A KV cache of fixed size ``window``: position ``i`` is stored in slot ``i % window``.

    ``len(cache)`` is the number of tokens seen so far (the next token's position), however
    many are still held; the buffers ``k`` and ``v`` are ``(b, g, window, d)`` from the first
    update on, and never grow.
    """

    def __init__(self, window: int) -> None:
        super().__init__()
        check_positive_int("window", window)
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
        what :func:`demos.layers.attention.attention` assumes; its window mask hides any extra ones.
        """
        check_cache_update(k, v, self.k, type(self).__name__)
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


def kv_cache_bytes_per_token(
    num_hidden_layers: int, num_key_value_heads: int, head_dim: int, bytes_per_value: int = 2
) -> int:
    """Bytes the KV cache grows by for each token: keys and values, every layer, every key/value head.

    ``2 * layers * g * d * bytes_per_value`` (2 bytes per number in fp16/bf16).
    """
    for name, value in (
        ("num_hidden_layers", num_hidden_layers),
        ("num_key_value_heads", num_key_value_heads),
        ("head_dim", head_dim),
        ("bytes_per_value", bytes_per_value),
    ):
        check_positive_int(name, value)
    return 2 * num_hidden_layers * num_key_value_heads * head_dim * bytes_per_value


def kv_cache_bytes(
    num_hidden_layers: int,
    num_key_value_heads: int,
    head_dim: int,
    length: int,
    batch: int = 1,
    bytes_per_value: int = 2,
    window: int | None = None,
) -> int:
    """Bytes a KV cache holds after ``length`` tokens of ``batch`` sequences.

    ``kv_cache_bytes_per_token * min(length, window) * batch``: with no window every position is
    kept (linear in the length); with Mistral's rolling buffer of ``window`` slots, at most
    ``window`` [jiang2023mistral]. The count uses the ``g`` key/value heads, not the ``h`` query
    heads: grouped-query attention stores each shared key/value head once. ``ValueError`` unless
    the sizes are positive integers and ``window`` is None or one.
    """
    check_positive_int("length", length)
    check_positive_int("batch", batch)
    if window is not None:
        check_positive_int("window", window)
    per_token = kv_cache_bytes_per_token(
        num_hidden_layers, num_key_value_heads, head_dim, bytes_per_value
    )
    kept = length if window is None else min(length, window)
    return per_token * kept * batch


def cache_bytes(cache: Any) -> int:
    """Bytes of the key and value tensors a cache holds now: ours (a list of :class:`KVCache`, one
    per layer, from ``model.new_cache()``) or transformers' ``Cache`` (``DynamicCache``: its
    ``layers[i].keys`` and ``.values``). Counts ``numel * element_size`` of each tensor, so it works
    on the ``meta`` device too. ``ValueError`` for anything else.
    """
    if isinstance(cache, list) and all(isinstance(c, KVCache) for c in cache):
        pairs = [(c.k, c.v) for c in cache]
    elif hasattr(cache, "layers"):  # transformers==5.23.0, cache_utils.py::DynamicCache
        pairs = [(layer.keys, layer.values) for layer in cache.layers]
    else:
        raise ValueError(
            f"cache ({type(cache).__name__}) must be a list of KVCache or a transformers Cache"
        )
    tensors = [t for pair in pairs for t in pair if t is not None and t.numel() > 0]
    return sum(t.numel() * t.element_size() for t in tensors)
