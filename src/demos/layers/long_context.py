"""First-generation Qwen's training-free long-context tricks: dynamic NTK-aware RoPE, LogN attention
scaling, and windowed attention in the lower layers.

Qwen was trained on 2,048-token sequences and read longer ones at inference with three changes that
need no training [bai2023qwen, Section 2.3.2]: (1) RoPE's base is raised with the sequence length,
in chunks, so the slowest channels turn no further than they did in training while the fastest keep
their resolution (dynamic NTK-aware interpolation); (2) past the training length ``L`` the queries
are multiplied by ``log_L(position)``, which keeps the entropy of the attention weights from growing
with the number of keys (LogN-Scaling); (3) lower layers attend within a window, higher layers to
everything. The report gives no formulas; (1) and (2) are transcribed from Qwen's own modelling code
[qwen2023modeling], (3) is data: ``layer_types`` with a window on the lower layers.

Axes:
    b  batch
    t  query positions (new tokens)
    h  query heads
    d  head dimension (the rotated channels); the d/2 frequencies are indexed by i

References:
    bai2023qwen        Qwen Technical Report, Section 2.3.2 (context length extension) and Table 3.
    qwen2023modeling   modeling_qwen.py of Qwen/Qwen-7B: QWenModel.get_ntk_alpha,
                       RotaryEmbedding.update_rotary_pos_emb_cache (base * alpha ** (d / (d - 2))),
                       QWenAttention.logn_tensor and its use in QWenAttention.forward.

Reference implementation:
    transformers==5.23.0, modeling_rope_utils.py::_compute_dynamic_ntk_parameters (equal to (1) with
    factor 2 wherever the sequence is L times a power of two, or shorter than L); for (2) Qwen's code
    above, transcribed in tests/layers/test_long_context.py.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch

from demos.layers.attention import GroupedQueryAttention
from demos.layers.kv_cache import KVCache
from demos.layers.rope import rope_inv_freq
from demos.validation import check_positive_int, check_rope_theta


def qwen_ntk_alpha(seq_len: int, train_len: int) -> int:
    """Qwen's NTK scale for a sequence of ``seq_len`` tokens: ``2 ** (k + 1) - 1`` with ``k`` the
    smallest integer ``>= 0`` such that ``seq_len <= train_len * 2 ** k``.

    So ``alpha = 1`` up to ``train_len``, 3 up to twice it, 7 up to four times, 15 up to eight
    times: the scale changes "by chunks" [bai2023qwen]. Qwen's code writes it as
    ``max(1, 2 ** ceil(log2(seq_len / train_len) + 1) - 1)`` in floating point
    (``QWenModel.get_ntk_alpha`` [qwen2023modeling]); computed here with integers, which agrees with
    it for every ratio below ``2 ** 29`` (where ``math.log(2 ** 29, 2)`` rounds up).

    Raises:
        ValueError: ``seq_len`` or ``train_len`` not a positive integer.
    """
    check_positive_int("seq_len", seq_len)
    check_positive_int("train_len", train_len)
    k = 0
    while train_len * 2**k < seq_len:  # the chunk: the first power of two that covers seq_len
        k += 1
    return 2 ** (k + 1) - 1


def ntk_scaled_base(base: float, alpha: float, rotary_dim: int) -> float:
    """NTK-aware interpolation's new RoPE base: ``base * alpha ** (d / (d - 2))``.

    With this base the fastest frequency (``i = 0``) is unchanged and the slowest
    (``i = d/2 - 1``) is divided by exactly ``alpha``: ``base' ** (-(d - 2) / d) = base **
    (-(d - 2) / d) / alpha``. The channels in between are slowed by a factor that grows with ``i``.

    Raises:
        ValueError: ``base`` not a finite number > 1, ``alpha < 1``, ``rotary_dim`` not an even
            integer >= 4 (with ``d = 2`` the exponent divides by zero).
    """
    check_rope_theta(base, "base")
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not alpha >= 1:
        raise ValueError(f"alpha ({alpha!r}) must be a number >= 1")
    if (
        isinstance(rotary_dim, bool)
        or not isinstance(rotary_dim, Integral)
        or rotary_dim < 4
        or rotary_dim % 2
    ):
        raise ValueError(f"rotary_dim ({rotary_dim!r}) must be an even integer >= 4")
    return base * alpha ** (rotary_dim / (rotary_dim - 2))


def dynamic_ntk_inv_freq(
    head_dim: int,
    base: float,
    seq_len: int,
    train_len: int,
    device: torch.device | None = None,
) -> torch.Tensor:
    """RoPE's frequencies for a sequence of ``seq_len`` tokens under Qwen's dynamic NTK scaling.

    ``theta_i = base' ** (-2i / d)`` with ``base' = ntk_scaled_base(base, qwen_ntk_alpha(seq_len,
    train_len), d)``: the plain frequencies while ``seq_len <= train_len``.

    Returns:
        ``(d/2,)`` float32, as :func:`demos.layers.rope.rope_inv_freq` (and Qwen's and transformers'
        code) computes them.
    """
    alpha = qwen_ntk_alpha(seq_len, train_len)
    return rope_inv_freq(head_dim, ntk_scaled_base(base, alpha, head_dim), device)


def logn_scale(
    positions: torch.Tensor, train_len: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """LogN-Scaling's factor for the queries at 0-based ``positions``: ``log(p + 1) / log(L)`` past
    the training length ``L`` (that is, where ``p + 1 > L``), else 1.

    Qwen's code builds the list ``[log_L(i) if i > L else 1 for i in 1, 2, ...]`` and multiplies the
    query at 0-based position ``p`` by entry ``p``, i.e. by ``log_L(p + 1)`` (``QWenAttention``
    [qwen2023modeling]). Inside the training length nothing changes; at ``p + 1 = L ** 2`` the
    queries, and so every score, are doubled.

    Args:
        positions: integer tensor of 0-based positions, any shape.
        train_len: ``L``, the training length (Qwen's ``config.seq_length``), >= 2.
        dtype: floating dtype of the result; computed in float64, then rounded.

    Returns:
        A tensor of ``positions``' shape in ``dtype``, every entry >= 1.

    Raises:
        ValueError: ``positions`` not an integer tensor or negative, ``train_len`` < 2 (``log 1 = 0``),
            ``dtype`` not floating.
    """
    if not isinstance(positions, torch.Tensor) or positions.dtype.is_floating_point:
        got = positions.dtype if isinstance(positions, torch.Tensor) else type(positions).__name__
        raise ValueError(f"positions must be an integer tensor, got {got}")
    if positions.dtype == torch.bool or (positions.numel() and positions.min() < 0):
        raise ValueError("positions must be non-negative integers (0-based)")
    check_positive_int("train_len", train_len)
    if train_len < 2:
        raise ValueError(f"train_len ({train_len}) must be >= 2: log_L needs log L > 0")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype ({dtype!r}) must be a floating-point dtype")
    i = positions.to(torch.float64) + 1  # Qwen's 1-based index
    scale = torch.where(i > train_len, torch.log(i) / math.log(train_len), torch.ones_like(i))
    return scale.to(dtype)


def apply_logn(q: torch.Tensor, positions: torch.Tensor, train_len: int) -> torch.Tensor:
    """Multiply each query by its position's LogN factor (:func:`logn_scale`).

    Args:
        q: ``(b, h, t, d)`` queries, floating (before or after RoPE: RoPE is linear, the product is
            the same).
        positions: ``(t,)`` their 0-based positions.
        train_len: the training length ``L``.

    Returns:
        ``(b, h, t, d)`` in ``q``'s dtype: ``q * s[p]`` for the query at position ``p``. Every score
        ``q . k / sqrt(d)`` of that query is multiplied by ``s[p]``.

    Raises:
        ValueError: ``q`` not 4-D floating, ``positions`` not ``(t,)``, or :func:`logn_scale`'s.
    """
    if not isinstance(q, torch.Tensor) or q.dim() != 4 or not q.dtype.is_floating_point:
        got = (q.dim(), q.dtype) if isinstance(q, torch.Tensor) else type(q).__name__
        raise ValueError(f"q must be a floating (b, h, t, d) tensor, got {got}")
    if not isinstance(positions, torch.Tensor) or positions.shape != (q.shape[2],):
        got = tuple(positions.shape) if isinstance(positions, torch.Tensor) else positions
        raise ValueError(f"positions must have shape (t,) = ({q.shape[2]},), got {got}")
    scale = logn_scale(positions, train_len, torch.promote_types(q.dtype, torch.float32))
    return (q * scale[:, None]).to(q.dtype)  # (b, h, t, d): query row p times s[p]


class LogNAttention(GroupedQueryAttention):
    """:class:`~demos.layers.attention.GroupedQueryAttention` whose queries are LogN-scaled.

    The query at position ``p`` (counted from the start of the sequence, cache included, as Qwen's
    code counts it) is multiplied by :func:`logn_scale` before RoPE and attention; everything else
    is the parent's. Inside the training length it is the parent exactly.
    """

    def __init__(self, config, train_len: int) -> None:
        super().__init__(config)
        check_positive_int("train_len", train_len)
        if train_len < 2:
            raise ValueError(f"train_len ({train_len}) must be >= 2: log_L needs log L > 0")
        self.train_len = train_len

    def queries(self, x: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
        """The parent's queries ``(b, h, t, d)``, each scaled by :func:`logn_scale` of its position."""
        q = super().queries(x, cache)  # (b, h, t, d)
        past = 0 if cache is None else len(cache)
        positions = torch.arange(
            past, past + x.shape[1], device=x.device
        )  # Qwen's seq_start:seq_end
        return apply_logn(q, positions, self.train_len)  # NEW vs Llama: LogN-Scaling


def lower_layers_window(num_hidden_layers: int, windowed_layers: int) -> tuple[str, ...]:
    """``layer_types`` with a window on the lowest ``windowed_layers`` layers, full attention above:
    the report's assignment ("shorter windows for lower layers", Section 2.3.2 [bai2023qwen]) as
    data for the decoder shell (:mod:`demos.models.decoder`).

    transformers' ``Qwen2Config`` derives the opposite from ``max_window_layers``: layers
    ``i >= max_window_layers`` slide. Pass this tuple as ``layer_types`` to get the report's.

    Raises:
        ValueError: ``num_hidden_layers < 1`` or ``windowed_layers`` outside ``[0, num_hidden_layers]``.
    """
    check_positive_int("num_hidden_layers", num_hidden_layers)
    if (
        isinstance(windowed_layers, bool)
        or not isinstance(windowed_layers, Integral)
        or not 0 <= windowed_layers <= num_hidden_layers
    ):
        raise ValueError(
            f"windowed_layers ({windowed_layers!r}) must be an integer in "
            f"[0, num_hidden_layers = {num_hidden_layers}]"
        )
    return ("sliding_attention",) * windowed_layers + ("full_attention",) * (
        num_hidden_layers - windowed_layers
    )
