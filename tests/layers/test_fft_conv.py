"""fft_causal_conv against the plainest correct forms: conv1d with left padding and a flipped
filter, and the lower-triangular Toeplitz matrix; outputs, gradients, float64 kept, bad inputs."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from demos.layers.fft_conv import causal_toeplitz, direct_causal_conv, fft_causal_conv

FAST = settings(max_examples=40, deadline=None)
TOL = {torch.float64: dict(atol=1e-11, rtol=1e-11), torch.float32: dict(atol=2e-5, rtol=2e-5)}


def toeplitz_conv(u, h, D=None):
    y = torch.einsum("cts,bcs->bct", causal_toeplitz(h, u.shape[-1]), u)
    return y if D is None else y + D[:, None] * u


@st.composite
def conv_case(draw):
    b, c = draw(st.integers(1, 2)), draw(st.integers(1, 4))
    L = draw(st.integers(1, 33))  # odd and even lengths
    k = draw(st.sampled_from([1, L, max(1, L // 2), max(1, L - 1)]))  # k < l and k == l
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    seed = draw(st.integers(0, 2**31 - 1))
    with_d = draw(st.booleans())
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(b, c, L, generator=gen, dtype=torch.float64).to(dtype)
    h = torch.randn(c, k, generator=gen, dtype=torch.float64).to(dtype)
    D = torch.randn(c, generator=gen, dtype=torch.float64).to(dtype) if with_d else None
    return u, h, D


@FAST
@given(conv_case())
def test_fft_conv_equals_conv1d_and_toeplitz_in_values_and_gradients(case):
    u, h, D = case
    tol = TOL[u.dtype]
    leaves = [x.clone().requires_grad_() for x in (u, h) + ((D,) if D is not None else ())]
    outs, grads = [], []
    for conv in (fft_causal_conv, direct_causal_conv, toeplitz_conv):
        xs = [x.detach().clone().requires_grad_() for x in leaves]
        y = conv(*xs)
        weight = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)
        outs.append(y)
        grads.append(torch.autograd.grad((y * weight).sum(), xs))
        assert y.dtype == u.dtype and y.shape == u.shape
    for other in (1, 2):
        torch.testing.assert_close(outs[0], outs[other], **tol)
        for g0, g in zip(grads[0], grads[other], strict=True):
            torch.testing.assert_close(g0, g, **tol)


@pytest.mark.parametrize("L,k", [(7, 3), (8, 8), (9, 9), (16, 1)])
def test_gradcheck_float64(L, k):
    u = torch.randn(2, 3, L, dtype=torch.float64, requires_grad=True)
    h = torch.randn(3, k, dtype=torch.float64, requires_grad=True)
    D = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fft_causal_conv, (u, h, D))


def test_output_at_t_ignores_inputs_after_t():
    u = torch.randn(1, 2, 12, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 12, dtype=torch.float64)
    y = fft_causal_conv(u, h)
    (grad,) = torch.autograd.grad(y[..., 5].sum(), u)
    assert grad[..., 6:].abs().max() < 1e-14 and grad[..., :6].abs().min() > 0


def test_impulse_gives_back_the_filter():
    h = torch.randn(3, 5, dtype=torch.float64)
    u = torch.zeros(1, 3, 8, dtype=torch.float64)
    u[..., 0] = 1.0
    torch.testing.assert_close(fft_causal_conv(u, h)[0, :, :5], h, atol=1e-14, rtol=0)


U, H = torch.randn(2, 3, 8), torch.randn(3, 4)
BAD = [
    ("channels", dict(u=U, h=torch.randn(4, 4)), r"h has 4 filters for the 3 channels"),
    (
        "filter longer",
        dict(u=U, h=torch.randn(3, 9)),
        r"filter length k \(9\) must lie in \[1, l = 8\]",
    ),
    ("u rank 2", dict(u=torch.randn(3, 8), h=H), r"u must be \(b, c, l\), got \(3, 8\)"),
    ("h rank 3", dict(u=U, h=torch.randn(1, 3, 4)), r"h must be \(c, k\)"),
    (
        "integer u",
        dict(u=U.long(), h=H),
        r"u must be a real floating-point tensor, got torch.int64",
    ),
    ("integer h", dict(u=U, h=H.int()), r"h must be a real floating-point tensor, got torch.int32"),
    ("complex u", dict(u=U.to(torch.complex64), h=H), r"u must be a real floating-point"),
    ("mixed dtypes", dict(u=U, h=H.double()), r"inputs must share one dtype"),
    ("empty filter", dict(u=U, h=torch.randn(3, 0)), r"filter length k \(0\)"),
    ("D shape", dict(u=U, h=H, D=torch.randn(4)), r"D must be \(c,\) = \(3,\), got \(4,\)"),
]


@pytest.mark.parametrize("conv", [fft_causal_conv, direct_causal_conv])
@pytest.mark.parametrize("case,kwargs,match", BAD, ids=[b[0] for b in BAD])
def test_bad_inputs_raise_value_error_naming_the_value(conv, case, kwargs, match):
    with pytest.raises(ValueError, match=match):
        conv(**kwargs)


def test_toeplitz_rejects_a_filter_longer_than_l():
    with pytest.raises(ValueError, match=r"filter length k \(5\) must lie in \[1, l = 4\]"):
        causal_toeplitz(torch.randn(2, 5), 4)
