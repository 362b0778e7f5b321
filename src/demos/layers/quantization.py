"""4-bit NormalFloat (NF4) weight quantisation, block by block, as QLoRA and bitsandbytes do it.

A weight matrix is cut into blocks of ``B`` consecutive values (row-major, so a block may run
across rows); each block keeps one float32 scale, its largest magnitude (``absmax``), and each
value becomes the index of the nearest of 16 levels of the NF4 code book times that scale. The 16
levels are quantiles of a standard normal, normalised to [-1, 1] with an exact zero
[dettmers2023qlora]: pre-trained weights are close to normal, so each level is used about equally
often. Double quantisation stores the absmax values themselves in 8 bits, 256 per block.

Axes: ``n`` values of the weight (``numel``), ``B`` block size, ``n // B`` blocks.

References:
    dettmers2023qlora  QLoRA, Section 3 (4-bit NormalFloat, Eq. (4); double quantisation).

Reference implementation:
    bitsandbytes==0.50.2, functional.py::create_normal_map, ::get_4bit_type, ::quantize_4bit,
    ::dequantize_4bit; backends/default/ops.py (the CPU quantiser: ``bitsandbytes::quantize_4bit``,
    the 4-bit unpacking in ``_dequantize_4bit_compute``); nn/modules.py::Linear4bit.

Over ~300 lines on purpose: NF4 from its code book to the bytes a quantised model takes, one idea
the chapter derives in that order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from demos.validation import check_floating, check_positive_int

# The outermost quantile. QLoRA's delta = (1/32 + 1/30) / 2 puts the largest level between the
# last quantile of 16 and of 15 bins: 1 - delta = 0.96770833...; bitsandbytes rounds it to 7 digits.
NF4_OFFSET = 0.9677083


def nf4_code(offset: float = NF4_OFFSET) -> torch.Tensor:
    """The 16 NF4 levels, ascending, float32, shape ``(16,)``: ``-1 = q_0 < ... < q_7 = 0 < ... = 1``.

    Eq. (4) of [dettmers2023qlora] with an exact zero: 8 quantiles of N(0, 1) at probabilities
    evenly spaced from ``offset`` down to 1/2 (zero excluded) give the positive half, 7 give the
    negative half, then all are divided by the largest. Asymmetric on purpose: 15 non-zero levels
    and zero fill 16 codes. The steps follow bitsandbytes' ``create_normal_map`` (probabilities in
    float32, quantiles in float64, normalised in float32), so the table equals its bit for bit.
    """
    if not 0.5 < offset < 1.0:
        raise ValueError(f"offset ({offset!r}) must lie in (0.5, 1)")
    positive = torch.special.ndtri(torch.linspace(offset, 0.5, 9)[:-1].double())  # (8,)
    negative = -torch.special.ndtri(torch.linspace(offset, 0.5, 8)[:-1].double())  # (7,)
    zero = torch.zeros(1, dtype=torch.float64)
    levels = torch.cat((negative, zero, positive)).float().sort().values  # (16,)
    return levels / levels.max()


NF4_CODE = nf4_code()  # (16,) float32, the table every function below uses


def _check_blocks(weight: torch.Tensor, blocksize: int, name: str = "weight") -> int:
    """``ValueError`` unless ``weight`` is a tensor cut evenly into blocks; returns the block count."""
    check_positive_int("blocksize", blocksize)
    if not isinstance(weight, torch.Tensor):
        raise ValueError(f"{name} must be a tensor, got {type(weight).__name__}")
    n = weight.numel()
    if n == 0 or n % blocksize:
        raise ValueError(
            f"{name}.numel() ({n}) must be a positive multiple of blocksize ({blocksize})"
        )
    return n // blocksize


def _count_blocks(weight: torch.Tensor, blocksize: int, name: str = "weight") -> int:
    """``ceil(numel / blocksize)``: the last block may be short, as in bitsandbytes'
    ``quantize_4bit``; ``ValueError`` unless ``weight`` is a non-empty tensor."""
    check_positive_int("blocksize", blocksize)
    if not isinstance(weight, torch.Tensor):
        raise ValueError(f"{name} must be a tensor, got {type(weight).__name__}")
    if weight.numel() == 0:
        raise ValueError(f"{name} must hold at least one value, got shape {tuple(weight.shape)}")
    return -(-weight.numel() // blocksize)


def _padded_blocks(x: torch.Tensor, blocks: int, blocksize: int) -> torch.Tensor:
    """``x`` flattened and zero-padded to ``(blocks, blocksize)``: a zero never raises a block's
    absmax, so a short last block gets the absmax of its own values, as in bitsandbytes."""
    flat = x.reshape(-1)
    return F.pad(flat, (0, blocks * blocksize - flat.numel())).reshape(blocks, blocksize)


def quantize_nf4(weight: torch.Tensor, blocksize: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantise ``weight`` to NF4 codes, one absmax scale per block of ``blocksize`` values.

    Args:
        weight: any shape, floating point, finite. When ``numel`` is not a multiple of
            ``blocksize`` the last block is short and gets its own absmax, as in bitsandbytes'
            ``quantize_4bit``.
        blocksize: values per scale (QLoRA: 64).

    Returns:
        ``codes``: uint8 in [0, 15], ``weight``'s shape (unpacked: one code per value);
        ``absmax``: float32 ``(ceil(numel / blocksize),)``, the largest ``|w|`` of each block.
        The work is done in float32 whatever ``weight``'s dtype, as bitsandbytes does.

    Raises:
        ValueError: ``weight`` empty, not floating point or holding NaN or inf, or ``blocksize``
            not a positive integer. (bitsandbytes 0.50.2 quantises a NaN or inf without a word:
            the block's absmax becomes NaN or inf and every value of that block dequantises to
            NaN; here the weight is refused instead, naming the first bad position.)

    Each value goes to the nearest level of :data:`NF4_CODE` (a tie goes to the lower one), after
    scaling by ``1 / absmax``: multiplied by the reciprocal, as bitsandbytes does, not divided,
    which can differ in the last bit and move a value across a decision boundary.
    """
    check_floating(weight=weight)
    blocks = _count_blocks(weight, blocksize)
    bad = ~torch.isfinite(weight.detach())
    if bool(bad.any()):
        where = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"weight must be finite, got {weight[where].item()} at index {where}: its whole block "
            "would dequantise to NaN"
        )
    x = _padded_blocks(weight.detach().float(), blocks, blocksize)  # (ceil(n/B), B), zero-padded
    absmax = x.abs().amax(dim=-1)  # (ceil(n/B),)
    scaled = (x * (1.0 / absmax.clamp(min=1e-38))[:, None]).clamp(-1, 1)  # (n/B, B) in [-1, 1]
    code = NF4_CODE.to(x.device)
    boundaries = (code[:-1] + code[1:]) / 2  # (15,) midpoints between neighbouring levels
    codes = torch.bucketize(scaled, boundaries)  # (ceil(n/B), B): index of the nearest level
    return codes.to(torch.uint8).reshape(-1)[: weight.numel()].reshape(weight.shape), absmax


