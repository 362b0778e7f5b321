"""What is particular to Falcon: its attention layer, the architectures the table does not cover, its
KV-cache size, its config (the checks every model shares are in tests/test_conformance.py; the fused
q/k/v split in tests/layers/test_fused_qkv.py)."""

from __future__ import annotations

import pytest
import torch
from transformers import FalconForCausalLM

from demos.layers.kv_cache import kv_cache_bytes_per_token
from demos.models.falcon import FalconLM, FalconLMAttention, FalconLMConfig
from demos.registry import released_config
from helpers import assert_lm_parity, tiny_config, tiny_model

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
    where = () if setting is None else (setting.device, setting.dtype)
    return tiny_model("falcon", *where, new_decoder_architecture=new, num_kv_heads=g, **extra)


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


@pytest.mark.parametrize("arch", ["old-mha", "new-g4", "new-g1", "new-1ln"])  # table: 7b, new-g2
@pytest.mark.parametrize("t", [1, 9])
def test_logits_and_gradients_match_falcon(setting, arch, t):
    hf = build(arch, setting)
    ours = FalconLM.from_hf(hf)
    assert_lm_parity(ours, hf, token_ids(t, device=setting.device), setting)


def test_untied_head_and_biases_match_falcon(fp32_setting):
    hf = tiny_model("falcon", new_decoder_architecture=True, tie_word_embeddings=False, bias=True)
    ours = FalconLM.from_hf(hf)
    assert ours.lm_head.weight is not ours.transformer.word_embeddings.weight
    assert ours.transformer.h[0].self_attention.query_key_value.bias is not None
    ids = token_ids(6)
    fp32_setting.close(ours(ids), hf(ids).logits)


def test_our_cache_is_h_over_g_times_smaller_than_transformers():
    """HF's new-architecture attention caches k, v repeated to h heads; ours keeps g."""
    hf = tiny_model("falcon", new_decoder_architecture=True, num_kv_heads=1)
    ours = FalconLM.from_hf(hf)
    ids = token_ids(6)
    with torch.no_grad():
        hf_cache = hf(ids, use_cache=True).past_key_values
        caches = ours.new_cache()
        ours(ids, caches)
    hf_heads = hf_cache.layers[0].keys.shape[1]
    assert hf_heads == 4 and caches[0].k.shape[1] == 1


# ---- KV-cache size of the released models (their parameter counts: tests/registry) ----

RELEASED = ["Falcon-7B", "Falcon-40B", "Falcon-180B"]  # read from the registry, not retyped


@pytest.mark.parametrize("name", RELEASED)
def test_kv_cache_ratio_of_released_models(name):
    """The seed list says multi-query attention shrinks the KV cache "10-100x": check per model."""
    cfg = FalconLMConfig.from_hf(released_config(name))
    ours = kv_cache_bytes_per_token(cfg.num_hidden_layers, cfg.kv_heads, cfg.head_dim)
    mha = kv_cache_bytes_per_token(cfg.num_hidden_layers, cfg.num_attention_heads, cfg.head_dim)
    assert mha // ours == cfg.num_attention_heads // cfg.kv_heads
    assert 10 <= mha / ours <= 100


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
    for theta in (1.0, 0.5, float("nan")):  # refused at construction, not at the first forward
        with pytest.raises(ValueError, match=r"rope_theta"):
            FalconLMConfig(97, 32, 1, 4, rope_theta=theta)


def test_unsupported_hf_configs_raise():
    with pytest.raises(ValueError, match="alibi=True"):
        FalconLMConfig.from_hf(tiny_config("falcon", alibi=True))
    with pytest.raises(ValueError, match="parallel_attn=False"):
        FalconLMConfig.from_hf(tiny_config("falcon", parallel_attn=False))
    with pytest.raises(ValueError, match="activation"):
        FalconLMConfig.from_hf(tiny_config("falcon", activation="relu"))


def test_bad_attention_input_raises():
    ours = FalconLM.from_hf(build("7b-mqa"))
    with pytest.raises(ValueError, match=r"x must have shape \(b, t, 32\)"):
        ours.transformer.h[0].self_attention(torch.randn(1, 2, 31), (None, None))
