"""Sliding-window attention: Mistral's windows, the rolling-buffer cache, the banded attention (the checks
every model shares are in tests/test_conformance.py)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from transformers.masking_utils import create_sliding_window_causal_mask

from demos.layers.attention import attention
from demos.layers.banded_attention import banded_attention
from demos.layers.kv_cache import KVCache, RollingKVCache
from demos.models.llama import LlamaLM, LlamaLMConfig
from demos.models.mistral import MistralLM, MistralLMConfig
from helpers import assert_lm_parity, assert_same_input_grads, tiny_config, tiny_model

T = 12  # sequence length of the model tests; windows below are shorter and longer than it


def token_ids(t: int, b: int = 2, device: str = "cpu") -> torch.Tensor:
    return torch.randint(0, 97, (b, t), device=device)


# ---- the mask transformers builds for Mistral ----


@pytest.mark.parametrize("window", [1, 3, 5, 20])
def test_mistral_eager_mask_is_our_sliding_window(window):
    """transformers' Mistral mask (eager) hides exactly the keys our sliding_window_mask hides."""
    from demos.layers.masks import sliding_window_mask

    config = tiny_config("mistral", sliding_window=window)
    embeds = torch.zeros(1, 9, config.hidden_size)
    mask = create_sliding_window_causal_mask(
        config=config,
        inputs_embeds=embeds,
        attention_mask=None,
        past_key_values=None,
        position_ids=torch.arange(9)[None],
    )
    visible = mask[0, 0] == 0 if mask.dtype != torch.bool else mask[0, 0]
    assert torch.equal(visible, sliding_window_mask(9, 9, window))


# ---- Mistral: whole model against transformers ----


@pytest.mark.parametrize("g", [4, 1], ids=["mha", "mqa"])
@pytest.mark.parametrize("window", [1, 5, 64], ids=lambda w: f"W{w}")
def test_logits_and_gradients_match_mistral(setting, g, window):
    hf = tiny_model(
        "mistral", setting.device, setting.dtype, num_key_value_heads=g, sliding_window=window
    )
    ours = MistralLM.from_hf(hf)
    assert ours.config.sliding_window == window
    assert_lm_parity(ours, hf, token_ids(T, device=setting.device), setting)


def test_the_window_changes_the_output():
    """With t > W the window matters: the same weights without a window give other logits."""
    windowed = MistralLM.from_hf(tiny_model("mistral", sliding_window=3))
    full = LlamaLM(dataclasses.replace(windowed.config, sliding_window=None))
    full.load_state_dict(windowed.state_dict())
    ids = token_ids(T)
    with torch.no_grad():
        a, b = windowed(ids), full(ids)
    assert torch.allclose(a[:, :3], b[:, :3], atol=1e-5)  # the first W positions see everything
    assert not torch.allclose(a[:, 3:], b[:, 3:], atol=1e-2)


# ---- the rolling-buffer cache ----


@pytest.mark.parametrize("g", [4, 1])
@pytest.mark.parametrize("window,prefill", [(3, 5), (4, 1), (5, 2), (20, 4)])
def test_rolling_cache_decoding_equals_full_forward(setting, g, window, prefill):
    ours = MistralLM.from_hf(
        tiny_model(
            "mistral", setting.device, setting.dtype, num_key_value_heads=g, sliding_window=window
        )
    )
    ids = token_ids(T, device=setting.device)
    with torch.no_grad():
        full = ours(ids)
        caches = ours.new_cache()
        steps = [ours(ids[:, :prefill], caches)]
        steps += [ours(ids[:, i : i + 1], caches) for i in range(prefill, T)]
    assert all(isinstance(c, RollingKVCache) for c in caches)
    setting.close(torch.cat(steps, dim=1), full)


def test_rolling_cache_memory_stays_at_the_window():
    window = 4
    ours = MistralLM.from_hf(tiny_model("mistral", sliding_window=window))
    caches = ours.new_cache()
    with torch.no_grad():
        ours(token_ids(2), caches)
        for _ in range(40):
            ours(token_ids(1), caches)
    for cache in caches:
        assert len(cache) == 42  # positions keep counting
        assert cache.k.shape == cache.v.shape == (2, 2, window, 8)  # memory does not


def test_rolling_cache_holds_the_last_window_positions_in_slot_order():
    cache = RollingKVCache(3)
    for i in range(7):
        x = torch.full((1, 1, 1, 2), float(i))
        keys, _ = cache.update(x, x)
        assert keys[0, 0, :, 0].tolist() == [float(p) for p in range(max(0, i - 3), i + 1)]
    # positions 4, 5, 6 live in slots 4 % 3, 5 % 3, 6 % 3 = 1, 2, 0
    assert cache.k[0, 0, :, 0].tolist() == [6.0, 4.0, 5.0]


