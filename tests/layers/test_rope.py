"""apply_rope and rope_cos_sin against transformers' Llama rotary embedding, plus RoPE's defining properties."""

from __future__ import annotations

import math

import pytest
import torch
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

from demos.layers.rope import apply_rope, rope_cos_sin
from helpers import tiny_llama_config


@pytest.mark.parametrize("head_dim", [2, 8, 64])
@pytest.mark.parametrize("base", [10000.0, 500000.0])
def test_cos_sin_match_llama_rotary_embedding(setting, head_dim, base):
    config = tiny_llama_config(
        hidden_size=4 * head_dim,
        head_dim=head_dim,
        rope_parameters={"rope_type": "default", "rope_theta": base},
    )
    rotary = LlamaRotaryEmbedding(config).to(setting.device)
    positions = torch.tensor(
        [[0, 1, 2, 3, 1000, 4095], [5, 6, 7, 8, 9, 10]], device=setting.device
    )  # (b, t)
    x = torch.empty(
        0, device=setting.device, dtype=setting.dtype
    )  # only its dtype and device are read
    hf_cos, hf_sin = rotary(x, positions)
    cos, sin = rope_cos_sin(positions, head_dim, base, dtype=setting.dtype)
    setting.close(cos, hf_cos)
    setting.close(sin, hf_sin)


@pytest.mark.parametrize("t", [1, 7, 16])
def test_apply_rope_matches_apply_rotary_pos_emb(setting, t):
    b, h, g, d = 2, 4, 2, 16
    q = torch.randn(b, h, t, d, device=setting.device, dtype=setting.dtype)
    k = torch.randn(b, g, t, d, device=setting.device, dtype=setting.dtype)
    positions = torch.arange(3, 3 + t, device=setting.device)
    cos, sin = rope_cos_sin(positions, d, dtype=setting.dtype)  # (t, d)
    hf_q, hf_k = apply_rotary_pos_emb(q, k, cos[None], sin[None])  # HF wants (b, t, d)
    setting.close(apply_rope(q, cos, sin), hf_q)
    setting.close(apply_rope(k, cos, sin), hf_k)
    # a per-example table (b, t, d) gives the same result as the shared (t, d) one
    setting.close(apply_rope(q, cos.expand(b, t, d), sin.expand(b, t, d)), hf_q)


def test_rotation_keeps_norm_and_scores_depend_only_on_distance():
    d = 32
    q, k = (
        torch.randn(1, 1, 1, d, dtype=torch.float64),
        torch.randn(1, 1, 1, d, dtype=torch.float64),
    )

    def rotated(x, m):
        cos, sin = rope_cos_sin(torch.tensor([m]), d, dtype=torch.float64)
        return apply_rope(x, cos, sin)

    torch.testing.assert_close(rotated(q, 37).norm(), q.norm())
    score = [
        (rotated(q, m + 5) * rotated(k, m)).sum() for m in (0, 11, 200)
    ]  # distance 5 each time
    # angles are computed in fp32 (as in transformers), so positions near 200 carry ~1e-5 angle error
    torch.testing.assert_close(score[1], score[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(score[2], score[0], atol=1e-5, rtol=1e-5)
    assert not torch.allclose((rotated(q, 9) * rotated(k, 0)).sum(), score[0])  # distance 9 differs


@pytest.mark.parametrize("head_dim", [0, 3, -2, 4.0])
def test_bad_head_dim_raises(head_dim):
    with pytest.raises(ValueError, match="head_dim"):
        rope_cos_sin(torch.arange(4), head_dim)


def test_float_positions_raise():
    with pytest.raises(ValueError, match="integer"):
        rope_cos_sin(torch.arange(4.0), 8)


def test_cos_sin_shape_mismatch_raises():
    cos, sin = rope_cos_sin(torch.arange(5), 8)
    with pytest.raises(ValueError, match=r"\(t, r\)"):
        apply_rope(torch.randn(1, 2, 4, 8), cos, sin)  # t = 4 but the table has 5 positions
    with pytest.raises(ValueError, match=r"\(b, h, t, d\)"):
        apply_rope(torch.randn(2, 5, 8), cos, sin)


# ---- bad input ----

_x = torch.randn(1, 2, 3, 4)
_cos, _sin = rope_cos_sin(torch.arange(3), 4)
BAD_ROPE = [
    ("integer cos/sin tables", _x, _cos.long(), _sin.long(), "floating"),
    ("integer x", _x.long(), _cos, _sin, "floating"),
    ("boolean sin", _x, _cos, _sin > 0, "floating"),
    ("cos of another length", _x, _cos[:2], _sin[:2], "cos and sin"),
    ("3-D x", _x[0], _cos, _sin, "shape"),
]


@pytest.mark.parametrize("case, x, cos, sin, match", BAD_ROPE, ids=[c[0] for c in BAD_ROPE])
def test_apply_rope_refuses_what_would_truncate_or_misalign(case, x, cos, sin, match):
    with pytest.raises(ValueError, match=match):
        apply_rope(x, cos, sin)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, "float32"])
