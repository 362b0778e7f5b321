"""What is particular to GPT-NeoX (Pythia): its attention layer and block against transformers' with
partial rotary, the sequential block, the rotary share, released sizes, bad configs (the checks every
model shares are rows of tests/test_conformance.py; the fused split in tests/layers/test_fused_qkv.py).
"""

from __future__ import annotations

import pytest
import torch

from demos.models.gpt_neox import GPTNeoXLM, GPTNeoXLMAttention, GPTNeoXLMBlock, GPTNeoXLMConfig
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


@pytest.mark.parametrize("rotary_pct", [0.25, 0.5, 1.0])
@pytest.mark.parametrize("t", [1, 7])
def test_attention_layer_matches_transformers(setting, rotary_pct, t):
    hf_model = tiny_model(
        "gpt_neox", setting.device, setting.dtype, rotary_pct=rotary_pct, hidden_size=64
    )  # head_dim 16: 4, 8 or 16 rotated channels
    hf = hf_model.gpt_neox.layers[0].attention
    ours = GPTNeoXLMAttention.from_hf(hf)
    cos, sin = tables(hf_model.gpt_neox.rotary_emb, t, setting)  # (1, t, r)
    assert cos.shape[-1] == int(16 * rotary_pct)
    assert_module_parity(
        ours,
        hf,
        lambda x: ours(x, (cos[0], sin[0])),
        lambda x: hf(x, causal(t, setting), position_embeddings=(cos, sin))[0],
        (2, t, 64),
        setting,
    )


@pytest.mark.parametrize("parallel", [True, False])
def test_block_matches_transformers(setting, parallel):
    hf_model = tiny_model("gpt_neox", setting.device, setting.dtype, use_parallel_residual=parallel)
    hf = hf_model.gpt_neox.layers[0]
    ours = load_hf_weights(GPTNeoXLMBlock(GPTNeoXLMConfig.from_hf(hf_model.config), 0), hf)
    assert_block_parity(ours, hf, hf_model.gpt_neox.rotary_emb, setting)


@pytest.mark.parametrize("act", ["gelu", "gelu_new"])
@pytest.mark.parametrize("tie", [False, True])
def test_activations_and_tied_head_match_transformers(fp32_setting, act, tie):
    hf = tiny_model("gpt_neox", hidden_act=act, tie_word_embeddings=tie)
    ours = GPTNeoXLM.from_hf(hf)
    assert (ours.lm_head.weight is ours.gpt_neox.embed_in.weight) == tie
    assert_lm_parity(ours, hf, torch.randint(0, 97, (2, 7)), fp32_setting)


def test_partial_rotary_leaves_the_other_channels_alone():
    """With rotary_pct 0.25 only a quarter of each query turns: the rest is position-free."""
    hf = tiny_model("gpt_neox", rotary_pct=0.25, hidden_size=64)  # d = 16, r = 4
    ours = GPTNeoXLM.from_hf(hf)
    cos, sin = ours.position_embeddings(torch.arange(5), torch.float32)
    assert cos.shape == (5, 4)
    q = torch.randn(1, 1, 5, 16)
    q[:, :, :] = q[:, :, :1]  # the same query at every position
    from demos.layers.rope import apply_rope

    turned = apply_rope(q, cos, sin)
    assert torch.equal(turned[..., 4:], q[..., 4:])  # the 12 passed channels: untouched
    assert not torch.allclose(turned[..., 1, :4], turned[..., 0, :4])  # the 4 rotated: moved


# ---- the released suite, from the registry ----

PYTHIA = [size.name for size in family_sizes("Pythia")]


@pytest.mark.parametrize("name", PYTHIA)
def test_released_sizes_rotate_a_quarter_of_each_head(name):
    """Every Pythia size: rotary_pct 0.25. (Our parameter count at every released size is
    tests/registry/test_registry.py's.)"""
    config = GPTNeoXLMConfig.from_hf(released_config(name))
    assert config.rotary_ndims == config.head_dim // 4


# ---- bad input ----


def test_bad_config_raises():
    with pytest.raises(ValueError, match=r"hidden_size \(30\) must be divisible"):
        GPTNeoXLMConfig(97, 30, 1, 4, 56)
    with pytest.raises(ValueError, match=r"partial_rotary_factor \(0\) must be a number in"):
        GPTNeoXLMConfig(97, 32, 1, 4, 56, partial_rotary_factor=0)
    with pytest.raises(ValueError, match=r"partial_rotary_factor \(1.5\)"):
        GPTNeoXLMConfig(97, 32, 1, 4, 56, partial_rotary_factor=1.5)
    with pytest.raises(ValueError, match=r"int\(8 \* 0.375\) = 3 must be a positive even"):
        GPTNeoXLMConfig(97, 32, 1, 4, 56, partial_rotary_factor=0.375)
    with pytest.raises(ValueError, match=r"hidden_act \('relu'\) must be one of"):
        GPTNeoXLMConfig(97, 32, 1, 4, 56, hidden_act="relu")
    with pytest.raises(ValueError, match=r"intermediate_size \(0\)"):
        GPTNeoXLMConfig(97, 32, 1, 4, 0)
    with pytest.raises(ValueError, match=r"layer_norm_eps"):
        GPTNeoXLMConfig(97, 32, 1, 4, 56, layer_norm_eps=0.0)
    with pytest.raises(ValueError, match=r"rope_theta"):
        GPTNeoXLMConfig(97, 32, 1, 4, 56, rope_theta=float("nan"))


def test_unsupported_hf_configs_raise():
    with pytest.raises(ValueError, match="rope_type 'linear' is not supported"):
        GPTNeoXLMConfig.from_hf(
            tiny_config(
                "gpt_neox",
                rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4},
            )
        )
    with pytest.raises(ValueError, match="hidden_act"):
        GPTNeoXLMConfig.from_hf(tiny_config("gpt_neox", hidden_act="silu"))


def test_bad_attention_input_raises():
    ours = GPTNeoXLMAttention(GPTNeoXLMConfig(97, 32, 1, 4, 56))
    cos, sin = torch.ones(3, 2), torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(b, t, 32\), got \(2, 3, 16\)"):
        ours(torch.randn(2, 3, 16), (cos, sin))
