"""Property-based tests (hypothesis): each function against its definition, on random shapes, dtypes,
windows and head ratios, so that the cases nobody listed get tried too.

Definitions, written as plainly as possible and computed in float64:
attention is ``softmax(Q K^T / sqrt(d) + mask) V`` with each key/value head repeated for its query
heads; the selective scan is the recurrence of Algorithm 2 of [gu2023mamba], one token at a time;
DPO is Eq. (7) of [rafailov2023dpo]. Tensors come from a torch generator seeded by hypothesis.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from demos.layers.attention import attention, repeat_kv
from demos.layers.banded_attention import banded_attention
from demos.layers.rope import apply_rope, rope_cos_sin
from demos.layers.selective_scan import selective_scan, selective_scan_parallel
from demos.training.preference import dpo_loss, log1mexp, orpo_loss, sequence_logps

FAST = settings(max_examples=30, deadline=None)
TOL = {torch.float64: 1e-10, torch.float32: 2e-5}
seeds = st.integers(0, 2**31 - 1)
dtypes = st.sampled_from([torch.float32, torch.float64])


def randn(gen: torch.Generator, *shape: int, dtype=torch.float64, scale: float = 1.0):
    return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(dtype)


def naive_attention(q, k, v, window=None):
    """softmax(Q K^T / sqrt(d) + mask) V, float64, heads repeated with repeat_interleave, loops for the mask."""
    q, k, v = q.double(), k.double(), v.double()
    r = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(r, dim=1), v.repeat_interleave(r, dim=1)
    t, s = q.shape[2], k.shape[2]
    mask = torch.zeros(t, s, dtype=torch.float64)
    for i in range(t):
        for j in range(s):
            p = s - t + i  # the query's position
            if j > p or (window is not None and j <= p - window):
                mask[i, j] = -math.inf
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + mask
    return torch.softmax(scores, dim=-1) @ v


@st.composite
def qkv_shapes(draw):
    g = draw(st.integers(1, 3))
    r = draw(st.integers(1, 3))  # query heads per key/value head
    t = draw(st.integers(1, 7))
    s = t + draw(st.integers(0, 5))
    d = draw(st.sampled_from([1, 2, 4, 8]))
    return draw(st.integers(1, 2)), g * r, g, t, s, d


@FAST
@given(
    qkv_shapes(),
    st.one_of(st.none(), st.integers(1, 13)),
    dtypes,
    seeds,
    st.sampled_from([0.1, 1, 8]),
)
def test_attention_equals_its_definition(shape, window, dtype, seed, scale):
    b, h, g, t, s, d = shape
    gen = torch.Generator().manual_seed(seed)
    q = randn(gen, b, h, t, d, dtype=dtype, scale=scale)
    k, v = randn(gen, b, g, s, d, dtype=dtype, scale=scale), randn(gen, b, g, s, d, dtype=dtype)
    out = attention(q, k, v, window=window)
    assert out.dtype == dtype
    expected = naive_attention(q, k, v, window)
    torch.testing.assert_close(out.double(), expected, atol=TOL[dtype], rtol=TOL[dtype])


@FAST
@given(qkv_shapes(), st.integers(1, 13), st.one_of(st.none(), st.integers(1, 9)), dtypes, seeds)
def test_banded_attention_equals_masked_attention(shape, window, block, dtype, seed):
    b, h, g, t, s, d = shape
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (randn(gen, b, n, m, d, dtype=dtype) for n, m in ((h, t), (g, s), (g, s)))
    out = banded_attention(q, k, v, window=window, block=block)
    assert out.dtype == dtype
    expected = attention(q, k, v, window=window)
    torch.testing.assert_close(out, expected, atol=TOL[dtype], rtol=TOL[dtype])


@FAST
@given(st.integers(1, 3), st.integers(1, 4), st.sampled_from([1, 2, 4]), seeds)
def test_repeat_kv_lines_query_head_j_up_with_kv_head_j_div_r(g, r, s, seed):
    x = randn(torch.Generator().manual_seed(seed), 2, g, s, 4)
    out = repeat_kv(x, r)
    for j in range(g * r):
        assert torch.equal(out[:, j], x[:, j // r])


@FAST
@given(
    st.sampled_from([2, 4, 8, 16]),
    st.integers(0, 200),
    st.integers(0, 200),
    st.integers(-50, 50),
    st.sampled_from([100.0, 10000.0, 500000.0]),
    seeds,
)
def test_rope_preserves_norms_and_sees_only_relative_positions(d, m, n, shift, base, seed):
    """|R_m x| = |x|, pair by pair; <R_m q, R_n k> = <R_{m+c} q, R_{n+c} k>."""
    gen = torch.Generator().manual_seed(seed)
    q, k = randn(gen, 1, 1, 1, d), randn(gen, 1, 1, 1, d)
    shift = max(shift, -min(m, n))  # positions stay >= 0

    def rotate(x, pos):
        cos, sin = rope_cos_sin(torch.tensor([pos]), d, base, dtype=torch.float64)
        return apply_rope(x, cos, sin)

    rq = rotate(q, m)
    pair_norm = lambda x: x[..., : d // 2] ** 2 + x[..., d // 2 :] ** 2  # noqa: E731
    torch.testing.assert_close(pair_norm(rq), pair_norm(q), atol=1e-12, rtol=1e-12)
    dot = (rq * rotate(k, n)).sum()
    shifted = (rotate(q, m + shift) * rotate(k, n + shift)).sum()
    # the angles are computed in float32, as transformers does: ~1e-7 relative per angle, up to ~250 rad
    torch.testing.assert_close(dot, shifted, atol=1e-4 * (1 + q.norm() * k.norm()), rtol=0)


def naive_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus):
    """Algorithm 2 of [gu2023mamba], float64, one batch row, one channel, one token at a time."""
    b, e, length = u.shape
    n = A.shape[1]
    y = torch.zeros(b, e, length, dtype=torch.float64)
    state = torch.zeros(b, e, n, dtype=torch.float64)
    for i in range(b):
        for c in range(e):
            x = torch.zeros(n, dtype=torch.float64)
            for t in range(length):
                dt = float(delta[i, c, t]) + (0.0 if delta_bias is None else float(delta_bias[c]))
                dt = math.log1p(math.exp(dt)) if delta_softplus else dt
                x = torch.exp(dt * A[c].double()) * x + dt * float(u[i, c, t]) * B[i, :, t].double()
                out = float(x @ C[i, :, t].double())
                if D is not None:
                    out += float(D[c]) * float(u[i, c, t])
                if z is not None:
                    zz = float(z[i, c, t])
                    out *= zz / (1 + math.exp(-zz))
                y[i, c, t] = out
            state[i, c] = x
    return y, state


@FAST
@given(
    st.integers(1, 2),
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(1, 20),
    st.one_of(st.none(), st.integers(1, 25)),
    st.tuples(st.booleans(), st.booleans(), st.booleans()),
    dtypes,
    seeds,
)
def test_scans_equal_the_recurrence(b, e, n, length, chunk, options, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    with_D, with_z, with_bias = options
    x = dict(
        u=randn(gen, b, e, length, dtype=dtype),
        delta=randn(gen, b, e, length, dtype=dtype, scale=0.5),
        A=-torch.exp(randn(gen, e, n, scale=0.5)).to(dtype),
        B=randn(gen, b, n, length, dtype=dtype),
        C=randn(gen, b, n, length, dtype=dtype),
        D=randn(gen, e, dtype=dtype) if with_D else None,
        z=randn(gen, b, e, length, dtype=dtype) if with_z else None,
        delta_bias=randn(gen, e, dtype=dtype, scale=0.3) if with_bias else None,
    )
    y_ref, state_ref = naive_scan(**x, delta_softplus=True)
    seq = selective_scan(**x, delta_softplus=True, return_last_state=True)
    par = selective_scan_parallel(
        **x, delta_softplus=True, return_last_state=True, chunk_size=chunk
    )
    for y, state in (seq, par):
        assert y.dtype == dtype and state.dtype == dtype
        torch.testing.assert_close(y.double(), y_ref, atol=TOL[dtype], rtol=TOL[dtype])
        torch.testing.assert_close(state.double(), state_ref, atol=TOL[dtype], rtol=TOL[dtype])


log_probs = st.floats(-200.0, 0.0, allow_nan=False, allow_infinity=False)
betas = st.floats(0.01, 5.0)


@FAST
@given(
    st.lists(st.tuples(log_probs, log_probs, log_probs, log_probs), min_size=1, max_size=6), betas
)
def test_dpo_loss_equals_its_definition(rows, beta):
    lw, ll, rw, rl = (torch.tensor(col, dtype=torch.float64) for col in zip(*rows, strict=True))
    h = (lw - rw) - (ll - rl)
    expected = {
        "sigmoid": -F.logsigmoid(beta * h),
        "hinge": torch.relu(1 - beta * h),
        "ipo": (h - 1 / (2 * beta)) ** 2,
    }
    for loss_type, want in expected.items():
        losses, r_w, r_l = dpo_loss(lw, ll, rw, rl, beta, loss_type)
        torch.testing.assert_close(losses, want, atol=1e-9, rtol=1e-9)
        torch.testing.assert_close(r_w, beta * (lw - rw))
        torch.testing.assert_close(r_l, beta * (ll - rl))
    same, _, _ = dpo_loss(lw, ll, lw.clone(), ll.clone(), beta)  # policy == reference: h = 0
    torch.testing.assert_close(same, torch.full_like(same, math.log(2)))


edge_log_probs = st.one_of(
    st.sampled_from([0.0, -0.0, -1e-45, -1e-30, -1e-8, -60.0, -1e4]), st.floats(-100.0, 0.0)
)


@FAST
@given(
    st.lists(st.tuples(edge_log_probs, edge_log_probs), min_size=1, max_size=6),
    betas,
    st.sampled_from([torch.float32, torch.float64, torch.bfloat16]),
)
def test_orpo_loss_and_its_gradient_are_finite(rows, beta, dtype):
    lw, ll = (torch.tensor(col, dtype=dtype).requires_grad_() for col in zip(*rows, strict=True))
    losses, log_odds = orpo_loss(lw, ll, beta)
    assert torch.isfinite(losses).all() and torch.isfinite(log_odds).all() and (losses >= 0).all()
    losses.sum().backward()
    assert torch.isfinite(lw.grad).all() and torch.isfinite(ll.grad).all()
    same, _ = orpo_loss(lw.detach(), lw.detach().clone(), beta)  # equal odds: beta * log 2
    torch.testing.assert_close(same, torch.full_like(same, beta * math.log(2)))


@FAST
@given(st.lists(st.floats(-745.0, 0.0), min_size=1, max_size=8))
def test_log1mexp_gradient_is_finite_away_from_zero(xs):
    x = torch.tensor(xs, dtype=torch.float64).clamp(max=-1e-300).requires_grad_()
    y = log1mexp(x)
    torch.testing.assert_close(y, torch.log(-torch.expm1(x)), atol=1e-12, rtol=1e-12)
    y.sum().backward()
    assert torch.isfinite(x.grad).all()


@FAST
@given(st.integers(1, 3), st.integers(2, 7), st.integers(1, 9), dtypes, seeds, st.booleans())
def test_sequence_logps_equals_a_loop_and_ignores_what_it_ignores(b, t, v, dtype, seed, average):
    gen = torch.Generator().manual_seed(seed)
    logits = randn(gen, b, t, v, dtype=dtype, scale=3)
    labels = torch.randint(0, v, (b, t), generator=gen)
    labels[torch.rand(b, t, generator=gen) < 0.3] = -100
    labels[:, -1] = torch.randint(0, v, (b,), generator=gen)  # every row has a labelled token
    expected = torch.zeros(b, dtype=torch.float64)
    for i in range(b):
        terms = [
            torch.log_softmax(logits[i, j - 1].double(), -1)[labels[i, j]]
            for j in range(1, t)
            if labels[i, j] != -100
        ]
        expected[i] = sum(terms) / (len(terms) if average else 1)
    out = sequence_logps(logits, labels, average=average)
    torch.testing.assert_close(out.double(), expected, atol=TOL[dtype] * 10, rtol=TOL[dtype])
    # NaN and -inf logits where the label is ignored change nothing, forward or backward
    spoiled = logits.clone().requires_grad_()
    hidden = torch.zeros_like(logits, dtype=torch.bool)
    hidden[:, :-1] = (labels[:, 1:] == -100)[..., None]
    hidden[:, -1] = True  # the last position predicts nothing
    with torch.no_grad():
        spoiled[hidden] = torch.where(
            torch.rand(int(hidden.sum()), generator=gen) < 0.5, math.nan, -math.inf
        ).to(dtype)
    again = sequence_logps(spoiled, labels, average=average)
    torch.testing.assert_close(again, out)
    again.sum().backward()
    assert torch.isfinite(spoiled.grad).all() and (spoiled.grad[hidden] == 0).all()
