"""Llama 3.1's RoPE frequency scaling against transformers' ``_compute_llama3_parameters``, and the
Llama model's RoPE table against ``LlamaRotaryEmbedding`` with ``rope_type="llama3"``."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

from demos.layers.rope import rope_inv_freq
from demos.layers.rope_scaling import Llama3RopeScaling, llama3_inv_freq
from demos.models.llama import LlamaLM, LlamaLMConfig

# (factor, low_freq_factor, high_freq_factor, original_max_position_embeddings, head_dim, theta)
SETTINGS = [
    (8.0, 1.0, 4.0, 8192, 128, 500000.0),  # Llama 3.1's released values, 8B head
    (32.0, 1.0, 4.0, 8192, 64, 500000.0),  # a factor of 32, 64-channel heads
    (4.0, 2.0, 8.0, 2048, 128, 10000.0),  # another band, Llama 2's base
    (2.0, 0.5, 1.5, 64, 16, 10000.0),  # a tiny context: every regime among 8 frequencies
    (1.0, 1.0, 4.0, 8192, 128, 500000.0),  # factor 1: nothing changes
]


def hf_config(factor, low, high, original, head_dim, theta, **extra):
    return LlamaConfig(
        hidden_size=4 * head_dim,
        num_attention_heads=4,
        head_dim=head_dim,
        max_position_embeddings=4 * original,
        rope_parameters={
            "rope_type": "llama3",
            "rope_theta": theta,
            "factor": factor,
            "low_freq_factor": low,
            "high_freq_factor": high,
            "original_max_position_embeddings": original,
        },
        **extra,
    )


@pytest.mark.parametrize("setting", SETTINGS, ids=[f"factor={s[0]},L={s[3]}" for s in SETTINGS])
def test_llama3_inv_freq_equals_compute_llama3_parameters(setting):
    config = hf_config(*setting)
    expected, attention_factor = ROPE_INIT_FUNCTIONS["llama3"](config)
    scaling = Llama3RopeScaling.from_hf(config)
    ours = llama3_inv_freq(rope_inv_freq(setting[4], setting[5]), scaling)
    assert attention_factor == 1.0  # llama3 scales no attention: cos and sin stay as they are
    assert ours.dtype == expected.dtype == torch.float32
    torch.testing.assert_close(ours, expected, atol=0, rtol=0)


def test_the_three_regimes_and_continuity():
    """Fast frequencies kept, slow ones divided by factor, and the blend meets both ends."""
    scaling = Llama3RopeScaling(8.0, 1.0, 4.0, 8192)
    theta = rope_inv_freq(128, 500000.0).double()
    new = llama3_inv_freq(theta, scaling)
    assert new.dtype == torch.float64  # float64 stays float64
    wavelen = 2 * math.pi / theta
    fast, slow = wavelen < 8192 / 4, wavelen > 8192 / 1
    assert fast.any() and slow.any() and (~fast & ~slow).any()  # all three regimes are present
    assert torch.equal(new[fast], theta[fast])
    torch.testing.assert_close(new[slow], theta[slow] / 8)
    band = ~fast & ~slow
    assert ((new[band] < theta[band]) & (new[band] > theta[band] / 8)).all()
    # at the band's edges the blend equals the neighbours' rules: theta at L/high, theta/8 at L/low
    edges = torch.tensor([2 * math.pi / 2048, 2 * math.pi / 8192], dtype=torch.float64)
    torch.testing.assert_close(llama3_inv_freq(edges, scaling), edges * torch.tensor([1, 1 / 8]))


def our_table(config, positions):
    """Our LlamaLM's RoPE table for a transformers config (a vocabulary added, nothing else)."""
    ours = LlamaLM(LlamaLMConfig.from_hf(LlamaConfig(**{**config.to_dict(), "vocab_size": 11})))
    return ours.position_embeddings(positions, torch.float32)


def test_llama_rope_table_equals_llama_rotary_embedding():
    config = hf_config(8.0, 1.0, 4.0, 64, 16, 10000.0)
    positions = torch.arange(0, 300, 7)[None]  # (1, t), past the original context
    cos, sin = LlamaRotaryEmbedding(config)(torch.zeros(1), positions)
    our_cos, our_sin = our_table(config, positions)
    torch.testing.assert_close(our_cos, cos, atol=1e-6, rtol=0)
    torch.testing.assert_close(our_sin, sin, atol=1e-6, rtol=0)
    plain = {"rope_type": "default", "rope_theta": 10000.0}
    plain_cos, _ = our_table(
        LlamaConfig(**{**config.to_dict(), "rope_parameters": plain}), positions
    )
    assert (plain_cos - cos).abs().max() > 0.1  # the scaling changes the table: not a no-op


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"factor": 0.5}, r"factor \(0.5\) must be a finite number >= 1"),
        ({"low_freq_factor": 0.0}, r"low_freq_factor \(0.0\) must be positive"),
        ({"high_freq_factor": 1.0}, r"high_freq_factor \(1.0\) must exceed low_freq_factor"),
        ({"original_max_position_embeddings": 0}, "original_max_position_embeddings"),
        ({"factor": float("nan")}, "factor"),
    ],
)
def test_bad_scaling_raises(changes, match):
    values = dict(
        factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=8192
    )
    with pytest.raises(ValueError, match=match):
        Llama3RopeScaling(**{**values, **changes})


@pytest.mark.parametrize(
    ("inv_freq", "match"),
    [
        (torch.ones(2, 2), "1-D"),
        (torch.ones(4, dtype=torch.long), "floating"),
        (torch.tensor([1.0, 0.0]), "positive finite"),
        (torch.tensor([1.0, float("nan")]), "positive finite"),
        ([1.0, 0.5], "1-D tensor"),
    ],
)
def test_bad_inv_freq_raises(inv_freq, match):
    with pytest.raises(ValueError, match=match):
        llama3_inv_freq(inv_freq, Llama3RopeScaling(8.0, 1.0, 4.0, 8192))


def test_other_scalings_are_still_refused():
    config = LlamaConfig(
        hidden_size=32,
        num_attention_heads=4,
        rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0},
    )
    with pytest.raises(ValueError, match="rope_type 'linear' is not supported here"):
        LlamaLMConfig.from_hf(config)


@settings(max_examples=40, deadline=None)
@given(
    factor=st.floats(1.0, 64.0),
    low=st.floats(0.25, 4.0),
    gap=st.floats(0.5, 16.0),
    log2_original=st.integers(4, 17),
    half_dim=st.integers(1, 128),
    theta=st.sampled_from([10000.0, 500000.0, 1e6]),
)
def test_llama3_inv_freq_equals_transformers_on_random_settings(
    factor, low, gap, log2_original, half_dim, theta
):
    setting = (factor, low, low + gap, 2**log2_original, 2 * half_dim, theta)
    expected, _ = ROPE_INIT_FUNCTIONS["llama3"](hf_config(*setting))
    ours = llama3_inv_freq(
        rope_inv_freq(2 * half_dim, theta), Llama3RopeScaling.from_hf(hf_config(*setting))
    )
    torch.testing.assert_close(ours, expected, atol=0, rtol=0)
