"""A long causal convolution computed with the FFT: ``O(l log l)`` per channel instead of ``O(l^2)``.

Hyena [poli2023hyena] and StripedHyena [together2023stripedhyena] mix tokens with one filter per
channel as long as the sequence. Written directly, output ``t`` sums ``t + 1`` products, so a sequence
costs ``l (l + 1) / 2`` multiply-adds per channel; through the FFT it costs three transforms of
length ``2 l``. The zero padding to ``2 l`` is what makes the FFT's *circular* convolution equal the
*linear* one on the first ``l`` outputs: with no padding the tail of the filter wraps around and
carries the future into the past (the chapter's first trap measures how much).

Axes:
    b  batch
    c  channels (one filter each)
    l  sequence length
    k  filter length (``k <= l``)

References:
    poli2023hyena            Hyena Hierarchy, Section 3 (FFT convolution, "FFTConv").
    together2023stripedhyena StripedHyena-7B: gated convolutions computed with the FFT.

Reference implementation:
    HazyResearch/safari, standalone_hyena.py::fftconv (the same padding to ``2 l``);
    the plainest correct form is :func:`direct_causal_conv` (``torch.nn.functional.conv1d``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from demos.validation import check_same_device


def check_conv_inputs(u: torch.Tensor, h: torch.Tensor, D: torch.Tensor | None = None) -> None:
    """``ValueError`` unless ``u`` is ``(b, c, l)``, ``h`` is ``(c, k)`` with ``1 <= k <= l``, ``D``
    (if given) is ``(c,)``, all floating-point, of one dtype and one device."""
    tensors = {"u": u, "h": h} | ({} if D is None else {"D": D})
    for name, x in tensors.items():
        if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point or x.is_complex():
            got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a real floating-point tensor, got {got}")
    if u.dim() != 3:
        raise ValueError(f"u must be (b, c, l), got {tuple(u.shape)} ({u.dim()} dims)")
    if h.dim() != 2:
        raise ValueError(f"h must be (c, k), one filter per channel, got {tuple(h.shape)}")
    (_, c, L), (ch, k) = u.shape, h.shape
    if ch != c:
        raise ValueError(f"h has {ch} filters for the {c} channels of u: one filter per channel")
    if not 1 <= k <= L:
        raise ValueError(f"filter length k ({k}) must lie in [1, l = {L}], l the length of u")
    if D is not None and tuple(D.shape) != (c,):
        raise ValueError(f"D must be (c,) = ({c},), got {tuple(D.shape)}")
    dtypes = {name: x.dtype for name, x in tensors.items()}
    if len(set(dtypes.values())) > 1:
        raise ValueError(f"inputs must share one dtype, got {dtypes}")
    check_same_device(**tensors)


def fft_causal_conv(
    u: torch.Tensor, h: torch.Tensor, D: torch.Tensor | None = None
) -> torch.Tensor:
    """``y[b, c, t] = sum_{j=0}^{min(t, k-1)} h[c, j] u[b, c, t - j]  (+ D[c] u[b, c, t])``.

    The causal convolution of each channel of ``u`` with its own filter, through ``rfft`` of length
    ``2 l`` (zero padding, so that no output sees a later input), plus Hyena's skip term ``D u``.

    Args:
        u: ``(b, c, l)`` input, floating-point.
        h: ``(c, k)`` filters, ``1 <= k <= l``; ``h[:, 0]`` weighs the current input.
        D: optional ``(c,)`` skip weights (Hyena's filter bias).

    Returns:
        ``(b, c, l)`` in the dtype of ``u`` (float64 stays float64; the transforms run in it).

    Raises:
        ValueError: wrong ranks, mismatched channels, ``k > l``, non-floating or mixed dtypes.
    """
    check_conv_inputs(u, h, D)
    L = u.shape[-1]
    n = 2 * L  # the padded length: linear, not circular, convolution on the first l outputs
    U = torch.fft.rfft(u, n=n)  # (b, c, l + 1) complex
    H = torch.fft.rfft(h, n=n)  # (c, l + 1) complex
    y = torch.fft.irfft(U * H, n=n)[..., :L]  # (b, c, l)
    return y if D is None else y + D[:, None] * u


def direct_causal_conv(
    u: torch.Tensor, h: torch.Tensor, D: torch.Tensor | None = None
) -> torch.Tensor:
    """The same convolution, written the plain way: ``conv1d`` after ``k - 1`` zeros on the left.

    ``conv1d`` computes a cross-correlation (``sum_j w[j] x[t + j]``), so the filter is flipped to
    make it a convolution, and ``groups = c`` gives each channel its own filter. ``O(l k)`` per
    channel. Same arguments, shapes and errors as :func:`fft_causal_conv`.
    """
    check_conv_inputs(u, h, D)
    c, k = h.shape
    padded = F.pad(u, (k - 1, 0))  # (b, c, k - 1 + l): zeros before the first token
    y = F.conv1d(padded, h.flip(-1)[:, None, :], groups=c)  # (b, c, l)
    return y if D is None else y + D[:, None] * u


def causal_toeplitz(h: torch.Tensor, L: int) -> torch.Tensor:
    """``(c, l, l)`` lower-triangular Toeplitz matrices ``T[c, t, s] = h[c, t - s]`` (0 if ``t < s``
    or ``t - s >= k``): the convolution as a matrix, ``y[b, c] = T[c] @ u[b, c]``.

    The operator's explicit form, which the chapter's tests and exercises compare the FFT against.
    ``ValueError`` unless ``h`` is a real floating ``(c, k)`` with ``1 <= k <= l``.
    """
    if not isinstance(h, torch.Tensor) or not h.dtype.is_floating_point or h.dim() != 2:
        raise ValueError(f"h must be a floating-point (c, k) tensor, got {getattr(h, 'shape', h)}")
    if not 1 <= h.shape[1] <= L:
        raise ValueError(f"filter length k ({h.shape[1]}) must lie in [1, l = {L}]")
    lag = torch.arange(L)[:, None] - torch.arange(L)[None, :]  # (l, l): t - s
    padded = torch.cat([h, h.new_zeros(h.shape[0], L - h.shape[1])], dim=1)  # (c, l)
    return torch.where(lag >= 0, padded[:, lag.clamp(min=0)], h.new_zeros(()))  # (c, l, l)