def test_rolling_cache_prefill_longer_than_the_window():
    cache, plain = RollingKVCache(3), KVCache()
    x = torch.arange(8.0).view(1, 1, 8, 1)
    keys, _ = cache.update(x, x)
    assert torch.equal(keys, plain.update(x, x)[0])  # the prompt attends to all of itself
    assert sorted(cache.k.flatten().tolist()) == [5.0, 6.0, 7.0]


def test_without_a_window_mistral_lm_keeps_a_growing_cache():
    ours = MistralLM.from_hf(tiny_model("mistral", sliding_window=None))
    assert all(type(c) is KVCache for c in ours.new_cache())


# ---- banded attention against the masked attention ----


def qkv(h, g, t, s, setting, d=8, b=2):
    kw = dict(device=setting.device, dtype=setting.dtype, requires_grad=True)
    return (
        torch.randn(b, h, t, d, **kw),
        torch.randn(b, g, s, d, **kw),
        torch.randn(b, g, s, d, **kw),
    )


@pytest.mark.parametrize("g", [4, 2, 1], ids=["mha", "gqa", "mqa"])
@pytest.mark.parametrize(
    "t,s,window,block",
    [
        (16, 16, 4, None),  # t a multiple of the block
        (13, 13, 4, None),  # t not a multiple of the block
        (5, 5, 8, None),  # t < W
        (11, 11, 1, None),  # W = 1: each query sees only itself
        (13, 13, 4, 3),  # block smaller than the window
        (13, 13, 3, 5),  # block larger than the window
        (1, 9, 4, None),  # one decoding step after a cache
        (6, 20, 5, None),  # a chunk after a cache longer than the window
    ],
)
def test_banded_attention_equals_masked_attention(setting, g, t, s, window, block):
    q, k, v = qkv(4, g, t, s, setting)
    ref = attention(q, k, v, causal=True, window=window)
    out = banded_attention(q, k, v, window=window, block=block)
    assert_same_input_grads(out, ref, {"q": q, "k": k, "v": v}, setting)


def test_banded_attention_scores_only_a_band():
    """The largest intermediate is (b, h, t, block + W - 1), not (b, h, t, t)."""
    seen = []
    q = k = v = torch.randn(1, 1, 64, 4)
    real_einsum = torch.einsum

    def spy(eq, *ops):
        out = real_einsum(eq, *ops)
        seen.append(out.numel())
        return out

    torch.einsum = spy
    try:
        banded_attention(q, k, v, window=8)
    finally:
        torch.einsum = real_einsum
    assert max(seen) == 64 * (8 + 8 - 1) < 64 * 64


# ---- bad input ----


@pytest.mark.parametrize("window", [0, -3, 2.5, "4", None, True])
def test_banded_attention_rejects_bad_windows(window):
    q = k = v = torch.randn(1, 2, 5, 4)
    with pytest.raises(ValueError, match=r"window \(.*\) must be a positive integer"):
        banded_attention(q, k, v, window=window)


@pytest.mark.parametrize("window", [0, -1, 1.5])
def test_masked_attention_and_cache_reject_bad_windows(window):
    q = k = v = torch.randn(1, 2, 5, 4)
    with pytest.raises(ValueError, match=r"window \(.*\) must be a positive integer"):
        attention(q, k, v, window=window)
    with pytest.raises(ValueError, match=r"window \(.*\) must be a positive integer"):
        RollingKVCache(window)


def test_banded_attention_rejects_bad_blocks_and_shapes():
    q = k = v = torch.randn(1, 2, 5, 4)
    with pytest.raises(ValueError, match=r"block \(0\) must be a positive integer"):
        banded_attention(q, k, v, window=2, block=0)
    with pytest.raises(ValueError, match=r"divisible by key/value heads g \(2\)"):
        banded_attention(torch.randn(1, 3, 5, 4), k, v, window=2)
    with pytest.raises(ValueError, match=r"key length s \(3\) must be at least the query length"):
        banded_attention(q, k[:, :, :3], v[:, :, :3], window=2)


def test_bad_sliding_window_in_the_config_raises():
    with pytest.raises(ValueError, match=r"sliding_window \(0\) must be a positive integer"):
        MistralLMConfig.from_hf(tiny_config("mistral", sliding_window=0))


def test_llamas_reader_refuses_a_mistral_config():
    """Llama's reader would take the window by name; it names the class that reads MistralConfig."""
    refusal = r"reads model_type 'llama', got 'mistral'; use demos.models.mistral.MistralLM"
    with pytest.raises(ValueError, match=refusal):
        LlamaLMConfig.from_hf(tiny_config("mistral"))
