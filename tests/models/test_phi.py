"""What is particular to Phi: its attention (biases, ``dense``), MLP (``fc1 fc2``, gelu_new) and the
one-LayerNorm parallel block against transformers' classes; released sizes; bad configs (the shared
checks are rows of tests/test_conformance.py)."""

from __future__ import annotations

import pytest
import torch

from demos.models.phi import PhiLM, PhiLMAttention, PhiLMBlock, PhiLMConfig, PhiLMMLP
from demos.registry import family_sizes, released_config
from demos.weights import load_hf_weights
from helpers import (
    assert_block_parity,
    assert_lm_parity,
    assert_module_parity,
    causal,
    tables,
    tiny_config,
    tiny_model,
)


@pytest.mark.parametrize("g", [4, 2, 1])
@pytest.mark.parametrize("t", [1, 7])
def test_attention_matches_transformers(setting, g, t):
    hf_model = tiny_model("phi", setting.device, setting.dtype, num_key_value_heads=g)
    hf = hf_model.model.layers[0].self_attn
    ours = PhiLMAttention.from_hf(hf)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in hf.named_parameters()]
    cos, sin = tables(hf_model.model.rotary_emb, t, setting)
    assert_module_parity(
        ours,
        hf,
        lambda x: ours(x, (cos[0], sin[0])),
        lambda x: hf(x, (cos, sin), causal(t, setting))[0],
        (2, t, 32),
        setting,
    )


def test_mlp_matches_transformers(setting):
    hf_model = tiny_model("phi", setting.device, setting.dtype)
    hf = hf_model.model.layers[0].mlp
    ours = load_hf_weights(PhiLMMLP(PhiLMConfig.from_hf(hf_model.config)), hf)
    assert_module_parity(ours, hf, ours, hf, (2, 5, 32), setting)


def test_block_matches_transformers(setting):
    hf_model = tiny_model("phi", setting.device, setting.dtype)
    hf = hf_model.model.layers[0]
    ours = load_hf_weights(PhiLMBlock(PhiLMConfig.from_hf(hf_model.config), 0), hf)
    assert_block_parity(ours, hf, hf_model.model.rotary_emb, setting)


def test_tied_head_keeps_its_bias(fp32_setting):
    hf = tiny_model("phi", tie_word_embeddings=True)
    ours = PhiLM.from_hf(hf)
    assert ours.lm_head.weight is ours.model.embed_tokens.weight
    assert ours.lm_head.bias is not None
    assert_lm_parity(ours, hf, torch.randint(0, 97, (2, 7)), fp32_setting)


@pytest.mark.parametrize("name", [size.name for size in family_sizes("Phi")])
def test_released_sizes_rotate_32_channels_of_each_head(name):
    """phi-1/1.5 (d = 64, factor 0.5) and phi-2 (d = 80, factor 0.4) both rotate 32 channels."""
    config = PhiLMConfig.from_hf(released_config(name))
    assert config.rotary_ndims == 32


def test_bad_config_raises():
    with pytest.raises(ValueError, match=r"num_attention_heads \(4\) must be divisible by"):
        PhiLMConfig(97, 32, 1, 4, 56, num_key_value_heads=3)
    with pytest.raises(ValueError, match=r"qk_layernorm \(True\) is not supported"):
        PhiLMConfig(97, 32, 1, 4, 56, qk_layernorm=True)
    with pytest.raises(ValueError, match=r"use_parallel_residual \(False\)"):
        PhiLMConfig(97, 32, 1, 4, 56, use_parallel_residual=False)
    with pytest.raises(ValueError, match=r"hidden_act \('relu'\) must be one of"):
        PhiLMConfig(97, 32, 1, 4, 56, hidden_act="relu")
    with pytest.raises(ValueError, match="qk_layernorm"):
        PhiLMConfig.from_hf(tiny_config("phi", qk_layernorm=True))
