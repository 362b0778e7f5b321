"""Attention: masks, repeat_kv, the attention function and GroupedQueryAttention against transformers."""

from __future__ import annotations

import dataclasses
import math
import types

import pytest
import torch
import torch.nn.functional as F
from transformers.masking_utils import causal_mask_function, sliding_window_causal_mask_function
from transformers.models.llama.modeling_llama import (
    LlamaAttention,
    LlamaRotaryEmbedding,
    eager_attention_forward,
)
from transformers.models.llama.modeling_llama import repeat_kv as hf_repeat_kv

from demos.layers.attention import (
    AttentionConfig,
    GroupedQueryAttention,
    attention,
    attention_weights,
    repeat_kv,
)
from demos.layers.kv_cache import KVCache, kv_cache_bytes_per_token
from demos.layers.masks import causal_mask, sliding_window_mask
from demos.layers.rope import rope_cos_sin
from helpers import assert_same_input_grads, cast_parameters, randomize_, tiny_llama_config

H, D = 4, 8  # query heads and head size of the small random tensors below


def hf_mask(mask_fn, t: int, s: int) -> torch.Tensor:
    """Evaluate a transformers mask function on the (t, s) grid; queries are the last t positions."""
    q_idx = torch.arange(s - t, s)[:, None]
    kv_idx = torch.arange(s)[None, :]
    return mask_fn(0, 0, q_idx, kv_idx).expand(t, s)


@pytest.mark.parametrize("t,s", [(1, 1), (5, 5), (1, 9), (3, 9), (16, 16)])
def test_causal_mask_matches_transformers(t, s):
    assert torch.equal(causal_mask(t, s), hf_mask(causal_mask_function, t, s))


@pytest.mark.parametrize("window", [1, 2, 3, 8, 64])
@pytest.mark.parametrize("t,s", [(1, 1), (7, 7), (1, 11), (4, 11), (16, 16)])
def test_sliding_window_mask_matches_transformers(t, s, window):
    assert torch.equal(
        sliding_window_mask(t, s, window),
        hf_mask(sliding_window_causal_mask_function(window), t, s),
    )


def test_sliding_window_mask_sees_exactly_window_keys():
    mask = sliding_window_mask(10, 10, 3)
    assert mask.sum(-1).tolist() == [1, 2, 3, 3, 3, 3, 3, 3, 3, 3]


@pytest.mark.parametrize("n_rep", [1, 2, 4])
def test_repeat_kv_matches_transformers(n_rep):
    x = torch.randn(2, 3, 5, D)
    assert torch.equal(repeat_kv(x, n_rep), hf_repeat_kv(x, n_rep))


def qkv(g, t, s, setting, b=2):
    q = torch.randn(b, H, t, D, device=setting.device, dtype=setting.dtype, requires_grad=True)
    k = torch.randn(b, g, s, D, device=setting.device, dtype=setting.dtype, requires_grad=True)
    v = torch.randn(b, g, s, D, device=setting.device, dtype=setting.dtype, requires_grad=True)
    return q, k, v


