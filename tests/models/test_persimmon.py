"""What is particular to Persimmon: the attention with a LayerNorm on each query and key head, and the
block, against transformers' classes; the released size; bad configs (the shared checks are rows of
tests/test_conformance.py; the squared-ReLU MLP is in tests/layers/test_mlp.py)."""

from __future__ import annotations

import pytest

from demos.models.persimmon import (
    PersimmonLMAttention,
    PersimmonLMBlock,
    PersimmonLMConfig,
)
from demos.registry import released_config
from demos.weights import load_hf_weights
from helpers import (
    assert_block_parity,
    assert_module_parity,
    causal,
    tables,
    tiny_config,
    tiny_model,
)


@pytest.mark.parametrize("qk_layernorm", [True, False])
@pytest.mark.parametrize("t", [1, 7])
def test_qk_layernorm_attention_matches_transformers(setting, qk_layernorm, t):
    hf_model = tiny_model("persimmon", setting.device, setting.dtype, qk_layernorm=qk_layernorm)
    hf = hf_model.model.layers[0].self_attn
    ours = PersimmonLMAttention.from_hf(hf)
    assert hasattr(ours, "q_layernorm") == qk_layernorm
    cos, sin = tables(hf_model.model.rotary_emb, t, setting)  # (1, t, r), r = d / 2
    assert_module_parity(
        ours,
        hf,
        lambda x: ours(x, (cos[0], sin[0])),
        lambda x: hf(x, attention_mask=causal(t, setting), position_embeddings=(cos, sin))[0],
        (2, t, 32),
        setting,
    )


def test_block_matches_transformers(setting):
    hf_model = tiny_model("persimmon", setting.device, setting.dtype)
    hf = hf_model.model.layers[0]
    ours = load_hf_weights(PersimmonLMBlock(PersimmonLMConfig.from_hf(hf_model.config), 0), hf)
    assert_block_parity(ours, hf, hf_model.model.rotary_emb, setting)


def test_released_size_rotates_half_of_each_head():
    """Persimmon-8B: partial_rotary_factor 0.5. (Our parameter count at the released size is
    tests/registry/test_registry.py's.)"""
    config = PersimmonLMConfig.from_hf(released_config("Persimmon-8B"))
    assert config.rotary_ndims == config.head_dim // 2


def test_bad_config_raises():
    with pytest.raises(ValueError, match=r"hidden_act \('gelu'\) must be 'relu2'"):
        PersimmonLMConfig(97, 32, 1, 4, 56, hidden_act="gelu")
    with pytest.raises(ValueError, match=r"use_parallel_residual \(True\)"):
        PersimmonLMConfig(97, 32, 1, 4, 56, use_parallel_residual=True)
    with pytest.raises(ValueError, match=r"qk_layernorm \(1\) must be True or False"):
        PersimmonLMConfig(97, 32, 1, 4, 56, qk_layernorm=1)
    with pytest.raises(ValueError, match=r"partial_rotary_factor"):
        PersimmonLMConfig(97, 32, 1, 4, 56, partial_rotary_factor=-0.5)
    with pytest.raises(ValueError, match="hidden_act"):
        PersimmonLMConfig.from_hf(tiny_config("persimmon", hidden_act="gelu"))
