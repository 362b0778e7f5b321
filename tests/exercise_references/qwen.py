"""References and known mistakes for the Qwen chapter's exercises: the first position LogN-Scaling multiplies by a given
factor (its inverse problem), the RoPE base that slows any one channel by a given factor (NTK-aware
interpolation's derivation, generalised), and (transfer) cutting first-generation Qwen's fused
``c_attn`` into transformers' ``q_proj``, ``k_proj`` and ``v_proj``."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from demos.exercises.core import Check, Mistake, check_function
from demos.exercises.qwen import _not_int  # shared with the package
from demos.layers.long_context import logn_scale


def logn_position_reference(factor: float, train_len: int) -> int:
    """The reference: the smallest 0-based position whose query LogN-Scaling multiplies by at least
    ``factor`` (> 1), found with the book's ``logn_scale`` in float64 (a Python int)."""

    def scale(position: int) -> float:
        return logn_scale(torch.tensor([position]), train_len, torch.float64).item()

    position = max(0, math.ceil(train_len**factor) - 1)  # p + 1 >= L ** factor
    while position > 0 and scale(position - 1) >= factor:
        position -= 1
    while scale(position) < factor:
        position += 1
    return position


def _position_one_based(factor, train_len):  # i = p + 1 returned for p
    return math.ceil(train_len**factor)


def _position_rounded_down(factor, train_len):  # the last position still below the factor
    return math.floor(train_len**factor) - 1


def _position_floor(factor, train_len):  # right unless L ** factor is whole: then one past
    return math.floor(train_len**factor)


def _position_linear(factor, train_len):  # p + 1 = factor * L: a linear temperature
    return math.ceil(factor * train_len) - 1


def _position_natural(
    factor, train_len
):  # p + 1 = e ** factor: the base of the logarithm forgotten
    return math.ceil(math.exp(factor)) - 1


def check_logn_position(fn: Callable[[float, int], int]) -> Check:
    """Check ``first_position(factor, train_len) -> int``: the smallest 0-based position whose query
    LogN-Scaling multiplies by at least ``factor``; the value must be a Python int."""
    cases = {
        "factor 1.5, L = 2048 (Qwen's training length)": (1.5, 2048),
        "factor 1.0001, L = 2048 (just past the training length)": (1.0001, 2048),
        "factor 1.1, L = 8192": (1.1, 8192),
        "factor 2, L = 2048: every score doubled from p + 1 = L ** 2 on": (2.0, 2048),
        "factor 1.25, L = 32": (1.25, 32),
        "factor 2.2, L = 4": (2.2, 4),
    }
    mistakes = [
        Mistake(
            _position_one_based,
            "that is the 1-based position i = p + 1 (Qwen's list is 1-based). The query at "
            "0-based position p takes entry i = p + 1: return i - 1.",
        ),
        Mistake(
            _position_rounded_down,
            "L ** factor was rounded down, which gives the last position whose factor is still "
            "below it; round up: p + 1 = ceil(L ** factor).",
        ),
        Mistake(
            _position_floor,
            "floor(L ** factor) equals ceil(L ** factor) - 1 only while L ** factor is not a whole "
            "number. When it is, the query at p = L ** factor - 1 already has log_L(p + 1) = factor "
            "exactly: return ceil(L ** factor) - 1.",
        ),
        Mistake(
            _position_linear,
            "the factor grows with the logarithm of the position, log_L(p + 1): solving it gives "
            "p + 1 = L ** factor, not factor * L.",
        ),
        Mistake(
            _position_natural,
            "the logarithm is to base L (the training length): p + 1 = L ** factor, not "
            "e ** factor.",
        ),
    ]
    check = check_function(
        fn, logn_position_reference, cases, ("factor", "train_len"), mistakes=mistakes
    )
    if not check.ok:
        return check
    try:
        problem = _not_int(fn, cases)
    except Exception:  # a checker never raises on a learner's answer
        problem = None
    return Check(False, problem) if problem else check


def base_for_channel_reference(base: float, head_dim: int, channel: int, slowdown: float) -> float:
    """The reference: the RoPE base that makes channel ``channel`` (0 = fastest) turn exactly
    ``slowdown`` times slower than with ``base``: ``base * slowdown ** (d / (2 i))``."""
    return base * slowdown ** (head_dim / (2 * channel))


def _base_slowest_exponent(base, head_dim, channel, slowdown):  # NTK's d / (d - 2) for any channel
    return base * slowdown ** (head_dim / (head_dim - 2))


def _base_no_exponent(base, head_dim, channel, slowdown):  # base * slowdown
    return base * slowdown


def _base_exponent_inverted(base, head_dim, channel, slowdown):  # slowdown ** (2 i / d)
    return base * slowdown ** (2 * channel / head_dim)


def _base_one_based(base, head_dim, channel, slowdown):  # channel counted from 1
    return base * slowdown ** (head_dim / (2 * (channel + 1)))


def _base_faster(base, head_dim, channel, slowdown):  # a smaller base: the channel turns faster
    return base * slowdown ** (-head_dim / (2 * channel))


def check_base_for_channel(fn: Callable[[float, int, int, float], float]) -> Check:
    """Check ``base_for_channel(base, head_dim, channel, slowdown) -> float``: the base under which
    channel ``channel`` turns ``slowdown`` times slower."""
    cases = {
        "Qwen-7B's slowest channel (63 of 64), alpha = 7": (10000.0, 128, 63, 7.0),
        "Qwen-7B's middle channel (32), slowdown 7": (10000.0, 128, 32, 7.0),
        "Qwen-7B's channel 1, slowdown 3": (10000.0, 128, 1, 3.0),
        "head_dim 64, base 1e6, channel 10, slowdown 15": (1e6, 64, 10, 15.0),
        "head_dim 128, base 5e5, channel 20, slowdown 2.5": (5e5, 128, 20, 2.5),
    }
    mistakes = [
        Mistake(
            _base_slowest_exponent,
            "the exponent d / (d - 2) is right for the slowest channel only (i = d/2 - 1). "
            "Channel i turns at b ** (-2i / d), so it needs slowdown ** (d / (2i)).",
        ),
        Mistake(
            _base_no_exponent,
            "multiplying the base by the slowdown slows channel i by slowdown ** (2i / d) only; "
            "solve b' ** (-2i / d) = b ** (-2i / d) / slowdown for b'.",
        ),
        Mistake(
            _base_exponent_inverted,
            "the exponent is upside down: theta_i = b ** (-2i / d), so b' = b * slowdown ** "
            "(d / (2i)), not slowdown ** (2i / d).",
        ),
        Mistake(
            _base_one_based,
            "the channel was counted from 1; channel 0 is the fastest, theta_0 = b ** 0 = 1, and "
            "channel i turns at b ** (-2i / d).",
        ),
        Mistake(
            _base_faster,
            "that base is smaller, so the channel turns faster; slowing it down takes a larger base.",
        ),
    ]
    return check_function(
        fn,
        base_for_channel_reference,
        cases,
        ("base", "head_dim", "channel", "slowdown"),
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