def hf_eager(q, k, v, mask: torch.Tensor | None):
    """transformers' eager attention with an additive mask, as LlamaAttention calls it."""
    module = types.SimpleNamespace(num_key_value_groups=q.shape[1] // k.shape[1], training=False)
    additive = None
    if mask is not None:
        additive = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill(
            ~mask, torch.finfo(q.dtype).min
        )
    out, _ = eager_attention_forward(module, q, k, v, additive, scaling=q.shape[-1] ** -0.5)
    return out.transpose(1, 2)  # HF returns (b, t, h, d)


@pytest.mark.parametrize("g", [H, H // 2, 1], ids=["mha", "gqa", "mqa"])
@pytest.mark.parametrize("t,s", [(1, 1), (7, 7), (1, 9), (3, 9)])
@pytest.mark.parametrize("window", [None, 1, 3, 100])
def test_attention_matches_transformers_eager(setting, g, t, s, window):
    q, k, v = qkv(g, t, s, setting)
    mask = (
        causal_mask(t, s, q.device)
        if window is None
        else sliding_window_mask(t, s, window, q.device)
    )
    ours = attention(q, k, v, window=window)
    ref = hf_eager(q, k, v, mask[None, None])
    assert_same_input_grads(ours, ref, {"q": q, "k": k, "v": v}, setting)


@pytest.mark.parametrize("g", [H, 2, 1])
def test_attention_matches_torch_sdpa(fp32_setting, g):
    q, k, v = qkv(g, 6, 6, fp32_setting)
    ref = F.scaled_dot_product_attention(
        q, repeat_kv(k, H // g), repeat_kv(v, H // g), is_causal=True
    )
    fp32_setting.close(attention(q, k, v), ref)
    ref = F.scaled_dot_product_attention(q, repeat_kv(k, H // g), repeat_kv(v, H // g))
    fp32_setting.close(attention(q, k, v, causal=False), ref)


def sdpa(q, k, v, **kwargs):
    """torch's scaled_dot_product_attention with our grouped k, v repeated to the query heads."""
    n_rep = q.shape[1] // k.shape[1]
    return F.scaled_dot_product_attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), **kwargs)


@pytest.mark.parametrize("g", [H, 1])
@pytest.mark.parametrize("t, s", [(5, 3), (7, 1), (1, 4)])
def test_non_causal_with_fewer_keys_than_queries_matches_torch_sdpa(g, t, s):
    """s < t is cross-attention to a short memory: allowed without causal, as SDPA allows it."""
    q, k, v = torch.randn(2, H, t, D), torch.randn(2, g, s, D), torch.randn(2, g, s, D)
    torch.testing.assert_close(attention(q, k, v, causal=False), sdpa(q, k, v))
    if s < t:  # causal keeps the queries as the last t of s positions: none exist before key 0
        with pytest.raises(ValueError, match=r"key length s .*\(causal=False allows fewer keys\)"):
            attention(q, k, v)


def random_bool_mask(shape, seed=0):
    """A random boolean mask with at least one visible key per query (so SDPA has no empty row)."""
    mask = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < 0.5
    mask[..., 0] = True
    return mask


MASK_SHAPES = [(2, H, 4, 6), (4, 6), (1, 1, 4, 6), (2, 1, 1, 6), (H, 4, 6)]


@pytest.mark.parametrize("shape", MASK_SHAPES, ids=str)
@pytest.mark.parametrize("g", [H, 2])
def test_a_boolean_mask_matches_torch_sdpa(shape, g):
    q, k, v = torch.randn(2, H, 4, D), torch.randn(2, g, 6, D), torch.randn(2, g, 6, D)
    mask = random_bool_mask(shape)
    torch.testing.assert_close(
        attention(q, k, v, causal=False, attn_mask=mask), sdpa(q, k, v, attn_mask=mask)
    )


@pytest.mark.parametrize("shape", MASK_SHAPES, ids=str)
def test_an_additive_mask_matches_torch_sdpa(shape):
    q, k, v = torch.randn(2, H, 4, D), torch.randn(2, 2, 6, D), torch.randn(2, 2, 6, D)
    bias = torch.randn(shape)  # an ALiBi-like bias: any finite values
    bias = bias.masked_fill(~random_bool_mask(shape, seed=1), float("-inf"))
    torch.testing.assert_close(
        attention(q, k, v, causal=False, attn_mask=bias), sdpa(q, k, v, attn_mask=bias)
    )


def test_a_mask_on_top_of_causal_and_padding_is_their_intersection():
    q, k, v = torch.randn(2, H, 5, D), torch.randn(2, 2, 5, D), torch.randn(2, 2, 5, D)
    mask = random_bool_mask((2, 1, 5, 5))
    padding = torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1]])
    combined = mask & causal_mask(5, 5) & padding[:, None, None, :].bool()
    ours = attention(q, k, v, attn_mask=mask, key_padding_mask=padding)
    expected = sdpa(q, k, v, attn_mask=combined)  # a query left no key: zeros in both
    torch.testing.assert_close(ours, expected)
    # an all-True mask changes nothing
    torch.testing.assert_close(
        attention(q, k, v, attn_mask=torch.ones(5, 5, dtype=torch.bool)), attention(q, k, v)
    )


def test_a_query_the_mask_leaves_no_key_returns_zeros_as_sdpa():
    q, k, v = torch.randn(1, H, 3, D), torch.randn(1, H, 4, D), torch.randn(1, H, 4, D)
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1] = False
    ours = attention(q, k, v, causal=False, attn_mask=mask)
    assert (ours[:, :, 1] == 0).all() and torch.isfinite(ours).all()
    torch.testing.assert_close(ours, sdpa(q, k, v, attn_mask=mask))


