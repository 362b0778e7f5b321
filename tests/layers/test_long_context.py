"""Qwen's long-context tricks against transcriptions of Qwen's own code (modeling_qwen.py of
Qwen/Qwen-7B [qwen2023modeling]) and against transformers' dynamic RoPE where the two coincide."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import Qwen2Config
from transformers.modeling_rope_utils import _compute_dynamic_ntk_parameters

from demos.layers.attention import AttentionConfig, GroupedQueryAttention, attention
from demos.layers.kv_cache import KVCache
from demos.layers.long_context import (
    LogNAttention,
    apply_logn,
    dynamic_ntk_inv_freq,
    logn_scale,
    lower_layers_window,
    ntk_scaled_base,
    qwen_ntk_alpha,
)
from demos.layers.rope import apply_rope, rope_cos_sin, rope_inv_freq

# ---- transcriptions of Qwen's code (QWenModel.get_ntk_alpha, RotaryEmbedding, QWenAttention) ----


def qwen_get_ntk_alpha(true_seq_len: int, seq_length: int) -> int:
    context_value = math.log(true_seq_len / seq_length, 2) + 1
    ntk_alpha = 2 ** math.ceil(context_value) - 1
    return max(ntk_alpha, 1)


def qwen_inv_freq(dim: int, base: float, ntk_alpha: float) -> torch.Tensor:
    base = base * ntk_alpha ** (dim / (dim - 2))
    return 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))


def qwen_logn_tensor(seq_length: int, size: int = 32768) -> torch.Tensor:
    logn_list = [math.log(i, seq_length) if i > seq_length else 1 for i in range(1, size)]
    return torch.tensor(logn_list)  # float32, entry p for the 0-based position p


# ---- dynamic NTK ----


@pytest.mark.parametrize("train_len", [1, 2, 3, 16, 100, 2048])
def test_alpha_equals_qwens_code_at_every_length(train_len):
    for seq_len in range(1, 70 * train_len if train_len < 200 else 9 * train_len):
        assert qwen_ntk_alpha(seq_len, train_len) == qwen_get_ntk_alpha(seq_len, train_len)


def test_alpha_by_hand():
    L = 2048
    cases = {1: 1, 2048: 1, 2049: 3, 4096: 3, 4097: 7, 8192: 7, 8193: 15, 32768: 31}
    assert {n: qwen_ntk_alpha(n, L) for n in cases} == cases


@pytest.mark.parametrize("head_dim", [4, 16, 128])
@pytest.mark.parametrize("seq_len", [5, 16, 17, 40, 100, 300])
def test_frequencies_equal_qwens_code_bit_for_bit(head_dim, seq_len):
    alpha = qwen_get_ntk_alpha(seq_len, 16)
    expected = qwen_inv_freq(head_dim, 10000.0, alpha)
    assert torch.equal(dynamic_ntk_inv_freq(head_dim, 10000.0, seq_len, 16), expected)


def dynamic_config(train_len: int, head_dim: int) -> Qwen2Config:
    return Qwen2Config(
        hidden_size=4 * head_dim,
        num_attention_heads=4,
        max_position_embeddings=train_len,
        rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0},
    )


@pytest.mark.parametrize("head_dim", [8, 16, 128])
@pytest.mark.parametrize("ratio", [0.25, 0.5, 1, 2, 4, 8, 16])
def test_frequencies_equal_transformers_dynamic_where_they_coincide(head_dim, ratio):
    """transformers' scale 2r - 1 (factor 2) is Qwen's 2 ** (ceil(log2 r) + 1) - 1 when r is a
    power of two; at r <= 1 both are 1. There the frequencies are the same floats."""
    L = 64
    seq_len = int(ratio * L)
    expected, _ = _compute_dynamic_ntk_parameters(dynamic_config(L, head_dim), seq_len=seq_len)
    assert torch.equal(dynamic_ntk_inv_freq(head_dim, 10000.0, seq_len, L), expected)


@pytest.mark.parametrize("seq_len", [65, 100, 129, 200, 300])
def test_between_powers_of_two_qwen_rounds_up_and_transformers_does_not(seq_len):
    L, d = 64, 16
    theirs, _ = _compute_dynamic_ntk_parameters(dynamic_config(L, d), seq_len=seq_len)
    ours = dynamic_ntk_inv_freq(d, 10000.0, seq_len, L)
    assert (ours[1:] < theirs[1:]).all()  # Qwen's larger scale: every slowed channel slower
    chunk = L * 2 ** math.ceil(math.log2(seq_len / L))  # Qwen = transformers at the chunk's end
    at_chunk, _ = _compute_dynamic_ntk_parameters(dynamic_config(L, d), seq_len=chunk)
    assert torch.equal(ours, at_chunk)


@pytest.mark.parametrize("d", [4, 16, 128])
@pytest.mark.parametrize("alpha", [1, 3, 7, 31])
def test_ntk_slows_the_slowest_channel_by_alpha_and_keeps_the_fastest(d, alpha):
    plain = rope_inv_freq(d, 10000.0).double()
    scaled = rope_inv_freq(d, ntk_scaled_base(10000.0, alpha, d)).double()
    assert scaled[0] == plain[0] == 1.0
    torch.testing.assert_close(scaled[-1] * alpha, plain[-1], rtol=1e-6, atol=0)


# ---- LogN ----


@pytest.mark.parametrize("train_len", [2, 4, 16, 2048])
def test_logn_equals_qwens_list(train_len):
    size = min(32768, 64 * train_len)
    expected = qwen_logn_tensor(train_len, size)
    ours = logn_scale(torch.arange(size - 1), train_len)
    torch.testing.assert_close(ours, expected, atol=0, rtol=torch.finfo(torch.float32).eps)


def test_logn_by_hand():
    """log_4(16) = 2 at 0-based position 15; 1 up to position L - 1; log_2048(2048 ** 2) = 2."""
    got = logn_scale(torch.tensor([0, 3, 4, 15, 63]), 4, torch.float64)
    expected = torch.tensor([1.0, 1.0, math.log(5) / math.log(4), 2.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(got, expected, atol=1e-15, rtol=0)
    assert logn_scale(torch.tensor([2048**2 - 1]), 2048, torch.float64).item() == 2.0
    assert logn_scale(torch.tensor([2047]), 2048).item() == 1.0


def test_apply_logn_gradcheck():
    q = torch.randn(2, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    positions = torch.tensor([2, 3, 4, 5, 6])  # L = 4: the last three scaled
    assert torch.autograd.gradcheck(lambda q: apply_logn(q, positions, 4), (q,))


def test_apply_logn_keeps_dtype_and_multiplies_rows():
    q = torch.randn(1, 2, 4, 8)
    out = apply_logn(q, torch.arange(2, 6), 4)  # positions 2, 3 (i = 3, 4: kept), 4, 5 (scaled)
    assert out.dtype == q.dtype
    assert torch.equal(out[:, :, :2], q[:, :, :2])
    torch.testing.assert_close(out[0, :, 2], q[0, :, 2] * math.log(5) / math.log(4))
    torch.testing.assert_close(out[0, :, 3], q[0, :, 3] * math.log(6) / math.log(4))


def qwen_attention_transcribed(attn, x, train_len):
    """QWenAttention.forward with Qwen2's projections: RoPE, then the query rows times
    logn_tensor[:, seq_start:seq_end] when the keys outnumber seq_length, then attention."""
    b, t, _ = x.shape
    d = attn.config.head_dim
    q = attn.q_proj(x).view(b, t, -1, d).transpose(1, 2)
    k = attn.k_proj(x).view(b, t, -1, d).transpose(1, 2)
    v = attn.v_proj(x).view(b, t, -1, d).transpose(1, 2)
    cos, sin = rope_cos_sin(torch.arange(t), d)
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    if t > train_len:
        q = q * qwen_logn_tensor(train_len, t + 1)[:t][None, None, :, None]
    context = attention(q, k, v)
    return attn.o_proj(context.transpose(1, 2).reshape(b, t, -1))


@pytest.mark.parametrize("t", [3, 8, 20])
def test_logn_attention_equals_qwens_code(t):
    torch.manual_seed(0)
    config = AttentionConfig(32, 4, 2, qkv_bias=True)
    attn = LogNAttention(config, train_len=8)
    x = torch.randn(2, t, 32)
    cos_sin = rope_cos_sin(torch.arange(t), 8)
    torch.testing.assert_close(
        attn(x, cos_sin), qwen_attention_transcribed(attn, x, 8), atol=1e-6, rtol=1e-5
    )
    plain = GroupedQueryAttention(config)
    plain.load_state_dict(attn.state_dict())
    same = torch.equal(plain(x, cos_sin), attn(x, cos_sin))
    assert same == (t <= 8)  # inside the training length LogN is the identity


def test_logn_attention_cached_decoding_counts_positions_from_the_start():
    torch.manual_seed(0)
    attn = LogNAttention(AttentionConfig(32, 4, 4), train_len=4)
    x = torch.randn(1, 10, 32)
    full = attn(x, rope_cos_sin(torch.arange(10), 8))
    cache, steps = KVCache(), []
    for i in range(10):
        steps.append(attn(x[:, i : i + 1], rope_cos_sin(torch.tensor([i]), 8), cache))
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-6, rtol=1e-5)


# ---- the report's windows ----


def test_lower_layers_window():
    assert lower_layers_window(4, 1) == ("sliding_attention",) + ("full_attention",) * 3
    assert lower_layers_window(2, 0) == ("full_attention",) * 2
    assert lower_layers_window(2, 2) == ("sliding_attention",) * 2


def test_bad_input_raises():
    with pytest.raises(ValueError, match="seq_len"):
        qwen_ntk_alpha(0, 16)
    with pytest.raises(ValueError, match="train_len"):
        qwen_ntk_alpha(5, 0)
    with pytest.raises(ValueError, match=r"alpha \(0.5\) must be a number >= 1"):
        ntk_scaled_base(10000.0, 0.5, 16)
    with pytest.raises(ValueError, match="rotary_dim"):
        ntk_scaled_base(10000.0, 3, 2)
    with pytest.raises(ValueError, match="integer tensor"):
        logn_scale(torch.tensor([1.0]), 4)
    with pytest.raises(ValueError, match="non-negative"):
        logn_scale(torch.tensor([-1]), 4)
    with pytest.raises(ValueError, match=r"train_len \(1\) must be >= 2"):
        logn_scale(torch.tensor([3]), 1)
    with pytest.raises(ValueError, match=r"positions must have shape \(t,\) = \(3,\)"):
        apply_logn(torch.randn(1, 1, 3, 4), torch.arange(4), 4)
    with pytest.raises(ValueError, match="windowed_layers"):
        lower_layers_window(2, 3)
    with pytest.raises(ValueError, match=r"train_len \(1\)"):
        LogNAttention(AttentionConfig(32, 4), train_len=1)
