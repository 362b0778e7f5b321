"""Tiled attention with an online softmax equals masked attention and PyTorch's scaled_dot_product_attention:
outputs and gradients, over random shapes, head ratios, block sizes and cached prefixes; float64 kept;
bad block sizes are a ValueError (bad q/k/v: tests/layers/test_attention.py's list runs on it too)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from demos.layers.attention import attention, repeat_kv
from demos.layers.tiled_attention import online_softmax_update, tiled_attention

F64 = torch.float64


def qkv(b, h, g, t, s, d, dtype=F64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(*shape, generator=gen, dtype=dtype).requires_grad_()
        for shape in ((b, h, t, d), (b, g, s, d), (b, g, s, d))
    )


def sdpa(q, k, v, causal, gqa="enable_gqa"):
    """PyTorch's attention, queries the last t of s keys: the causal mask is tril(diagonal=s - t)."""
    t, s = q.shape[2], k.shape[2]
    mask = torch.ones(t, s, dtype=torch.bool).tril(s - t) if causal else None
    if gqa == "repeat":
        r = q.shape[1] // k.shape[1]
        return F.scaled_dot_product_attention(q, repeat_kv(k, r), repeat_kv(v, r), attn_mask=mask)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)


def outputs_and_grads(fn, q, k, v):
    """fn(q, k, v) and the gradients of a fixed random linear loss of it."""
    q, k, v = (x.detach().clone().requires_grad_() for x in (q, k, v))
    out = fn(q, k, v)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    (out * w).sum().backward()
    return [out, q.grad, k.grad, v.grad]


def assert_all_close(ours, reference, atol, rtol):
    for name, a, e in zip(("output", "dq", "dk", "dv"), ours, reference, strict=True):
        assert a.dtype == e.dtype, name
        assert torch.isfinite(a).all() and torch.isfinite(e).all(), name
        torch.testing.assert_close(a, e, atol=atol, rtol=rtol, msg=lambda m, n=name: f"{n}: {m}")


shapes = st.fixed_dictionaries(
    {
        "b": st.integers(1, 2),
        "g": st.integers(1, 3),
        "r": st.integers(1, 3),  # query heads per key/value head
        "t": st.integers(1, 11),
        "cached": st.integers(0, 7),  # s = t + cached: decoding with a cache when > 0
        "d": st.sampled_from([1, 2, 4, 8]),
        "block_size": st.integers(1, 13),
        "causal": st.booleans(),
    }
)


@settings(max_examples=60, deadline=None)
@given(shape=shapes)
def test_equals_attention_and_sdpa_in_float64(shape):
    b, g, r, t, d = (shape[x] for x in "bgrtd")
    s = t + shape["cached"]
    q, k, v = qkv(b, g * r, g, t, s, d)
    causal, block = shape["causal"], shape["block_size"]
    ours = outputs_and_grads(
        lambda q, k, v: tiled_attention(q, k, v, causal=causal, block_size=block), q, k, v
    )
    assert ours[0].dtype == F64  # float64 stays float64
    for reference in (
        lambda q, k, v: attention(q, k, v, causal=causal),
        lambda q, k, v: sdpa(q, k, v, causal),
        lambda q, k, v: sdpa(q, k, v, causal, gqa="repeat"),
    ):
        assert_all_close(ours, outputs_and_grads(reference, q, k, v), atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("block_size", [1, 4, 7, 64])
@pytest.mark.parametrize("cached", [0, 5])
def test_equals_sdpa_in_float32(block_size, cached):
    """fp32: summation orders differ (blocks vs one softmax), a few ulps; held to the suite's 1e-5."""
    q, k, v = qkv(2, 8, 2, 19, 19 + cached, 16, dtype=torch.float32)
    ours = outputs_and_grads(
        lambda q, k, v: tiled_attention(q, k, v, block_size=block_size), q, k, v
    )
    reference = outputs_and_grads(lambda q, k, v: sdpa(q, k, v, True), q, k, v)
    assert_all_close(ours, reference, atol=1e-5, rtol=1e-5)


def test_is_causal_true_is_the_wrong_mask_for_a_cache():
    """SDPA's is_causal aligns the triangle top-left: with t < s, query 0 would see key 0 only.
    The offset of tiled_attention (query i at s - t + i) is what a cache needs."""
    q, k, v = qkv(1, 2, 2, 3, 8, 4)
    top_left = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    ours = tiled_attention(q, k, v, block_size=2)
    assert (ours - top_left).abs().max() > 0.1  # the two disagree, by far
    torch.testing.assert_close(ours, sdpa(q, k, v, True), atol=1e-12, rtol=1e-12)


def test_one_query_decoding_sees_every_key():
    q, k, v = qkv(1, 4, 2, 1, 9, 8)
    ours = tiled_attention(q, k, v, block_size=2)
    full = tiled_attention(q, k, v, causal=False, block_size=2)
    torch.testing.assert_close(ours, full, atol=0, rtol=0)  # the last position sees everything


def test_online_update_over_blocks_equals_one_softmax():
    """Folding a row of scores in pieces gives the softmax-weighted sum of the values."""
    gen = torch.Generator().manual_seed(0)
    scores, v = torch.randn(3, 10, generator=gen, dtype=F64) * 5, torch.randn(10, 4, dtype=F64)
    m = torch.full((3, 1), -math.inf, dtype=F64)
    ell, acc = torch.zeros(3, 1, dtype=F64), torch.zeros(3, 4, dtype=F64)
    for j0, j1 in ((0, 3), (3, 4), (4, 10)):
        m, ell, acc = online_softmax_update(m, ell, acc, scores[:, j0:j1], v[j0:j1])
    torch.testing.assert_close(acc / ell, torch.softmax(scores, -1) @ v, atol=1e-14, rtol=1e-13)
    torch.testing.assert_close(m, scores.amax(-1, keepdim=True), atol=0, rtol=0)


def test_large_scores_do_not_overflow():
    """The running max keeps exp() below 1: scores of 1e4 in fp32 give finite outputs."""
    q, k, v = qkv(1, 2, 2, 5, 5, 4, dtype=torch.float32)
    out = tiled_attention(q.detach() * 1e4, k.detach(), v.detach(), block_size=2)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, attention(q.detach() * 1e4, k.detach(), v.detach()))


@pytest.mark.parametrize("block_size", [0, -1, 2.0, True, None, "64"])
def test_block_size_must_be_a_positive_integer(block_size):
    q, k, v = qkv(1, 2, 2, 3, 3, 4)
    with pytest.raises(ValueError, match=r"block_size .* must be a positive integer"):
        tiled_attention(q, k, v, block_size=block_size)


@pytest.mark.parametrize("scale", [math.nan, math.inf, "0.5"])
def test_scale_must_be_a_finite_number(scale):
    q, k, v = qkv(1, 2, 2, 3, 3, 4)
    with pytest.raises(ValueError, match="scale"):
        tiled_attention(q, k, v, scale=scale)


def test_scale_is_used():
    q, k, v = qkv(1, 2, 1, 4, 6, 4)
    torch.testing.assert_close(
        tiled_attention(q, k, v, scale=0.3, block_size=3), attention(q, k, v, scale=0.3)
    )
