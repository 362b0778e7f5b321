"""The tiny Falcon decoder against transformers' FalconForCausalLM: split, attention, logits, gradients,
cached decoding, generate, KV-cache size, bad input."""

from __future__ import annotations

import pytest
import torch
from transformers import FalconConfig, FalconForCausalLM

from demos.layers.fused_qkv import split_fused_qkv
from demos.layers.kv_cache import kv_cache_bytes_per_token
from demos.models.falcon import FalconLM, FalconLMAttention, FalconLMConfig
from demos.weights import count_parameters
from helpers import assert_lm_parity, assert_same_greedy_tokens, tiny_falcon, tiny_falcon_config

# (new_decoder_architecture, num_kv_heads, extra config): the layouts transformers supports
ARCHS = {
    "7b-mqa": (False, 4, {}),  # Falcon-7B: multi_query, one key/value head (num_kv_heads unused)
    "old-mha": (False, 4, {"multi_query": False}),  # old layout without multi_query: g == h
    "new-g4": (True, 4, {}),  # new architecture, g == h
    "new-g2": (True, 2, {}),  # new architecture, g == h / 2 (Falcon-40B/180B: 8 groups)
    "new-g1": (True, 1, {}),  # new architecture, g == 1
    "new-1ln": (True, 2, {"num_ln_in_parallel_attn": 1}),  # one LayerNorm for both branches
}


def token_ids(t: int, b: int = 2, device: str = "cpu") -> torch.Tensor:
    return torch.randint(0, 97, (b, t), device=device)


def build(arch: str, setting=None) -> FalconForCausalLM:
    new, g, extra = ARCHS[arch]
    if setting is None:
        return tiny_falcon(new, g, **extra)
    return tiny_falcon(new, g, setting.device, setting.dtype, **extra)


# ---- smallest unit: the fused-QKV split ----


@pytest.mark.parametrize("arch", ["7b-mqa", "old-mha", "new-g2", "new-g1"])
def test_split_fused_qkv_matches_transformers(arch):
    """Our single layout formula gives HF's q, k, v for every architecture (HF repeats k and v
    to h heads in the new architecture; ours keeps g heads, so we compare after repeating)."""
    hf = build(arch).transformer.h[0].self_attention
    cfg = FalconLMConfig.from_hf(hf.config)
    h, g, d = cfg.num_attention_heads, cfg.kv_heads, cfg.head_dim
    fused = torch.randn(2, 5, (h + 2 * g) * d)
    q_ref, k_ref, v_ref = hf._split_heads(fused)  # (b, t, heads, d)
    q, k, v = split_fused_qkv(fused, h, g, d)  # (b, h, t, d), (b, g, t, d)
    assert k.shape == (2, g, 5, d)
    torch.testing.assert_close(q.transpose(1, 2), q_ref, atol=0, rtol=0)
    r = k_ref.shape[2] // g  # HF's new architecture broadcasts k, v to h heads
    torch.testing.assert_close(
        k.repeat_interleave(r, 1).transpose(1, 2), k_ref.reshape(2, 5, -1, d), atol=0, rtol=0
    )
    torch.testing.assert_close(
        v.repeat_interleave(r, 1).transpose(1, 2), v_ref.reshape(2, 5, -1, d), atol=0, rtol=0
    )


# ---- one attention layer ----