@pytest.mark.parametrize(
    "mask, match",
    [
        (
            torch.ones(4, 5, dtype=torch.bool),
            r"does not broadcast to \(b, h, t, s\) = \(1, 4, 3, 5\)",
        ),
        (torch.ones(1, 1, 1, 3, 5, dtype=torch.bool), "broadcasts to"),
        (torch.ones(3, 5, dtype=torch.long), r"integer 0/1 mask is ambiguous"),
        (torch.full((3, 5), math.nan), "no NaN or \\+inf"),
        (torch.full((3, 5), math.inf), "no NaN or \\+inf"),
        ([[True] * 5] * 3, "must be a tensor"),
    ],
)
def test_bad_attn_mask_raises(mask, match):
    with pytest.raises(ValueError, match=match):
        attention(_q, _k, _v, attn_mask=mask)


def test_window_at_least_sequence_equals_causal(fp32_setting):
    q, k, v = qkv(2, 9, 9, fp32_setting)
    fp32_setting.close(attention(q, k, v, window=9), attention(q, k, v))
    fp32_setting.close(attention(q, k, v, window=1000), attention(q, k, v))
    assert not torch.allclose(attention(q, k, v, window=3), attention(q, k, v))


def test_window_one_returns_own_value(fp32_setting):
    q, k, v = qkv(H, 5, 5, fp32_setting)
    fp32_setting.close(attention(q, k, v, window=1), v)


def test_last_t_queries_of_full_attention_equal_attention_on_suffix(fp32_setting):
    """The queries are the last t of s positions: a KV-cache decoding step sees what the full pass saw."""
    q, k, v = qkv(2, 9, 9, fp32_setting)
    full = attention(q, k, v, window=4)
    fp32_setting.close(attention(q[:, :, -3:], k, v, window=4), full[:, :, -3:])


def test_gqa_equals_mha_with_repeated_kv_weights(fp32_setting):
    """A GQA layer is an MHA layer whose key/value projections are tied within each group."""
    gqa = randomize_(GroupedQueryAttention(AttentionConfig(32, 4, num_key_value_heads=2)))
    mha = GroupedQueryAttention(AttentionConfig(32, 4, num_key_value_heads=4))
    d = 8
    with torch.no_grad():
        mha.q_proj.weight.copy_(gqa.q_proj.weight)
        mha.o_proj.weight.copy_(gqa.o_proj.weight)
        for name in ("k_proj", "v_proj"):
            w = (
                getattr(gqa, name).weight.view(2, 1, d, 32).expand(2, 2, d, 32).reshape(4 * d, 32)
            )  # head j -> j // 2
            getattr(mha, name).weight.copy_(w)
    x = torch.randn(2, 6, 32)
    cos_sin = rope_cos_sin(torch.arange(6), d)
    fp32_setting.close(gqa(x, cos_sin), mha(x, cos_sin))


