"""What is particular to the Llama decoder; the checks every model shares are in tests/test_conformance.py."""

from __future__ import annotations

import pytest
import torch

from demos.models.llama import LlamaLM, LlamaLMConfig
from demos.weights import count_parameters
from helpers import tiny_llama, tiny_llama_config


def token_ids(t: int, vocab_size: int = 97, b: int = 2, device: str = "cpu") -> torch.Tensor:
    return torch.randint(0, vocab_size, (b, t), device=device)


def test_tied_embeddings_match_llama(fp32_setting):
    hf = tiny_llama(2, tie_word_embeddings=True)
    ours = LlamaLM.from_hf(hf)
    assert ours.lm_head.weight is ours.embed.weight
    assert count_parameters(ours) == sum(p.numel() for p in hf.parameters())
    ids = token_ids(5)
    fp32_setting.close(ours(ids), hf(ids).logits)


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
