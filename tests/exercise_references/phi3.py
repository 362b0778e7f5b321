"""References and known mistakes for the Phi-3 chapter's exercises: one NF4 block by hand, and a
k-bit NormalFloat code book."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, Mistake, check_function
from demos.exercises.phi3 import _integer_codes  # shared with the package
from demos.layers.quantization import NF4_CODE, quantize_nf4

# ------------------------------------------------------------------ exercise 1: one block by hand


def quantize_block(block: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference: ``(codes (n,) int64, absmax () float32)`` of one block of ``n`` values."""
    codes, absmax = quantize_nf4(block, blocksize=block.numel())
    return codes.long(), absmax[0]


def _by_max(block):  # max instead of the largest magnitude: a negative peak leaves [-1, 1]
    scale = block.max()
    scaled = (block / scale).clamp(-1, 1)
    return (scaled[:, None] - NF4_CODE).abs().argmin(-1), scale


def _int4_grid(block):  # evenly spaced levels (absmax-int4) instead of the NF4 table
    absmax = block.abs().max()
    return (torch.round(block / absmax * 7) + 7).long(), absmax


def _unscaled(block):  # the raw values looked up in the table, no absmax
    return (block[:, None] - NF4_CODE).abs().argmin(-1), block.abs().max()


def _signed(block):  # codes counted from zero's index: -7 .. 8 instead of 0 .. 15
    codes, absmax = quantize_block(block)
    return codes - 7, absmax


def check_quantize_block(fn: Callable) -> Check:
    """Check ``fn(block) -> (codes, absmax)`` for one NF4 block: codes in 0..15 (any integer dtype),
    equal to bitsandbytes' indices; absmax a 0-d float32 tensor."""
    gen = torch.Generator().manual_seed(0)
    negative_peak = 0.02 * torch.randn(64, generator=gen)
    negative_peak[17] = -0.2
    tie = torch.zeros(8)
    tie[0] = 1.0
    tie[1] = float((NF4_CODE[9] + NF4_CODE[10]) / 2)  # exactly between two levels
    cases = {
        "64 normal values": (0.05 * torch.randn(64, generator=gen),),
        "a negative peak": (negative_peak,),
        "a value on a midpoint and zeros": (tie,),
    }
    mistakes = [
        Mistake(_by_max, "the scale is block.max(), not the largest magnitude block.abs().max()."),
        Mistake(_int4_grid, "evenly spaced levels (absmax int4); NF4 looks up NF4_CODE."),
        Mistake(_unscaled, "the values were not divided by absmax before the lookup."),
        Mistake(_signed, "codes counted from zero's index (-7..8); NF4 codes are 0..15."),
    ]
    return check_function(
        _integer_codes(fn),
        quantize_block,
        cases,
        ("block",),
        mistakes=[Mistake(_integer_codes(m.implementation), m.why) for m in mistakes],
        names=("codes", "absmax"),
        atol=0.0,
        rtol=0.0,
    )


# ------------------------------------------------------- exercise 2: a k-bit NormalFloat code book


def normal_code(bits: int) -> torch.Tensor:
    """The reference k-bit NormalFloat table: ``2**bits`` ascending float32 levels in [-1, 1]
    with an exact zero; QLoRA's recipe with ``delta = (1/(2(2^k - 1)) + 1/(2 * 2^k)) / 2``."""
    n = 2**bits
    offset = 1 - (1 / (2 * (n - 1)) + 1 / (2 * n)) / 2
    positive = torch.special.ndtri(torch.linspace(offset, 0.5, n // 2 + 1, dtype=torch.float64))
    negative = -torch.special.ndtri(torch.linspace(offset, 0.5, n // 2, dtype=torch.float64))
    levels = torch.cat((negative[:-1], torch.zeros(1, dtype=torch.float64), positive[:-1]))
    return (levels.sort().values / positive[0]).float()


def _even_quantiles(bits):  # quantiles at (i + 1/2) / 2^k: no exact zero
    n = 2**bits
    q = torch.special.ndtri((torch.arange(n, dtype=torch.float64) + 0.5) / n)
    return (q / q.abs().max()).float()


def _symmetric(bits):  # 2^(k-1) - 1 levels on each side and zero; the spare code repeats 1
    n = 2**bits
    offset = 1 - (1 / (2 * (n - 1)) + 1 / (2 * n)) / 2
    half = torch.special.ndtri(torch.linspace(offset, 0.5, n // 2, dtype=torch.float64))[:-1]
    half = half / half.max()
    one, zero = torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    return torch.cat((-half, zero, half, one)).sort().values.float()


def _unnormalised(bits):  # quantiles in standard deviations, not divided by the largest
    n = 2**bits
    offset = 1 - (1 / (2 * (n - 1)) + 1 / (2 * n)) / 2
    positive = torch.special.ndtri(torch.linspace(offset, 0.5, n // 2 + 1, dtype=torch.float64))
    negative = -torch.special.ndtri(torch.linspace(offset, 0.5, n // 2, dtype=torch.float64))
    zero = torch.zeros(1, dtype=torch.float64)
    return torch.cat((negative[:-1], zero, positive[:-1])).sort().values.float()


def check_normal_code(fn: Callable) -> Check:
    """Check ``fn(bits) -> (2**bits,)`` ascending float32 NormalFloat levels for 2 to 5 bits."""
    cases = {f"{k} bits": (k,) for k in (2, 3, 4, 5)}
    return check_function(
        fn,
        normal_code,
        cases,
        ("bits",),
        mistakes=[
            Mistake(
                _even_quantiles,
                "quantiles at (i + 1/2) / 2^k have no exact zero: zero "
                "padding and zero weights would not be exact.",
            ),
            Mistake(
                _symmetric,
                "a symmetric table wastes a code; NF uses it for one more "
                "positive level (2^(k-1) positive, 2^(k-1) - 1 negative, and zero).",
            ),
            Mistake(
                _unnormalised, "the levels are not divided by the largest, so they do not reach 1."
            ),
        ],
        atol=1e-6,
        rtol=1e-6,
    )