@pytest.mark.parametrize("g", [4, 2, 1], ids=["mha", "gqa", "mqa"])
@pytest.mark.parametrize("t", [1, 7, 16])
@pytest.mark.parametrize("window", [None, 3])
def test_layer_matches_llama_attention(setting, g, t, window):
    config = tiny_llama_config(num_key_value_heads=g)
    hf = cast_parameters(
        randomize_(LlamaAttention(config, layer_idx=0)), setting.device, setting.dtype
    )
    ours = GroupedQueryAttention.from_hf(hf)
    if (
        window is not None
    ):  # Llama has no window: give HF's eager attention the sliding-window mask instead
        ours = GroupedQueryAttention(dataclasses.replace(ours.config, sliding_window=window))
        ours.load_state_dict(hf.state_dict())
        ours.to(setting.device, setting.dtype)
    x = torch.randn(2, t, config.hidden_size, device=setting.device, dtype=setting.dtype)
    x_hf, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    positions = torch.arange(t, device=setting.device)
    hf_cos_sin = LlamaRotaryEmbedding(config).to(setting.device)(x, positions[None])
    mask = (
        causal_mask(t, t, x.device)
        if window is None
        else sliding_window_mask(t, t, window, x.device)
    )
    additive = torch.zeros(mask.shape, dtype=x.dtype, device=x.device).masked_fill(
        ~mask, torch.finfo(x.dtype).min
    )
    ref, _ = hf(x_hf, position_embeddings=hf_cos_sin, attention_mask=additive[None, None])
    out = ours(x_ours, rope_cos_sin(positions, config.head_dim, dtype=setting.dtype))
    setting.close(out, ref)
    w = torch.randn_like(out)
    (ref * w).sum().backward()
    (out * w).sum().backward()
    setting.close(x_ours.grad, x_hf.grad, grad=True, msg="d/dx")
    hf_params = dict(hf.named_parameters())
    assert set(hf_params) == {n for n, _ in ours.named_parameters()}
    for name, p in ours.named_parameters():
        setting.close(p.grad, hf_params[name].grad, grad=True, msg=f"d/d{name}")


@pytest.mark.parametrize("g", [4, 1])
@pytest.mark.parametrize("window", [None, 3])
def test_cached_decoding_equals_full_forward(fp32_setting, g, window):
    layer = randomize_(
        GroupedQueryAttention(AttentionConfig(32, 4, num_key_value_heads=g, sliding_window=window))
    )
    x = torch.randn(2, 9, 32)
    cos, sin = rope_cos_sin(torch.arange(9), 8)
    full = layer(x, (cos, sin))
    cache = KVCache()
    steps = [
        layer(x[:, :4], (cos[:4], sin[:4]), cache)
    ]  # a 4-token prompt, then one token at a time
    steps += [layer(x[:, i : i + 1], (cos[i : i + 1], sin[i : i + 1]), cache) for i in range(4, 9)]
    assert len(cache) == 9
    fp32_setting.close(torch.cat(steps, dim=1), full)


def test_kv_cache_bytes_per_token_llama2_70b():
    # 80 layers x 8 KV heads x 128 dims x (K and V) x 2 bytes, worked out by hand: 327,680 bytes = 320 KiB
    assert kv_cache_bytes_per_token(80, 8, 128) == 327_680
    # the same model with multi-head attention (64 KV heads) would need 8x more
    assert kv_cache_bytes_per_token(80, 64, 128) == 8 * 327_680


# ---- bad input: a ValueError that names the value and the rule ----


@pytest.mark.parametrize(
    "q_shape,k_shape,match",
    [
        (
            (2, 4, 3, 8),
            (2, 3, 3, 8),
            r"query heads h \(4\) must be divisible by key/value heads g \(3\)",
        ),
        (
            (2, 4, 5, 8),
            (2, 2, 3, 8),
            r"key length s \(3\) must be at least the query length t \(5\)",
        ),
        ((2, 4, 3, 8), (1, 2, 3, 8), r"batch sizes differ"),
        ((2, 4, 3, 8), (2, 2, 3, 16), r"head_dim differs"),
        ((2, 4, 8), (2, 2, 3, 8), r"q must have 4 dims"),
    ],
)
def test_bad_shapes_raise(q_shape, k_shape, match):
    with pytest.raises(ValueError, match=match):
        attention(torch.randn(q_shape), torch.randn(k_shape), torch.randn(k_shape))


