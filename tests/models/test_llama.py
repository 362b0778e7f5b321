"""The tiny Llama-style decoder against transformers' LlamaForCausalLM: logits, gradients, cached decoding, generate."""

from __future__ import annotations

import pytest
import torch

from demos.models.llama import LlamaLM, LlamaLMConfig
from demos.weights import count_parameters
from helpers import assert_lm_parity, assert_same_greedy_tokens, tiny_llama, tiny_llama_config


def token_ids(t: int, vocab_size: int = 97, b: int = 2, device: str = "cpu") -> torch.Tensor:
    return torch.randint(0, vocab_size, (b, t), device=device)


@pytest.mark.parametrize("g", [4, 2, 1], ids=["mha", "gqa", "mqa"])
@pytest.mark.parametrize("t", [1, 7, 16])
def test_logits_and_gradients_match_llama(setting, g, t):
    hf = tiny_llama(g, setting.device, setting.dtype)
    ours = LlamaLM.from_hf(hf)
    assert_lm_parity(ours, hf, token_ids(t, device=setting.device), setting)


def test_tied_embeddings_match_llama(fp32_setting):
    hf = tiny_llama(2, tie_word_embeddings=True)
    ours = LlamaLM.from_hf(hf)
    assert ours.lm_head.weight is ours.model.embed_tokens.weight
    assert count_parameters(ours) == sum(p.numel() for p in hf.parameters())
    ids = token_ids(5)
    fp32_setting.close(ours(ids), hf(ids).logits)


def test_parameter_count_matches_llama():
    hf = tiny_llama(2)
    assert count_parameters(LlamaLM.from_hf(hf)) == sum(p.numel() for p in hf.parameters())


@pytest.mark.parametrize("g", [4, 1])
def test_cached_decoding_equals_full_forward(setting, g):
    ours = LlamaLM.from_hf(tiny_llama(g, setting.device, setting.dtype))
    ids = token_ids(11, device=setting.device)
    with torch.no_grad():
        full = ours(ids)
        caches = ours.new_cache()
        steps = [ours(ids[:, :5], caches)] + [ours(ids[:, i : i + 1], caches) for i in range(5, 11)]
    setting.close(torch.cat(steps, dim=1), full)


@pytest.mark.parametrize("g", [4, 2, 1], ids=["mha", "gqa", "mqa"])
def test_greedy_generate_equals_transformers(fp32_device_setting, g):
    """Tokens are compared in fp32 only: in bf16 two logits can tie and argmax may pick either."""
    setting = fp32_device_setting
    hf = tiny_llama(g, setting.device, setting.dtype)
    ours = LlamaLM.from_hf(hf)
    prompt = token_ids(6, device=setting.device)
    assert_same_greedy_tokens(ours, hf, prompt, 12)


def test_from_hf_reads_every_field():
    config = LlamaLMConfig.from_hf(
        tiny_llama_config(num_key_value_heads=1, rms_norm_eps=1e-6, tie_word_embeddings=True)
    )
    assert (config.num_attention_heads, config.num_key_value_heads, config.head_dim) == (4, 1, 8)
    assert (config.rms_norm_eps, config.rope_theta, config.tie_word_embeddings) == (
        1e-6,
        10000.0,
        True,
    )


# ---- bad input ----


def test_out_of_range_token_raises():
    ours = LlamaLM.from_hf(tiny_llama(2))
    with pytest.raises(
        ValueError, match=r"token ids must lie in \[0, 97\), got values from 0 to 97"
    ):
        ours(torch.tensor([[0, 97]]))
    with pytest.raises(ValueError, match="integer tensor"):
        ours(torch.tensor([[0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"shape \(b, t\)"):
        ours(torch.tensor([1, 2, 3]))


def test_unsupported_rope_scaling_raises():
    hf_config = tiny_llama_config(
        rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0},
    )
    with pytest.raises(ValueError, match="rope_type 'linear'"):
        LlamaLMConfig.from_hf(hf_config)


def test_bad_decoder_config_raises():
    with pytest.raises(
        ValueError,
        match=r"num_attention_heads \(6\) must be divisible by num_key_value_heads \(4\)",
    ):
        LlamaLMConfig(
            vocab_size=10,
            hidden_size=48,
            intermediate_size=8,
            num_hidden_layers=1,
            num_attention_heads=6,
            num_key_value_heads=4,
        )
    with pytest.raises(ValueError, match=r"num_hidden_layers \(0\)"):
        LlamaLMConfig(
            vocab_size=10,
            hidden_size=48,
            intermediate_size=8,
            num_hidden_layers=0,
            num_attention_heads=6,
        )


def test_wrong_cache_length_raises():
    ours = LlamaLM.from_hf(tiny_llama(2))
    with pytest.raises(ValueError, match=r"one KVCache per layer \(2\), got 1"):
        ours(token_ids(3), ours.new_cache()[:1])
