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

from dataclasses import dataclass
from typing import ClassVar

from demos.layers.kv_cache import KVCache, RollingKVCache
from demos.models.llama import LlamaLM, LlamaLMConfig


@dataclass(frozen=True)
class MistralLMConfig(LlamaLMConfig):
    """:class:`LlamaLMConfig` read from a ``MistralConfig``: ``sliding_window`` applies to every layer."""

    model_types: ClassVar[tuple[str, ...]] = ("mistral",)  # NEW vs Llama: MistralConfig
    # hf_reads, hf_ignores: Llama's (MistralConfig's one new field, sliding_window, is a field here;
    # it has no attention_bias, mlp_bias or layer_types: those stay at their defaults or are refused)


class MistralLM(LlamaLM):
    """:class:`~demos.models.llama.LlamaLM` with a sliding window: the only change is the cache.

    The window itself already lives in the attention (``LlamaLMConfig.sliding_window``, per layer
    by ``layer_types``); here decoding keeps a :class:`RollingKVCache` of ``W`` positions in each
    windowed layer instead of a cache that grows with the sequence.
    """

    config_class = MistralLMConfig  # NEW vs Llama: reads MistralConfig

    def new_cache(self, batch_size: int | None = None) -> list[KVCache]:  # NEW vs Llama: fixed size
        windows = (self.config.window(i) for i in range(len(self.blocks)))
        # a layer without a window keeps every past token
        return [KVCache() if w is None else RollingKVCache(w) for w in windows]
