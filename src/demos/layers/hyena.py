"""The Hyena operator: gates and long implicit convolutions in turn, in place of attention.

Hyena [poli2023hyena] projects each token into ``N + 1`` streams ``x^1 .. x^N, v``, smooths them
with a short depthwise convolution, then alternates an element-wise gate with a long causal
convolution whose filter is *implicit*: a small MLP (sine activations) of a positional encoding of
the lag ``j``, times an exponential decay window over ``j``. Order 2, the setting StripedHyena's
gated-convolution blocks use [together2023stripedhyena], is ``y = x^2 * (h * (x^1 * v) + D x^1 v)``
in StripedHyena's names; :func:`hyena_recurrence` numbers the gates the other way, as safari does
(its ``x^1`` gates the output, its ``x^N`` multiplies ``v`` first).

Axes:
    b  batch
    l  sequence length
    c  hidden size (channels)
    e  width of the positional encoding fed to the filter MLP (odd: t, cos and sin bands)
    w  width of the filter MLP
    o  order N of the recurrence (N - 1 long filters)

References:
    poli2023hyena            Hyena Hierarchy: Definition 3.1, Eq. (4) (the recurrence; the paper has
                             N long filters, one before each gate, where this code, safari's and
                             StripedHyena's have N - 1 and gate v first), Section 3.3, Eq. (7) (the
                             filter: a window times an FFN of a positional encoding).
    together2023stripedhyena StripedHyena-7B: order-2 gated convolutions striped with attention.

Reference implementation (read, not run):
    HazyResearch/safari, standalone_hyena.py::PositionalEmbedding, ::ExponentialModulation,
    ::HyenaFilter, ::HyenaOperator (the recurrence gates, then convolves; the last gate comes after).
    StripedHyena's released filter is instead a sum of decaying complex exponentials (modal form):
    togethercomputer/stripedhyena, stripedhyena/model.py::ParallelHyenaFilter.compute_filter; see
    :func:`modal_filter`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from demos.layers.fft_conv import fft_causal_conv
from demos.validation import check_positive_int

Conv = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def filter_positions(L: int, emb_dim: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(l, e)`` positional encoding of the lags ``j = 0 .. l-1``: ``[j / (l-1), cos, sin]`` bands.

    Column 0 is the normalised time ``j / (l - 1)`` in ``[0, 1]``; then ``(e - 1) / 2`` cosines and
    as many sines of ``2 pi f j / l`` at frequencies ``f`` spread from ~0 to ``(e - 1)/2 - 1``.
    ``ValueError`` unless ``l >= 1`` and ``e`` is odd and ``>= 3``.
    """
    check_positive_int("l", L)
    if isinstance(emb_dim, bool) or not isinstance(emb_dim, int) or emb_dim < 3 or emb_dim % 2 == 0:
        raise ValueError(f"emb_dim ({emb_dim!r}) must be an odd integer >= 3 (time, cos and sin)")
    bands = (emb_dim - 1) // 2
    t = torch.linspace(0, 1, L, dtype=dtype)[:, None]  # (l, 1)
    angle = 2 * math.pi * torch.arange(L, dtype=dtype)[:, None] / L  # (l, 1)
    f = torch.linspace(1e-4, bands - 1, bands, dtype=dtype)[None, :]  # (1, bands)
    return torch.cat([t, torch.cos(f * angle), -torch.sin(f * angle)], dim=-1)  # (l, e)


def decay_rates(channels: int, fast: float = 0.3, slow: float = 1.5, target: float = 1e-2):
    """``(c,)`` decay rates: channel ``i``'s window falls to ``target`` at the fraction ``slow`` ..
    ``fast`` of the sequence (the first channel remembers longest)."""
    check_positive_int("channels", channels)
    return torch.linspace(math.log(target) / slow, math.log(target) / fast, channels).abs()


def exponential_window(t: torch.Tensor, rates: torch.Tensor) -> torch.Tensor:
    """``(l, c)`` window ``exp(-rate_c t_j)``: multiplies the filter value at lag ``j`` (the *time*
    axis, ``t`` of shape ``(l,)``), one rate per channel (``(c,)``)."""
    return torch.exp(-t[:, None] * rates[None, :])  # (l, c)


def modal_filter(poles: torch.Tensor, residues: torch.Tensor, L: int) -> torch.Tensor:
    """StripedHyena's long filter: ``h[c, j] = Re sum_n R[c, n] p[c, n]^j`` for ``j < l``.

    Args:
        poles, residues: ``(c, n)`` complex (``n`` states per channel, 2 in StripedHyena-7B).
        l: filter length.

    Returns:
        ``(c, l)`` real filter: the impulse response of a diagonal linear recurrence (an SSM in
        modal form), which is why a trained model can decode with an ``n``-state recurrence.
    """
    check_positive_int("l", L)
    if poles.shape != residues.shape or poles.dim() != 2 or not poles.is_complex():
        raise ValueError("poles and residues must be complex tensors of one shape (c, n)")
    j = torch.arange(L, device=poles.device)  # (l,)
    powers = torch.exp(torch.log(poles)[..., None] * j)  # (c, n, l): p^j
    return (residues[..., None] * powers).real.sum(1)  # (c, l)