def dequantize_nf4(codes: torch.Tensor, absmax: torch.Tensor, blocksize: int = 64) -> torch.Tensor:
    """``NF4_CODE[codes] * absmax`` of each block: float32, ``codes``' shape (a short last block,
    when ``numel`` is not a multiple of ``blocksize``, uses the last scale).

    Raises:
        ValueError: ``codes`` empty or not an integer tensor in [0, 15], or ``absmax`` not a
            floating tensor of shape ``(ceil(numel / blocksize),)`` with finite values >= 0 (an
            absmax is a largest magnitude: a negative one would flip the block's signs).
    """
    blocks = _count_blocks(codes, blocksize, "codes")
    if codes.dtype.is_floating_point or codes.dtype == torch.bool:
        raise ValueError(f"codes must be an integer tensor, got {codes.dtype}")
    lo, hi = int(codes.min()), int(codes.max())
    if lo < 0 or hi > 15:
        raise ValueError(f"codes must lie in [0, 15], got values from {lo} to {hi}")
    check_floating(absmax=absmax)
    if absmax.shape != (blocks,):
        raise ValueError(
            f"absmax must have shape ({blocks},) = (ceil(numel / blocksize),), "
            f"got {tuple(absmax.shape)}"
        )
    bad = ~torch.isfinite(absmax) | (absmax < 0)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"absmax must hold finite values >= 0 (a block's largest |w|), got {absmax[i].item()} "
            f"for block {i}"
        )
    levels = _padded_blocks(NF4_CODE.to(codes.device)[codes.long()], blocks, blocksize)
    values = levels * absmax.float()[:, None]  # (ceil(n/B), B)
    return values.reshape(-1)[: codes.numel()].reshape(codes.shape)