@pytest.mark.parametrize("arch", ["7b-mqa", "new-g4", "new-g2", "new-g1"])
@pytest.mark.parametrize("t", [1, 7])
def test_attention_layer_matches_transformers(setting, arch, t):
    hf_model = build(arch, setting)
    hf = hf_model.transformer.h[0].self_attention
    ours = FalconLMAttention.from_hf(hf)
    x = torch.randn(2, t, 32, device=setting.device, dtype=setting.dtype, requires_grad=True)
    positions = torch.arange(t, device=setting.device)[None]  # (1, t)
    cos, sin = hf_model.transformer.rotary_emb(x, positions)  # (1, t, d)
    mask = torch.full((t, t), float("-inf"), device=setting.device).triu(1)
    ref, _ = hf(x, None, mask.to(setting.dtype)[None, None], position_embeddings=(cos, sin))
    x2 = x.detach().clone().requires_grad_(True)
    out = ours(x2, (cos[0], sin[0]))
    setting.close(out, ref)
    w = torch.randn_like(out)
    (ref * w).sum().backward()
    (out * w).sum().backward()
    setting.close(x2.grad, x.grad, grad=True, msg="d/dx")
    for name, p in ours.named_parameters():
        setting.close(p.grad, dict(hf.named_parameters())[name].grad, grad=True, msg=name)


# ---- the whole model ----


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("t", [1, 9])
def test_logits_and_gradients_match_falcon(setting, arch, t):
    hf = build(arch, setting)
    ours = FalconLM.from_hf(hf)
    assert_lm_parity(ours, hf, token_ids(t, device=setting.device), setting)


def test_untied_head_and_biases_match_falcon(fp32_setting):
    hf = tiny_falcon(True, 2, tie_word_embeddings=False, bias=True)
    ours = FalconLM.from_hf(hf)
    assert ours.lm_head.weight is not ours.transformer.word_embeddings.weight
    assert ours.transformer.h[0].self_attention.query_key_value.bias is not None
    ids = token_ids(6)
    fp32_setting.close(ours(ids), hf(ids).logits)


@pytest.mark.parametrize("arch", ["7b-mqa", "new-g2"])
def test_parameter_count_matches_falcon(arch):
    hf = build(arch)
    assert count_parameters(FalconLM.from_hf(hf)) == sum(p.numel() for p in hf.parameters())


# ---- decoding ----


@pytest.mark.parametrize("arch", ["7b-mqa", "new-g2", "new-g1"])
def test_cached_decoding_equals_full_forward(setting, arch):
    ours = FalconLM.from_hf(build(arch, setting))
    ids = token_ids(11, device=setting.device)
    with torch.no_grad():
        full = ours(ids)
        caches = ours.new_cache()
        steps = [ours(ids[:, :4], caches)] + [ours(ids[:, i : i + 1], caches) for i in range(4, 11)]
    setting.close(torch.cat(steps, dim=1), full)
    g = ours.config.kv_heads
    assert caches[0].k.shape == (2, g, 11, ours.config.head_dim)  # g heads cached, not h


@pytest.mark.parametrize("arch", ["7b-mqa", "old-mha", "new-g2", "new-g1"])
def test_greedy_generate_equals_transformers(fp32_device_setting, arch):
    """Tokens are compared in fp32 only: in bf16 two logits can tie and argmax may pick either."""
    setting = fp32_device_setting
    hf = build(arch, setting)
    ours = FalconLM.from_hf(hf)
    prompt = token_ids(5, device=setting.device)
    assert_same_greedy_tokens(ours, hf, prompt, 10)


def test_our_cache_is_h_over_g_times_smaller_than_transformers():
    """HF's new-architecture attention caches k, v repeated to h heads; ours keeps g."""
    hf = tiny_falcon(True, 1, num_attention_heads=4)
    ours = FalconLM.from_hf(hf)
    ids = token_ids(6)
    with torch.no_grad():
        hf_cache = hf(ids, use_cache=True).past_key_values
        caches = ours.new_cache()
        ours(ids, caches)
    hf_heads = hf_cache.layers[0].keys.shape[1]
    assert hf_heads == 4 and caches[0].k.shape[1] == 1


# ---- KV-cache size and parameter counts of the released models ----