class Sin(nn.Module):
    """``sin(freq * x)`` with one learned frequency per feature (the filter MLP's activation)."""

    def __init__(self, width: int, freq: float = 1.0) -> None:
        super().__init__()
        self.freq = nn.Parameter(torch.full((width,), float(freq)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.freq * x)


@dataclass(frozen=True)
class HyenaConfig:
    """Shape of one Hyena operator."""

    hidden_size: int  # c
    order: int = 2  # N: N gates, N - 1 long convolutions (StripedHyena: 2)
    short_filter_length: int = 3  # the depthwise FIR on the N + 1 projections (StripedHyena: 3)
    filter_emb_dim: int = 3  # e: positional encoding width (odd)
    filter_width: int = 16  # w: the filter MLP's width
    filter_inner_layers: int = 2  # hidden Linear + Sin pairs in the filter MLP

    def __post_init__(self) -> None:
        for name in ("hidden_size", "short_filter_length", "filter_width"):
            check_positive_int(name, getattr(self, name))
        if isinstance(self.order, bool) or not isinstance(self.order, int) or self.order < 2:
            raise ValueError(f"order ({self.order!r}) must be an integer >= 2 (one long filter)")
        filter_positions(1, self.filter_emb_dim)  # validates emb_dim
        if self.filter_inner_layers < 0:
            raise ValueError(f"filter_inner_layers ({self.filter_inner_layers}) must be >= 0")


class HyenaFilter(nn.Module):
    """The implicit filters: ``h_j = MLP(PE(j)) * exp(-rate * t_j)``, ``(o - 1) c`` of them."""

    def __init__(self, config: HyenaConfig) -> None:
        super().__init__()
        w, channels = config.filter_width, config.hidden_size * (config.order - 1)
        self.emb_dim = config.filter_emb_dim
        layers: list[nn.Module] = [nn.Linear(self.emb_dim, w), Sin(w)]
        for _ in range(config.filter_inner_layers):
            layers += [nn.Linear(w, w), Sin(w)]
        layers.append(nn.Linear(w, channels, bias=False))
        self.implicit_filter = nn.Sequential(*layers)
        self.register_buffer("rates", decay_rates(channels), persistent=False)
        self.bias = nn.Parameter(torch.randn(channels))  # D, the skip term of each filter
        self.shape = (config.order - 1, config.hidden_size)  # (N - 1, c)

    def forward(self, L: int) -> torch.Tensor:
        """``(o - 1, c, l)`` filters for a sequence of length ``l``."""
        dtype = self.bias.dtype
        z = filter_positions(L, self.emb_dim, dtype).to(self.bias.device)  # (l, e)
        h = self.implicit_filter(z)  # (l, (o-1) c)
        h = h * exponential_window(z[:, 0], self.rates.to(dtype))  # decay along the lags
        return h.T.reshape(*self.shape, L)  # (N - 1, c, l)


def hyena_recurrence(
    v: torch.Tensor,
    gates: list[torch.Tensor],
    filters: torch.Tensor,
    biases: torch.Tensor,
    conv: Conv = fft_causal_conv,
) -> torch.Tensor:
    """Order-``N`` Hyena recurrence on ``(b, c, l)`` streams, the operator with its mixing removed.

    ``z = v``; for ``n = N .. 2``: ``z = h^n * (x^n z) + D^n (x^n z)``; finally ``y = x^1 z``.

    Args:
        v: ``(b, c, l)`` values; gates: the ``N`` tensors ``x^1 .. x^N``, each ``(b, c, l)``.
        filters: ``(N - 1, c, k)``, ``filters[i]`` applied after gate ``x^{N - i}``; biases ``(N - 1, c)``.
        conv: the causal convolution (FFT by default; the tests pass the direct and Toeplitz forms).

    Returns:
        ``(b, c, l)``.
    """
    if len(gates) < 2 or len(gates) - 1 != filters.shape[0] or biases.shape[0] != filters.shape[0]:
        raise ValueError(
            f"order N = {len(gates)} gates needs N - 1 filters and biases, got "
            f"{filters.shape[0]} and {biases.shape[0]} (and N >= 2)"
        )
    z = v  # (b, c, l)
    for i, x in enumerate(reversed(gates[1:])):  # x^N first
        z = conv(z * x, filters[i], biases[i])  # (b, c, l)
    return gates[0] * z  # (b, c, l)


class HyenaOperator(nn.Module):
    """``(b, l, c) -> (b, l, c)``: in-projection, short depthwise FIR, the recurrence, out-projection.

    Causal: output ``t`` reads inputs ``<= t`` only (the short FIR is left-padded and cut to ``l``,
    the long convolution is causal). No cache: decoding recomputes the whole prefix.
    """

    def __init__(self, config: HyenaConfig) -> None:
        super().__init__()
        self.config = config
        c, width = config.hidden_size, config.hidden_size * (config.order + 1)
        self.in_proj = nn.Linear(c, width)
        self.short_filter = nn.Conv1d(
            width, width, config.short_filter_length, groups=width, padding=0
        )
        self.filter_fn = HyenaFilter(config)
        self.out_proj = nn.Linear(c, c)

    def streams(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``x`` ``(b, l, c)`` -> the gates ``x^1 .. x^N`` and ``v``, each ``(b, c, l)``."""
        u = self.in_proj(x).transpose(1, 2)  # (b, (N+1) c, l)
        u = self.short_filter(F.pad(u, (self.config.short_filter_length - 1, 0)))  # causal FIR
        *gates, v = u.split(self.config.hidden_size, dim=1)  # N + 1 times (b, c, l)
        return gates, v

    def forward(self, x: torch.Tensor, conv: Conv = fft_causal_conv) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.config.hidden_size:
            raise ValueError(f"x must be (b, l, {self.config.hidden_size}), got {tuple(x.shape)}")
        gates, v = self.streams(x)  # (b, c, l) each
        filters = self.filter_fn(x.shape[1])  # (N - 1, c, l)
        biases = self.filter_fn.bias.view(filters.shape[0], -1)  # (N - 1, c)
        y = hyena_recurrence(v, gates, filters, biases, conv)  # (b, c, l)
        return self.out_proj(y.transpose(1, 2))  # (b, l, c)


def direct_hyena_filter(op: HyenaOperator, L: int) -> torch.Tensor:
    """``(N - 1, c, l)``: ``op``'s implicit filter one lag at a time, in float64 Python arithmetic for
    the encoding (no ``linspace``, no batched MLP): the plainest form the module is tested against."""
    f = op.filter_fn
    emb, n_bands = f.emb_dim, (f.emb_dim - 1) // 2
    layers = list(f.implicit_filter)
    rows = []
    for j in range(L):
        t = j / (L - 1) if L > 1 else 0.0
        freqs = [1e-4 + i * (n_bands - 1 - 1e-4) / max(n_bands - 1, 1) for i in range(n_bands)]
        if n_bands == 1:
            freqs = [1e-4]
        angle = 2 * math.pi * j / L
        cos = [math.cos(q * angle) for q in freqs]
        sin = [-math.sin(q * angle) for q in freqs]
        z = torch.tensor([t, *cos, *sin], dtype=torch.float64)
        assert z.numel() == emb
        for layer in layers:  # Linear, Sin, Linear, Sin, ..., Linear
            if isinstance(layer, torch.nn.Linear):
                z = layer.weight @ z + (layer.bias if layer.bias is not None else 0)
            else:
                z = torch.sin(layer.freq * z)
        rows.append(z * torch.exp(-f.rates.double() * t))
    return torch.stack(rows, dim=1).view(*f.shape, L)  # (N - 1, c, l)


def direct_hyena(op: HyenaOperator, x: torch.Tensor) -> torch.Tensor:
    """``op(x)`` with explicit sums (``(b, l, c)`` in and out): the short FIR and the long convolution
    as loops over ``s <= t``, no FFT, no ``conv1d``. ``O(l^2)``: for tests and the page, short ``l``."""
    b, L, c = x.shape
    cfg = op.config
    u = x @ op.in_proj.weight.T + op.in_proj.bias  # (b, l, (N+1) c)
    w, k = op.short_filter.weight[:, 0, :], cfg.short_filter_length  # (width, k)
    fir = torch.zeros_like(u)
    for t in range(L):
        for j in range(k):  # weight index k-1 multiplies the current token
            if t - j >= 0:
                fir[:, t] += w[:, k - 1 - j] * u[:, t - j]
    fir = fir + op.short_filter.bias
    streams = fir.split(c, dim=-1)  # N + 1 times (b, l, c)
    gates, z = streams[:-1], streams[-1]
    filters = direct_hyena_filter(op, L)
    biases = op.filter_fn.bias.view(filters.shape[0], c)
    for i, gate in enumerate(reversed(gates[1:])):
        g = z * gate
        out = torch.zeros_like(g)
        for t in range(L):
            for s in range(t + 1):
                out[:, t] += filters[i][:, t - s] * g[:, s]
        z = out + biases[i] * g
    y = z * gates[0]
    return y @ op.out_proj.weight.T + op.out_proj.bias
