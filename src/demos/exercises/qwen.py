"""Checkers for the Qwen chapter's exercises: LogN-Scaling's factor at a position, the RoPE base of
Qwen's dynamic NTK interpolation for a length, and (transfer) cutting first-generation Qwen's fused
``c_attn`` into transformers' ``q_proj``, ``k_proj`` and ``v_proj``."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from demos.exercises.core import Check, Mistake, check_function
from demos.layers.long_context import logn_scale, ntk_scaled_base, qwen_ntk_alpha


def logn_reference(position: int, train_len: int) -> float:
    """The reference: LogN's factor for the query at 0-based ``position`` (a Python float)."""
    return logn_scale(torch.tensor([position]), train_len, torch.float64).item()


def _logn_zero_based(position, train_len):  # log_L(p) past L: off by one position
    return math.log(position) / math.log(train_len) if position > train_len else 1.0


def _logn_unclamped(position, train_len):  # log_L(p + 1) everywhere: shrinks short contexts
    return math.log(position + 1) / math.log(train_len)


def _logn_natural(position, train_len):  # ln(p + 1) past L: the base of the logarithm forgotten
    return math.log(position + 1) if position + 1 > train_len else 1.0


def _logn_ratio(position, train_len):  # (p + 1) / L: a linear temperature, not a logarithm
    return (position + 1) / train_len if position + 1 > train_len else 1.0


def check_logn_scale(fn: Callable[[int, int], float]) -> Check:
    """Check ``logn(position, train_len) -> float``: the factor of the query at 0-based ``position``."""
    cases = {
        "inside the training length (position 100, L = 2048)": (100, 2048),
        "the last trained position (position 2047, L = 2048)": (2047, 2048),
        "one past it (position 2048, L = 2048)": (2048, 2048),
        "position 8191, L = 2048 (an 8K context)": (8191, 2048),
        "position 15, L = 4: log_4(16) = 2": (15, 4),
    }
    mistakes = [
        Mistake(
            _logn_zero_based,
            "the factor used log(position) for a 0-based position. Qwen's list starts at i = 1: "
            "the query at 0-based position p gets log_L(p + 1).",
        ),
        Mistake(
            _logn_unclamped,
            "inside the training length the factor must stay 1; log_L(p + 1) < 1 there would "
            "flatten every short prompt's attention.",
        ),
        Mistake(
            _logn_natural,
            "the logarithm is to base L (the training length): log(p + 1) / log(L).",
        ),
        Mistake(
            _logn_ratio,
            "that is the ratio (p + 1) / L; LogN-Scaling grows with its logarithm, log_L(p + 1).",
        ),
    ]
    return check_function(
        fn, logn_reference, cases, ("position", "train_len"), mistakes=mistakes, rtol=1e-6
    )


def ntk_base_reference(base: float, seq_len: int, train_len: int, head_dim: int) -> float:
    """The reference: Qwen's dynamic NTK base for a sequence of ``seq_len`` tokens."""
    return ntk_scaled_base(base, qwen_ntk_alpha(seq_len, train_len), head_dim)


def _ntk_unchunked(base, seq_len, train_len, head_dim):  # alpha = 2 r - 1 (transformers' factor 2)
    alpha = max(1.0, 2 * seq_len / train_len - 1)
    return base * alpha ** (head_dim / (head_dim - 2))


def _ntk_ratio(base, seq_len, train_len, head_dim):  # alpha = r
    alpha = max(1.0, seq_len / train_len)
    return base * alpha ** (head_dim / (head_dim - 2))


def _ntk_no_exponent(base, seq_len, train_len, head_dim):  # base * alpha
    return base * qwen_ntk_alpha(seq_len, train_len)


def _ntk_power_of_two(base, seq_len, train_len, head_dim):  # alpha = 2 ** ceil(log2 r), no "- 1"
    alpha = max(1, 2 ** math.ceil(math.log2(seq_len / train_len)))
    return base * alpha ** (head_dim / (head_dim - 2))