def test_rope_cos_sin_tables_must_be_floating(dtype):
    with pytest.raises(ValueError, match="dtype"):
        rope_cos_sin(torch.arange(3), 4, dtype=dtype)


@pytest.mark.parametrize("base", [1.0, 0.5, -2.0, math.nan, math.inf, "10000"])
def test_rope_base_must_exceed_one(base):
    with pytest.raises(ValueError, match="base"):
        rope_cos_sin(torch.arange(3), 4, base)


def test_float64_tables_are_rotations_to_float64_precision():
    cos, sin = rope_cos_sin(torch.arange(0, 4096, 97), 8, dtype=torch.float64)
    torch.testing.assert_close(cos**2 + sin**2, torch.ones_like(cos), atol=1e-15, rtol=0)


def test_odd_head_dim_and_table_batch_mismatch_raise():
    """An odd d would pair the wrong channels; a (5, t, d) table would broadcast x to batch 5."""
    with pytest.raises(ValueError, match=r"head_dim d \(7\) must be even"):
        apply_rope(torch.randn(1, 2, 3, 7), torch.randn(3, 7), torch.randn(3, 7))
    cos, sin = rope_cos_sin(torch.arange(3).expand(5, 3), 8)  # (5, 3, 8)
    with pytest.raises(ValueError, match="cos and sin have batch 5, x has batch 1"):
        apply_rope(torch.randn(1, 2, 3, 8), cos, sin)


def test_positions_as_a_list_raise():
    with pytest.raises(ValueError, match="positions must be an integer tensor, got list"):
        rope_cos_sin([0, 1, 2], 8)


@pytest.mark.parametrize("rotary_pct", [0.25, 0.5, 1.0])
def test_partial_rotary_matches_gpt_neox(setting, rotary_pct):
    """Partial rotary (GPT-NeoX's rotary_pct): the first r channels turn, the other d - r pass."""
    from transformers import GPTNeoXConfig
    from transformers.models.gpt_neox.modeling_gpt_neox import (
        GPTNeoXRotaryEmbedding,
    )
    from transformers.models.gpt_neox.modeling_gpt_neox import (
        apply_rotary_pos_emb as neox_apply_rotary_pos_emb,
    )

    b, h, t, d = 2, 4, 7, 16
    config = GPTNeoXConfig(
        hidden_size=h * d, num_attention_heads=h, rotary_pct=rotary_pct, vocab_size=32
    )
    positions = torch.arange(t, device=setting.device).expand(b, t)  # (b, t)
    x = torch.empty(0, device=setting.device, dtype=setting.dtype)
    hf_cos, hf_sin = GPTNeoXRotaryEmbedding(config).to(setting.device)(x, positions)
    r = int(d * rotary_pct)
    assert hf_cos.shape[-1] == r  # the reference rotates r of the d channels
    cos, sin = rope_cos_sin(positions, r, config.rope_parameters["rope_theta"], setting.dtype)
    setting.close(cos, hf_cos)
    q = torch.randn(b, h, t, d, device=setting.device, dtype=setting.dtype)
    k = torch.randn(b, h, t, d, device=setting.device, dtype=setting.dtype)
    hf_q, hf_k = neox_apply_rotary_pos_emb(q, k, hf_cos, hf_sin)
    setting.close(apply_rope(q, cos, sin), hf_q)
    setting.close(apply_rope(k, cos, sin), hf_k)
    if r < d:  # the channels past r are untouched, exactly
        assert torch.equal(apply_rope(q, cos, sin)[..., r:], q[..., r:])


def test_inv_freq_override_is_used_and_checked():
    positions = torch.arange(5)
    inv_freq = torch.tensor([1.0, 0.5])
    cos, _ = rope_cos_sin(positions, 4, inv_freq=inv_freq)
    expected = torch.cos(positions[:, None].float() * inv_freq)  # (t, d/2)
    torch.testing.assert_close(cos, torch.cat((expected, expected), dim=-1))
    with pytest.raises(ValueError, match="inv_freq must have shape"):
        rope_cos_sin(positions, 8, inv_freq=inv_freq)


@pytest.mark.parametrize("r", [3, 18])
def test_rotated_width_must_be_even_and_at_most_d(r):
    x = torch.randn(1, 1, 2, 16)
    with pytest.raises(ValueError, match="even r <= d"):
        apply_rope(x, torch.ones(2, r), torch.zeros(2, r))
