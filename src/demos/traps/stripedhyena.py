"""The StripedHyena chapter's traps: three ways a long convolution goes quietly wrong.

An FFT without zero padding computes a *circular* convolution: the filter's tail wraps around and the
last inputs leak into the first outputs (the future into the past). ``conv1d`` without flipping the
filter computes a correlation: the filter runs backwards. And Hyena's decay window multiplies the
filter along its *lags*; laid along the channels instead (a square case broadcasts without an
error), the first channel's filter is not damped at all and each later one by the wrong profile.
Measured against the plainest forms: :func:`demos.layers.fft_conv.direct_causal_conv` (``conv1d``,
left padding, flipped filter) and :func:`demos.layers.hyena.direct_hyena_filter`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from demos.layers.fft_conv import direct_causal_conv, fft_causal_conv
from demos.layers.hyena import (
    HyenaConfig,
    HyenaOperator,
    direct_hyena_filter,
    exponential_window,
    filter_positions,
)
from demos.traps import Measured, Trap
from demos.traps.tiny import seeded

B, C, L = 2, 4, 64  # a batch of two, four channels, 64 positions, filters as long as the sequence


def trap_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    with seeded(0):
        return torch.randn(B, C, L), torch.randn(C, L) / 8


def circular_conv(u: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The wrong line: an FFT of length ``l``, no padding, so the product is a circular convolution."""
    L = u.shape[-1]
    return torch.fft.irfft(torch.fft.rfft(u, n=L) * torch.fft.rfft(h, n=L), n=L)


def causality_leak(conv, u: torch.Tensor, h: torch.Tensor, t: int) -> float:
    """``max |d y_t / d u_s|`` over the future ``s > t``: 0 for a causal convolution."""
    u = u.clone().requires_grad_()
    (grad,) = torch.autograd.grad(conv(u, h)[..., t].sum(), u)
    return float(grad[..., t + 1 :].abs().max())


def measure_circular() -> Measured:
    """Right: the FFT of length ``2 l``; wrong: of length ``l``; both against conv1d."""
    u, h = trap_inputs()
    reference = direct_causal_conv(u, h)
    quantity = "outputs of a causal convolution, 2 x 4 channels x 64 positions, filters of 64, fp32"
    return Measured.of(fft_causal_conv(u, h), circular_conv(u, h), reference, 1e-5, quantity)


def measure_unflipped() -> Measured:
    """Right: conv1d of the flipped filter; wrong: of the filter as it is (a correlation)."""
    u, h = trap_inputs()
    k = 8
    h = h[:, :k]
    wrong = F.conv1d(F.pad(u, (k - 1, 0)), h[:, None, :], groups=C)  # h not flipped
    right = F.conv1d(F.pad(u, (k - 1, 0)), h.flip(-1)[:, None, :], groups=C)
    reference = torch.einsum(
        "btc->bct",
        torch.stack(
            [  # y_t = sum_j h_j u_{t-j}, a loop
                sum(h[:, j] * u[..., t - j] for j in range(min(k, t + 1))) for t in range(L)
            ],
            dim=1,
        ),
    )
    quantity = "conv1d outputs vs the loop y_t = sum_j h_j u_(t-j), 4 channels, filters of 8, fp32"
    return Measured.of(right, wrong, reference, 1e-5, quantity)


def measure_window_on_channels() -> Measured:
    """Right: the decay window over the lags; wrong: the same window laid over the channels (a
    square case, 64 channels and 64 lags, where the transposed window broadcasts without an error)."""
    with seeded(0):
        op = HyenaOperator(HyenaConfig(hidden_size=L, filter_width=8)).double()
    f = op.filter_fn
    t = torch.linspace(0, 1, L, dtype=torch.float64)
    mlp = f.implicit_filter(filter_positions(L, f.emb_dim, torch.float64))  # (l, c)
    window = exponential_window(t, f.rates)  # (l, c): lag j, channel c
    right = (mlp * window).T  # (c, l)
    wrong = (mlp * window.T).T  # the window's lag axis laid along the channels
    reference = direct_hyena_filter(op, L)[0]
    quantity = "Hyena's implicit filters, 64 channels x 64 lags, fp64 (direct loop reference)"
    return Measured.of(right, wrong, reference, 1e-10, quantity)


TRAPS = [
    Trap(
        chapter="stripedhyena",
        title="FFT convolution without zero padding (circular: the future leaks in)",
        wrong="irfft(rfft(u, n=L) * rfft(h, n=L), n=L)",
        right="irfft(rfft(u, n=2 * L) * rfft(h, n=2 * L), n=2 * L)[..., :L]",
        shows="every output but the last: y_t picks up u_(t+1) ... u_(L-1)",
        measure=measure_circular,
    ),
    Trap(
        chapter="stripedhyena",
        title="conv1d with the filter unflipped (a correlation, not a convolution)",
        wrong="F.conv1d(F.pad(u, (k - 1, 0)), h[:, None, :], groups=c)",
        right="F.conv1d(F.pad(u, (k - 1, 0)), h.flip(-1)[:, None, :], groups=c)",
        shows="every output: the oldest input gets the weight meant for the newest",
        measure=measure_unflipped,
    ),
    Trap(
        chapter="stripedhyena",
        title="Hyena's decay window laid along the channels instead of the lags",
        wrong="h = mlp(pe) * window.T  # window[j, c] used as window[c, j]",
        right="h = mlp(pe) * window  # (lags, channels): decay along the lags",
        shows="every filter: early channels barely decay, late ones are cut short",
        measure=measure_window_on_channels,
    ),
]