@pytest.mark.parametrize("window", [0, -2, 2.5, "4", True])
def test_bad_window_raises(window):
    q, k, v = torch.randn(1, 2, 4, 8), torch.randn(1, 2, 4, 8), torch.randn(1, 2, 4, 8)
    with pytest.raises(ValueError, match="window"):
        attention(q, k, v, window=window)


def test_window_without_causal_raises():
    q = torch.randn(1, 2, 4, 8)
    with pytest.raises(ValueError, match="causal"):
        attention(q, q, q, causal=False, window=2)


def test_k_v_shape_mismatch_raises():
    q = torch.randn(1, 2, 4, 8)
    with pytest.raises(ValueError, match="k and v must have the same shape"):
        attention(q, q, torch.randn(1, 2, 5, 8))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (
            dict(hidden_size=32, num_attention_heads=12, num_key_value_heads=5),
            r"\(12\) must be divisible by num_key_value_heads \(5\)",
        ),
        (dict(hidden_size=30, num_attention_heads=4), r"hidden_size \(30\) must be divisible"),
        (dict(hidden_size=32, num_attention_heads=4, head_dim=7), r"head_dim \(7\) must be even"),
        (dict(hidden_size=32, num_attention_heads=4, sliding_window=0), r"sliding_window \(0\)"),
        (dict(hidden_size=32, num_attention_heads=0), r"num_attention_heads \(0\)"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AttentionConfig(**kwargs)


def test_layer_rejects_wrong_width():
    layer = GroupedQueryAttention(AttentionConfig(32, 4))
    with pytest.raises(ValueError, match=r"x must have shape \(b, t, 32\)"):
        layer(torch.randn(1, 3, 16), rope_cos_sin(torch.arange(3), 8))


# ---- bad input: one ValueError per kind, raised at the boundary ----


def _qkv(h=4, g=2, t=3, s=5, d=4, dtype=torch.float32):
    return (
        torch.randn(1, h, t, d, dtype=dtype),
        torch.randn(1, g, s, d, dtype=dtype),
        torch.randn(1, g, s, d, dtype=dtype),
    )


_q, _k, _v = _qkv()
BAD_QKV = [
    ("q of another dtype", _q.double(), _k, _v, "one dtype"),
    ("v of another dtype", _q, _k, _v.to(torch.bfloat16), "one dtype"),
    ("integer tensors", *(x.long() for x in (_q, _k, _v)), "floating"),
    ("boolean q", _q > 0, _k > 0, _v > 0, "floating"),
    ("k and v of different lengths", _q, _k, _v[:, :, :4], "same shape"),
    ("3-D q", _q[0], _k, _v, "4 dims"),
    ("a list for k", _q, _k.tolist(), _v, "floating"),
    ("zero query heads", _q[:, :0], _k, _v, r"query heads h \(0\) must be at least 1"),
    (
        "zero head_dim",
        _q[..., :0],
        _k[..., :0],
        _v[..., :0],
        r"head_dim d \(0\) must be at least 1",
    ),
    ("zero queries (t = 0)", _q[:, :, :0], _k, _v, r"query length t \(0\) must be at least 1"),
    ("zero keys (s = 0)", _q, _k[:, :, :0], _v[:, :, :0], r"key length s \(0\) must be at least 1"),
    (
        "zero key/value heads",
        _q,
        _k[:, :0],
        _v[:, :0],
        r"key/value heads g \(0\) must be at least 1",
    ),
]


# attention_weights takes no v: the cases about v are not asked of it (rather than skipped)
BAD_QKV_CALLS = [
    (fn, *case)
    for fn in ("attention", "attention_weights", "banded_attention", "tiled_attention")
    for case in BAD_QKV
    if not (fn == "attention_weights" and case[0].startswith(("v ", "k and v")))
]


@pytest.mark.parametrize(
    "fn, case, q, k, v, match", BAD_QKV_CALLS, ids=[f"{c[0]}-{c[1]}" for c in BAD_QKV_CALLS]
)
def test_bad_qkv_raise_value_error(fn, case, q, k, v, match):
    from demos.layers.banded_attention import banded_attention
    from demos.layers.tiled_attention import tiled_attention

    call = {
        "attention": lambda: attention(q, k, v),
        "attention_weights": lambda: attention_weights(q, k),
        "banded_attention": lambda: banded_attention(q, k, v, window=2),
        "tiled_attention": lambda: tiled_attention(q, k, v, block_size=2),
    }[fn]
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("scale", [math.nan, math.inf, "0.5", True])
def test_scale_must_be_a_finite_number(scale):
    with pytest.raises(ValueError, match="scale"):
        attention(_q, _k, _v, scale=scale)


@pytest.mark.parametrize("x", [torch.zeros(2, 5, 4), torch.zeros(2, 2, 5, 4, 1), [1, 2]])
def test_repeat_kv_needs_four_dims(x):
    with pytest.raises(ValueError, match="4 dims"):
        repeat_kv(x, 2)


@pytest.mark.parametrize("window", [None, 0, -3, 1.5, True])
def test_sliding_window_mask_and_banded_attention_need_a_window(window):
    from demos.layers.banded_attention import banded_attention
    from demos.layers.masks import sliding_window_mask

    with pytest.raises(ValueError, match="window"):
        sliding_window_mask(3, 5, window)
    with pytest.raises(ValueError, match="window"):
        banded_attention(_q, _k, _v, window=window)


@pytest.mark.parametrize("rope_theta", [1.0, 0.5, 0.0, -10000.0, math.nan, math.inf, "1e4", None])
def test_llama_config_refuses_a_rope_base_at_construction(rope_theta):
    from demos.models.llama import LlamaLMConfig

    with pytest.raises(ValueError, match="rope_theta"):
        LlamaLMConfig(97, 32, 56, 2, 4, rope_theta=rope_theta)


def test_float64_attention_stays_float64():
    """The softmax runs in promote_types(dtype, fp32): fp64 inputs are not rounded to fp32 inside."""
    from demos.layers.banded_attention import banded_attention

    q, k, v = _qkv(dtype=torch.float64)
    expected = torch.softmax(
        (q @ repeat_kv(k, 2).transpose(-1, -2) / 2).masked_fill(
            ~torch.ones(3, 5, dtype=torch.bool).tril(2), -math.inf
        ),
        -1,
    ) @ repeat_kv(v, 2)
    for out in (attention(q, k, v), banded_attention(q, k, v, window=5)):
        assert out.dtype == torch.float64
        torch.testing.assert_close(out, expected, atol=1e-14, rtol=1e-14)


@pytest.mark.parametrize(
    "mask, match",
    [
        (
            torch.tensor([[0.0, 0.0, float("-inf")]]),
            "additive 0/-inf mask",
        ),  # transformers' additive form
        (torch.tensor([[1, 2, 1]]), "got the value 2"),
        (torch.ones(1, 4, dtype=torch.long), r"shape \(b, s\) = \(1, 3\)"),
    ],
    ids=["additive", "not-0-or-1", "wrong-length"],
)
def test_key_padding_mask_in_another_convention_raises(mask, match):
    """A mask in another convention would be read the wrong way round: refuse it, don't invert it."""
    q, k = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4)
    with pytest.raises(ValueError, match=match):
        attention(q, k, k, key_padding_mask=mask)


def test_key_padding_mask_of_booleans_equals_integers():
    q, k, v = torch.randn(2, 2, 4, 4), torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    mask = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    torch.testing.assert_close(
        attention(q, k, v, key_padding_mask=mask.bool()), attention(q, k, v, key_padding_mask=mask)
    )


def test_qkv_on_different_devices_raise():
    """The meta device stands in for a GPU: the error names the devices, not a kernel."""
    q, k = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4, device="meta")
    with pytest.raises(ValueError, match="must be on one device"):
        attention(q, k, k)
