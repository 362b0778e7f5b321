"""Mistral: the Llama decoder with a sliding window of ``W`` keys and a rolling-buffer KV cache.

The window lives in the attention (``LlamaLMConfig.sliding_window``, read from ``MistralConfig``);
decoding keeps a :class:`~demos.layers.kv_cache.RollingKVCache` of ``W`` positions per layer instead of
a cache that grows with the sequence [jiang2023mistral].

Axes: as in :mod:`demos.models.llama`.

References:
    jiang2023mistral  Mistral 7B, Section 2 (sliding window attention, rolling buffer cache).

Reference implementation:
    transformers==5.23.0, models/mistral/modeling_mistral.py::MistralForCausalLM
"""

from __future__ import annotations

from demos.layers.kv_cache import KVCache, RollingKVCache
from demos.models.llama import LlamaLM


class MistralLM(LlamaLM):
    """:class:`~demos.models.llama.LlamaLM` with a sliding window: the only change is the cache.

    The window itself already lives in the attention (``LlamaLMConfig.sliding_window``, read
    from ``MistralConfig``); here decoding keeps a :class:`RollingKVCache` of ``W`` positions
    per layer instead of a cache that grows with the sequence.
    """

    def new_cache(self, batch_size: int | None = None) -> list[KVCache]:  # NEW vs Llama: fixed size
        window = self.config.sliding_window
        if window is None:
            return super().new_cache(batch_size)  # no window: every past token stays visible
        return [RollingKVCache(window) for _ in self.blocks]