def pack_nf4(codes: torch.Tensor) -> torch.Tensor:
    """Two codes per byte, the first in the *high* nibble (bitsandbytes' order): ``(ceil(n/2),)`` uint8.

    Raises:
        ValueError: ``codes`` not an integer tensor with values in [0, 15] (16 would wrap to 0 in
            the nibble, and a float code would be truncated).
    """
    if (
        not isinstance(codes, torch.Tensor)
        or codes.dtype.is_floating_point
        or codes.dtype
        in (
            torch.bool,
            torch.complex64,
            torch.complex128,
        )
    ):
        got = codes.dtype if isinstance(codes, torch.Tensor) else type(codes).__name__
        raise ValueError(f"codes must be an integer tensor of NF4 codes in [0, 15], got {got}")
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) > 15):
        raise ValueError(
            f"codes must lie in [0, 15] (4 bits), got values from {int(codes.min())} to "
            f"{int(codes.max())}"
        )
    flat = codes.reshape(-1).to(torch.uint8)
    if flat.numel() % 2:
        flat = F.pad(flat, (0, 1))
    return (flat[0::2] << 4) | flat[1::2]


def unpack_nf4(packed: torch.Tensor, shape: tuple[int, ...] | torch.Size) -> torch.Tensor:
    """Inverse of :func:`pack_nf4`: uint8 codes of ``shape``."""
    flat = packed.reshape(-1).to(torch.uint8)
    codes = torch.stack((flat >> 4, flat & 0xF), dim=-1).reshape(-1)  # high nibble first
    return codes[: torch.Size(shape).numel()].reshape(shape)