def check_ntk_base(fn: Callable[[float, int, int, int], float]) -> Check:
    """Check ``ntk_base(base, seq_len, train_len, head_dim) -> float`` (Qwen's dynamic NTK)."""
    cases = {
        "Qwen-7B at 1,000 tokens (trained on 2,048)": (10000.0, 1000, 2048, 128),
        "Qwen-7B at 3,000 tokens": (10000.0, 3000, 2048, 128),
        "Qwen-7B at 8,192 tokens (exactly 4 L)": (10000.0, 8192, 2048, 128),
        "Qwen-7B at 8,193 tokens (one past 4 L)": (10000.0, 8193, 2048, 128),
        "head_dim 16, 100 tokens, L = 16": (10000.0, 100, 16, 16),
    }
    mistakes = [
        Mistake(
            _ntk_unchunked,
            "alpha = 2 r - 1 is transformers' dynamic rule (factor 2), which moves with every "
            "token; Qwen's changes by chunks: r is first rounded up to a power of two.",
        ),
        Mistake(
            _ntk_ratio,
            "alpha is not the ratio r = seq_len / L: Qwen uses 2 ** (ceil(log2 r) + 1) - 1.",
        ),
        Mistake(
            _ntk_no_exponent,
            "the base is multiplied by alpha ** (d / (d - 2)), not by alpha: that exponent makes "
            "the slowest frequency exactly alpha times slower.",
        ),
        Mistake(
            _ntk_power_of_two,
            "alpha is 2 ** (ceil(log2 r) + 1) - 1 (3, 7, 15 ...), not the power of two itself.",
        ),
    ]
    return check_function(
        fn,
        ntk_base_reference,
        cases,
        ("base", "seq_len", "train_len", "head_dim"),
        mistakes=mistakes,
        rtol=1e-9,
    )


def split_c_attn_reference(
    weight: torch.Tensor, bias: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The reference: ``c_attn``'s ``(3c, c)`` weight and ``(3c,)`` bias cut into three blocks in the
    order q, k, v (``mixed_x_layer.split(hidden_size, dim=2)`` in ``QWenAttention.forward``)."""
    c = weight.shape[1]
    (qw, kw, vw), (qb, kb, vb) = weight.split(c, dim=0), bias.split(c, dim=0)
    return qw, kw, vw, qb, kb, vb


def _split_head_by_head(weight, bias):  # GPT-NeoX's [q_i, k_i, v_i] per head
    c, h = weight.shape[1], 4
    d = c // h
    w = weight.view(h, 3, d, c)
    b = bias.view(h, 3, d)
    return (*(w[:, j].reshape(c, c) for j in range(3)), *(b[:, j].reshape(c) for j in range(3)))


def _split_kqv(weight, bias):  # the blocks in another order
    qw, kw, vw, qb, kb, vb = split_c_attn_reference(weight, bias)
    return kw, qw, vw, kb, qb, vb


def _split_transposed(weight, bias):  # each block transposed, as for GPT-2's Conv1D (in, out)
    qw, kw, vw, qb, kb, vb = split_c_attn_reference(weight, bias)
    return qw.t(), kw.t(), vw.t(), qb, kb, vb


def check_split_c_attn(fn: Callable[..., tuple]) -> Check:
    """Check ``split(weight, bias) -> (q_w, k_w, v_w, q_b, k_b, v_b)`` for first-generation Qwen's
    ``c_attn`` (``weight (3c, c)``, ``bias (3c,)``, 4 heads)."""
    gen = torch.Generator().manual_seed(0)
    cases = {
        f"c = {c}, 4 heads": (
            torch.randn(3 * c, c, generator=gen),
            torch.randn(3 * c, generator=gen),
        )
        for c in (8, 16)
    }
    mistakes = [
        Mistake(
            _split_head_by_head,
            "the rows were cut head by head ([q, k, v] per head, GPT-NeoX's layout). Qwen's "
            "c_attn holds three blocks: all queries, then all keys, then all values.",
        ),
        Mistake(_split_kqv, "the blocks come in the order q, k, v."),
        Mistake(
            _split_transposed,
            "the blocks came back transposed. c_attn is an nn.Linear, whose weight is already "
            "(out, in), like q_proj's: copy the rows as they are.",
        ),
    ]
    names = ("q_proj.weight", "k_proj.weight", "v_proj.weight")
    names += ("q_proj.bias", "k_proj.bias", "v_proj.bias")
    return check_function(
        fn, split_c_attn_reference, cases, ("weight", "bias"), mistakes=mistakes, names=names
    )
