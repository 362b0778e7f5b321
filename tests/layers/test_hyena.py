"""The Hyena operator against a direct computation of the same operator (explicit loops over the
positional encoding, the filter MLP, the short FIR and the long convolution; no FFT), float64;
causality, gradients, the filter's decay window, StripedHyena's modal filter, bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from demos.layers.fft_conv import direct_causal_conv
from demos.layers.hyena import (
    HyenaConfig,
    HyenaOperator,
    decay_rates,
    direct_hyena,
    direct_hyena_filter,
    filter_positions,
    hyena_recurrence,
    modal_filter,
)


@pytest.mark.parametrize("order,L", [(2, 7), (2, 8), (3, 9), (2, 1)])
def test_operator_equals_its_direct_computation_float64(order, L):
    torch.manual_seed(order * 100 + L)
    op = HyenaOperator(HyenaConfig(hidden_size=6, order=order, filter_emb_dim=5)).double()
    x = torch.randn(2, L, 6, dtype=torch.float64, requires_grad=True)
    y = op(x)
    y_ref = direct_hyena(op, x)
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, y_ref, atol=1e-12, rtol=1e-12)
    weight = torch.randn_like(y)
    params = [x, *op.parameters()]
    g = torch.autograd.grad((y * weight).sum(), params)
    g_ref = torch.autograd.grad((y_ref * weight).sum(), params)
    for a, r in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a, r, atol=1e-11, rtol=1e-11)


def test_filter_module_equals_direct_hyena_filter():
    op = HyenaOperator(HyenaConfig(hidden_size=4, order=3, filter_emb_dim=7)).double()
    torch.testing.assert_close(
        op.filter_fn(10), direct_hyena_filter(op, 10), atol=1e-13, rtol=1e-13
    )


def test_operator_is_causal():
    op = HyenaOperator(HyenaConfig(hidden_size=8, order=3)).double()
    x = torch.randn(1, 16, 8, dtype=torch.float64)
    changed = x.clone()
    changed[:, 9:] = torch.randn(1, 7, 8, dtype=torch.float64) * 10
    y, y2 = op(x), op(changed)
    assert (y[:, :9] - y2[:, :9]).abs().max() < 1e-12  # 9 = first changed position
    assert (y[:, 9:] - y2[:, 9:]).abs().max() > 1e-3  # and the change does reach the future


def test_gradcheck_float64():
    op = HyenaOperator(HyenaConfig(hidden_size=3, order=2, filter_width=4)).double()
    x = torch.randn(1, 5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(op, (x,))


def test_decay_window_is_along_the_lags():
    """With a filter MLP that outputs ones, the filter is exp(-rate_c * j / (l - 1)) for each channel."""
    op = HyenaOperator(HyenaConfig(hidden_size=4)).double()
    last = op.filter_fn.implicit_filter[-1]
    with torch.no_grad():
        for layer in op.filter_fn.implicit_filter:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.zero_()
        last.weight.fill_(0.0)
        op.filter_fn.implicit_filter[-3].bias.fill_(math.pi / 2)  # sin(pi/2) = 1 before the last
        op.filter_fn.implicit_filter[-2].freq.fill_(1.0)
        last.weight.fill_(1.0 / last.weight.shape[1])
    h = op.filter_fn(11)[0]  # (c, l)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    expected = torch.exp(-decay_rates(4).double()[:, None] * t[None, :])
    torch.testing.assert_close(h, expected, atol=1e-12, rtol=1e-12)
    assert (h[:, 1:] < h[:, :-1]).all()  # decays with the lag, faster in later channels
    assert (h[1:, -1] < h[:-1, -1]).all()


def test_modal_filter_is_the_impulse_response_of_its_recurrence():
    c, n, L = 3, 2, 12
    poles = torch.polar(
        torch.rand(c, n, dtype=torch.float64) * 0.9, torch.randn(c, n, dtype=torch.float64)
    )
    residues = torch.randn(c, n, dtype=torch.complex128)
    state = torch.zeros(c, n, dtype=torch.complex128)
    response = []
    for j in range(L):  # s_j = p s_{j-1} + u_j, y_j = Re sum R s_j, with u = impulse at 0
        state = poles * state + (1.0 if j == 0 else 0.0)
        response.append((residues * state).real.sum(-1))
    torch.testing.assert_close(modal_filter(poles, residues, L), torch.stack(response, -1))


def test_recurrence_order_2_is_stripedhyenas_formula():
    """y = x2 * (h * (x1 v) + D x1 v): StripedHyena's engine.parallel_iir, written out."""
    b, c, L = 2, 3, 10
    x2, x1, v = (torch.randn(b, c, L, dtype=torch.float64) for _ in range(3))
    h, D = torch.randn(1, c, L, dtype=torch.float64), torch.randn(1, c, dtype=torch.float64)
    y = hyena_recurrence(v, [x2, x1], h, D)
    expected = x2 * (direct_causal_conv(x1 * v, h[0]) + D[0, :, None] * x1 * v)
    torch.testing.assert_close(y, expected, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(hidden_size=0), r"hidden_size \(0\)"),
        (dict(hidden_size=4, order=1), r"order \(1\) must be an integer >= 2"),
        (dict(hidden_size=4, filter_emb_dim=4), r"emb_dim \(4\) must be an odd integer >= 3"),
        (dict(hidden_size=4, short_filter_length=0), r"short_filter_length \(0\)"),
    ],
)
def test_bad_configs_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HyenaConfig(**kwargs)


def test_bad_calls_raise():
    op = HyenaOperator(HyenaConfig(hidden_size=4))
    with pytest.raises(ValueError, match=r"x must be \(b, l, 4\), got \(2, 5, 3\)"):
        op(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="N - 1 filters"):
        hyena_recurrence(
            torch.randn(1, 2, 3),
            [torch.randn(1, 2, 3)] * 3,
            torch.randn(1, 2, 3),
            torch.randn(1, 2),
        )
    with pytest.raises(ValueError, match="complex"):
        modal_filter(torch.randn(2, 2), torch.randn(2, 2), 4)
    with pytest.raises(ValueError, match=r"emb_dim \(2\)"):
        filter_positions(4, 2)