def double_quantize_absmax(
    absmax: torch.Tensor, code: torch.Tensor, blocksize: int = 256
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Double quantisation: the NF4 scales themselves in 8 bits (QLoRA, Section 3).

    The mean is subtracted (``offset``, one float32), then blocks of ``blocksize`` centred scales
    are quantised like the weights: one float32 ``absmax2`` per block and, per scale, the index of
    the nearest level of the 8-bit ``code`` book.

    Args:
        absmax: float32 ``(m,)`` from :func:`quantize_nf4`, ``m`` a multiple of ``blocksize``.
        code: ``(256,)`` ascending levels in [-1, 1]: bitsandbytes' dynamic 8-bit map
            (``bitsandbytes.functional.create_dynamic_map()``), which the book does not derive.
        blocksize: scales per second-level block (bitsandbytes: 256).

    Returns:
        ``codes8`` uint8 ``(m,)``, ``absmax2`` float32 ``(m // blocksize,)``, ``offset`` float32 ``()``.

    Deviation: bitsandbytes' CPU kernel finds the level with an approximate binary search that,
    for about one scale in a thousand, returns the neighbour of the nearest level; this function
    returns the nearest. The tests measure the difference.
    """
    check_floating(absmax=absmax, code=code)
    if absmax.dim() != 1:
        raise ValueError(f"absmax must have shape (m,), got {tuple(absmax.shape)}")
    if code.shape != (256,):
        raise ValueError(f"code must have shape (256,), got {tuple(code.shape)}")
    blocks = _check_blocks(absmax, blocksize, "absmax")
    a = absmax.float()
    offset = a.mean()
    centred = (a - offset).reshape(blocks, blocksize)  # (m/B2, B2)
    absmax2 = centred.abs().amax(dim=-1)  # (m/B2,)
    scaled = (centred * (1.0 / absmax2.clamp(min=1e-38))[:, None]).clamp(-1, 1)
    distance = (scaled[..., None] - code.float().to(a.device)).abs()  # (m/B2, B2, 256)
    return distance.argmin(dim=-1).to(torch.uint8).reshape(-1), absmax2, offset


def dequantize_absmax(
    codes8: torch.Tensor,
    absmax2: torch.Tensor,
    offset: torch.Tensor,
    code: torch.Tensor,
    blocksize: int = 256,
) -> torch.Tensor:
    """Inverse of :func:`double_quantize_absmax`: ``code[codes8] * absmax2 + offset``, float32 ``(m,)``."""
    blocks = _check_blocks(codes8, blocksize, "codes8")
    if absmax2.shape != (blocks,):
        raise ValueError(f"absmax2 must have shape ({blocks},), got {tuple(absmax2.shape)}")
    levels = code.float().to(codes8.device)[codes8.long()].reshape(blocks, blocksize)
    return (levels * absmax2.float()[:, None]).reshape(-1) + offset.float()


def absmax_int_roundtrip(weight: torch.Tensor, blocksize: int = 64, bits: int = 4) -> torch.Tensor:
    """Plain symmetric integer quantisation, quantised then dequantised: the baseline NF4 beats.

    Each block is scaled by ``absmax / L`` with ``L = 2 ** (bits - 1) - 1`` (7 for 4 bits) and
    rounded to the integers ``-L .. L``: evenly spaced levels, ``2L + 1`` of the ``2 ** bits`` codes.
    Returns float32 of ``weight``'s shape.
    """
    check_floating(weight=weight)
    check_positive_int("bits", bits)
    if bits < 2:
        raise ValueError(f"bits ({bits}) must be at least 2 for a signed integer grid")
    blocks = _check_blocks(weight, blocksize)
    x = weight.detach().reshape(blocks, blocksize).float()  # (n/B, B)
    top = 2 ** (bits - 1) - 1
    scale = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-38) / top  # (n/B, 1)
    return (torch.round(x / scale).clamp(-top, top) * scale).reshape(weight.shape)


FORMATS = ("fp16", "int8", "nf4", "nf4-dq")


def linear_weight_bytes(
    out_features: int, in_features: int, fmt: str, blocksize: int = 64, blocksize2: int = 256
) -> int:
    """Bytes that bitsandbytes keeps for one ``(out_features, in_features)`` weight in ``fmt``.

    ``fp16``: 2 per value. ``int8`` (LLM.int8's ``Linear8bitLt``): 1 per value plus one float32
    scale per output row. ``nf4``: 4 bits per value plus one float32 absmax per block.
    ``nf4-dq`` (double quantisation): 4 bits per value, one byte per block, one float32 per
    ``blocksize2`` blocks and one float32 offset. Shared code tables are not counted.
    """
    for name, value in (("out_features", out_features), ("in_features", in_features)):
        check_positive_int(name, value)
    check_positive_int("blocksize", blocksize)
    check_positive_int("blocksize2", blocksize2)
    if fmt not in FORMATS:
        raise ValueError(f"fmt ({fmt!r}) must be one of {FORMATS}")
    n = out_features * in_features
    blocks = -(-n // blocksize)  # ceil: the last block may be short
    return {
        "fp16": 2 * n,
        "int8": n + 4 * out_features,
        "nf4": -(-n // 2) + 4 * blocks,
        "nf4-dq": -(-n // 2) + blocks + 4 * -(-blocks // blocksize2) + 4,
    }[fmt]


class LinearNF4(nn.Module):
    """A linear layer whose weight is stored as NF4 codes and block scales, dequantised in ``forward``.

    The buffers are ``codes`` (uint8, ``(out_features, in_features)``, one code per value here;
    a packed store would be half that) and ``absmax`` (float32); ``bias`` stays a float parameter,
    as in bitsandbytes' ``Linear4bit``. ``forward(x)`` is ``x @ dequantize_nf4(...).T + bias``,
    computed in ``x``'s dtype: ``(..., in_features) -> (..., out_features)``.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None, blocksize: int = 64):
        super().__init__()
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
            got = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
            raise ValueError(f"weight must have shape (out_features, in_features), got {got}")
        codes, absmax = quantize_nf4(weight, blocksize)
        self.out_features, self.in_features = weight.shape
        self.blocksize = blocksize
        self.register_buffer("codes", codes)
        self.register_buffer("absmax", absmax)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())

    @classmethod
    def from_linear(cls, linear: nn.Linear, blocksize: int = 64) -> LinearNF4:
        """Quantise an ``nn.Linear``'s weight (its bias is kept as it is)."""
        return cls(linear.weight.detach(), linear.bias, blocksize)

    def dequantized_weight(self) -> torch.Tensor:
        """``(out_features, in_features)`` float32."""
        return dequantize_nf4(self.codes, self.absmax, self.blocksize)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_floating(x=x)
        if x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape (..., {self.in_features}), got {tuple(x.shape)}")
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, self.dequantized_weight().to(x.dtype), bias)  # (..., out_features)