RELEASED = {  # config.json of tiiuae/falcon-7b, falcon-40b, falcon-180B [hf_falcon_configs]
    "falcon-7b": dict(
        hidden_size=4544, num_hidden_layers=32, num_attention_heads=71, multi_query=True
    ),
    "falcon-40b": dict(
        hidden_size=8192,
        num_hidden_layers=60,
        num_attention_heads=128,
        num_kv_heads=8,
        new_decoder_architecture=True,
    ),
    "falcon-180B": dict(
        hidden_size=14848,
        num_hidden_layers=80,
        num_attention_heads=232,
        num_kv_heads=8,
        new_decoder_architecture=True,
    ),
}


@pytest.mark.parametrize("name", list(RELEASED))
def test_kv_cache_ratio_of_released_models(name):
    """The seed list says multi-query attention shrinks the KV cache "10-100x": check per model."""
    cfg = FalconLMConfig(vocab_size=65024, **RELEASED[name])
    ours = kv_cache_bytes_per_token(cfg.num_hidden_layers, cfg.kv_heads, cfg.head_dim)
    mha = kv_cache_bytes_per_token(cfg.num_hidden_layers, cfg.num_attention_heads, cfg.head_dim)
    assert mha // ours == cfg.num_attention_heads // cfg.kv_heads
    assert 10 <= mha / ours <= 100


def test_full_size_parameter_count_on_meta_device():
    """Falcon-7B at full size, built on the meta device (no memory, nothing downloaded)."""
    hf_config = FalconConfig(vocab_size=65024, **RELEASED["falcon-7b"])
    with torch.device("meta"):
        hf = FalconForCausalLM(hf_config)
        ours = FalconLM(FalconLMConfig.from_hf(hf_config))
    n = count_parameters(ours)
    assert n == sum(p.numel() for p in hf.parameters())
    assert 6.5e9 < n < 7.5e9


# ---- bad input ----


def test_bad_config_raises():
    with pytest.raises(
        ValueError, match=r"num_attention_heads \(4\) must be divisible by num_kv_heads \(3\)"
    ):
        FalconLMConfig(97, 32, 1, 4, num_kv_heads=3, new_decoder_architecture=True)
    with pytest.raises(ValueError, match=r"hidden_size \(30\) must be divisible"):
        FalconLMConfig(97, 30, 1, 4)
    with pytest.raises(
        ValueError, match=r"num_kv_heads \(2\) must equal num_attention_heads \(4\)"
    ):
        FalconLMConfig(97, 32, 1, 4, num_kv_heads=2, multi_query=False)
    with pytest.raises(ValueError, match=r"num_ln_in_parallel_attn \(3\) must be 1 or 2"):
        FalconLMConfig(97, 32, 1, 4, num_ln_in_parallel_attn=3)
    with pytest.raises(ValueError, match=r"num_hidden_layers \(0\)"):
        FalconLMConfig(97, 32, 0, 4)


def test_unsupported_hf_configs_raise():
    with pytest.raises(ValueError, match="alibi=True"):
        FalconLMConfig.from_hf(tiny_falcon_config(alibi=True))
    with pytest.raises(ValueError, match="parallel_attn=False"):
        FalconLMConfig.from_hf(tiny_falcon_config(parallel_attn=False))
    with pytest.raises(ValueError, match="activation"):
        FalconLMConfig.from_hf(tiny_falcon_config(activation="relu"))


def test_bad_tokens_and_shapes_raise():
    ours = FalconLM.from_hf(build("7b-mqa"))
    with pytest.raises(
        ValueError, match=r"token ids must lie in \[0, 97\), got values from 0 to 97"
    ):
        ours(torch.tensor([[0, 97]]))
    with pytest.raises(ValueError, match="integer tensor"):
        ours(torch.tensor([[0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"one KVCache per layer \(2\), got 1"):
        ours(token_ids(3), ours.new_cache()[:1])
    with pytest.raises(ValueError, match=r"fused qkv width \(40\) must be"):
        split_fused_qkv(torch.randn(1, 2, 40), 4, 1, 8)
    with pytest.raises(ValueError, match=r"x must have shape \(b, t, 32\)"):
        ours.transformer.h[0].self_attention(torch.randn(1, 2, 31), (None, None))
