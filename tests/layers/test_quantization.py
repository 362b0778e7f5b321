"""NF4 quantisation against bitsandbytes on the CPU: the code book, the 4-bit codes inside
``quantize_4bit``'s packed bytes, ``dequantize_4bit``'s values, double quantisation, and
``Linear4bit``'s output.

bitsandbytes logs a warning on import on CPUs with AVX512-BF16 ("Failed to load CPU
gemm_4bit_forward from kernels-community"): it could not fetch an optional faster kernel from the
Hub and falls back to its own; quantising and dequantising never use that kernel.
"""

from __future__ import annotations

import logging

import pytest
import torch

from demos import dequantize_nf4, quantize_nf4
from demos.layers.quantization import (
    NF4_CODE,
    LinearNF4,
    absmax_int_roundtrip,
    dequantize_absmax,
    double_quantize_absmax,
    linear_weight_bytes,
    nf4_code,
    pack_nf4,
    unpack_nf4,
)

logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
bnb = pytest.importorskip("bitsandbytes")
BF = pytest.importorskip("bitsandbytes.functional")

# (shape, blocksize): square and not, 1-D, blocks that run across rows (96 % 64 != 0), block 4096
CASES = [
    ((64, 64), 64),
    ((48, 96), 64),
    ((48, 96), 32),
    ((256, 128), 128),
    ((3, 1024), 256),
    ((4096,), 64),
    ((2, 3, 512), 512),
    ((64, 128), 4096),
]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def bnb_codes(packed: torch.Tensor, shape) -> torch.Tensor:
    """The 4-bit indices inside bitsandbytes' packed bytes, unpacked by hand (first code in the
    high nibble): written here independently of ``unpack_nf4``."""
    flat = packed.reshape(-1)
    both = torch.empty(2 * flat.numel(), dtype=torch.uint8)
    both[0::2], both[1::2] = flat >> 4, flat & 0x0F
    return both[: torch.Size(shape).numel()].reshape(shape)


def test_code_book_equals_bitsandbytes_table():
    table = BF.get_4bit_type("nf4", device="cpu")
    assert NF4_CODE.dtype == torch.float32 and NF4_CODE.shape == (16,)
    assert torch.equal(NF4_CODE, table)  # bit for bit
    assert NF4_CODE[7] == 0 and NF4_CODE[0] == -1 and NF4_CODE[-1] == 1  # an exact zero
    assert (NF4_CODE.diff() > 0).all()


def test_code_book_with_the_exact_offset_differs_only_in_the_last_bits():
    """QLoRA's delta without bitsandbytes' 7-digit rounding: the same levels to ~3e-7."""
    exact = nf4_code(1 - (1 / 32 + 1 / 30) / 2)
    gap = (exact - BF.get_4bit_type("nf4", device="cpu")).abs().max().item()
    assert 0 < gap < 1e-6


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("shape", "blocksize"), CASES, ids=str)
def test_codes_and_values_equal_bitsandbytes(shape, blocksize, dtype):
    weight = (0.05 * torch.randn(shape)).to(dtype)
    codes, absmax = quantize_nf4(weight, blocksize)
    packed, state = BF.quantize_4bit(weight, blocksize=blocksize, quant_type="nf4")
    assert codes.shape == weight.shape and codes.dtype == torch.uint8
    assert absmax.dtype == torch.float32 and absmax.shape == (weight.numel() // blocksize,)
    assert torch.equal(codes, bnb_codes(packed, shape))
    assert len(codes.unique()) > 8  # the comparison saw many levels, not one
    assert torch.equal(absmax, state.absmax)
    values = dequantize_nf4(codes, absmax, blocksize)
    assert values.dtype == torch.float32 and torch.isfinite(values).all()
    # bitsandbytes' pure-PyTorch dequantiser (its "default" backend), in weight's dtype
    pytorch_path = bnb_default_dequantize(packed, state)
    assert torch.equal(values.to(dtype), pytorch_path)
    if shape[-1] % blocksize == 0:  # its CPU kernel agrees there (see the next test otherwise)
        # (its CPU kernel returns a 1-D weight as (1, n): compared as values, not shapes)
        cpu_kernel = BF.dequantize_4bit(packed, state).reshape(shape)
        assert torch.equal(values.to(dtype), cpu_kernel)


def bnb_default_dequantize(packed: torch.Tensor, state) -> torch.Tensor:
    from bitsandbytes.backends.default.ops import _dequantize_4bit_compute

    flat = packed.reshape(-1)
    return _dequantize_4bit_compute(
        flat, state.absmax, state.code, state.blocksize, state.shape, state.dtype
    )


def test_bitsandbytes_cpu_dequantiser_misplaces_blocks_that_cross_rows():
    """bitsandbytes 0.50.2 quantises the flattened tensor, but its CPU C dequantiser, used when the
    last dimension is even, reads the scales as if blocks restarted at each row. With 96 columns
    and blocks of 64 most values get another block's scale; ours (and bitsandbytes' PyTorch path)
    round-trips within half a level gap. Found while writing these tests."""
    weight = 0.05 * torch.randn(48, 96)
    packed, state = BF.quantize_4bit(weight, blocksize=64, quant_type="nf4")
    codes, absmax = quantize_nf4(weight)
    ours = (dequantize_nf4(codes, absmax) - weight).abs().max()
    cpu_kernel = (BF.dequantize_4bit(packed, state) - weight).abs().max()
    bound = NF4_CODE.diff().max() / 2 * absmax.max()
    assert ours <= bound < cpu_kernel


def test_pack_nf4_is_bitsandbytes_byte_layout():
    weight = torch.randn(32, 64)
    codes, _ = quantize_nf4(weight)
    packed, _ = BF.quantize_4bit(weight, blocksize=64, quant_type="nf4")
    assert torch.equal(pack_nf4(codes), packed.reshape(-1))
    assert torch.equal(unpack_nf4(packed, weight.shape), codes)
    swapped = (codes.reshape(-1, 2).flip(-1)).reshape(-1)  # low nibble first: wrong
    assert not torch.equal(pack_nf4(swapped), packed.reshape(-1))


def test_quantisation_error_is_bounded_by_half_the_largest_gap():
    weight = torch.randn(64, 64, dtype=torch.float64)
    codes, absmax = quantize_nf4(weight)
    error = (dequantize_nf4(codes, absmax) - weight).abs().reshape(-1, 64)
    half_gap = NF4_CODE.diff().max().double() / 2
    assert (error <= half_gap * absmax.double()[:, None] + 1e-6).all()
    # the largest value of each block is represented exactly (level +1 or -1)
    top = weight.reshape(-1, 64).abs().argmax(-1)
    assert (error.gather(1, top[:, None]) < 1e-6).all()


def test_nf4_beats_absmax_int4_on_normal_weights():
    weight = torch.randn(256, 256)
    codes, absmax = quantize_nf4(weight)
    nf4 = (dequantize_nf4(codes, absmax) - weight).pow(2).mean()
    int4 = (absmax_int_roundtrip(weight) - weight).pow(2).mean()
    assert nf4 < int4


def test_double_quantisation_against_bitsandbytes():
    """Offset and second-level scales are equal; the 8-bit codes equal bitsandbytes' except where
    its CPU binary search returns the neighbour of the nearest level (measured: < 0.5 %), and there
    ours is the nearer one; the recovered absmax is within one 8-bit step."""
    weight = 0.05 * torch.randn(512, 512)
    codes, absmax = quantize_nf4(weight)
    packed, state = BF.quantize_4bit(
        weight, blocksize=64, quant_type="nf4", compress_statistics=True
    )
    assert torch.equal(codes, bnb_codes(packed, weight.shape))
    code8 = state.state2.code
    codes8, absmax2, offset = double_quantize_absmax(absmax, code8, blocksize=256)
    assert torch.equal(offset, state.offset)
    assert torch.equal(absmax2, state.state2.absmax)
    theirs = state.absmax.long()
    differ = codes8.long() != theirs
    assert differ.float().mean() < 5e-3
    scaled = ((absmax - offset).reshape(-1, 256) / absmax2[:, None]).reshape(-1)
    ours_gap = (scaled - code8[codes8.long()]).abs()
    their_gap = (scaled - code8[theirs]).abs()
    assert (ours_gap <= their_gap).all()
    recovered = dequantize_absmax(codes8, absmax2, offset, code8)
    reference = BF.dequantize_blockwise(state.absmax, state.state2) + state.offset
    step = code8.sort().values.diff().max() * absmax2.max()
    assert (recovered - reference).abs().max() <= step
    assert torch.equal(recovered[~differ], reference[~differ])
    # dequantised weights: the bitsandbytes result, and ours from the double-quantised scales
    ours = dequantize_nf4(codes, recovered)
    theirs_w = BF.dequantize_4bit(packed, state)
    torch.testing.assert_close(ours, theirs_w, atol=step * 1.01, rtol=0)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_nf4_equals_bitsandbytes_linear4bit(bias):
    """bitsandbytes' grad path (dequantise, then ``F.linear``) in float32: equal to ~1 ulp."""
    linear = torch.nn.Linear(128, 64, bias=bias)
    ref = bnb.nn.Linear4bit(
        128,
        64,
        bias=bias,
        compute_dtype=torch.float32,
        compress_statistics=False,
        quant_type="nf4",
    )
    ref.load_state_dict(linear.state_dict())
    ref = ref.to("cpu")  # quantises
    ours = LinearNF4.from_linear(linear)
    x = torch.randn(3, 5, 128, requires_grad=True)
    out, expected = ours(x), ref(x)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out, linear(x), atol=1e-3)  # quantisation did happen
    grad = torch.randn_like(out)
    (gx_ours,) = torch.autograd.grad(out, x, grad)
    (gx_ref,) = torch.autograd.grad(expected, x, grad)
    torch.testing.assert_close(gx_ours, gx_ref, atol=1e-5, rtol=1e-5)


def test_linear_nf4_near_bitsandbytes_inference_path():
    """Without gradients, in eval mode, on CPUs with AVX512-BF16, Linear4bit repacks its weight
    and multiplies in bfloat16: the same layer to bfloat16 precision (2**-8 relative)."""
    linear = torch.nn.Linear(128, 64)
    ref = bnb.nn.Linear4bit(
        128, 64, compute_dtype=torch.float32, compress_statistics=False, quant_type="nf4"
    )
    ref.load_state_dict(linear.state_dict())
    ref = ref.to("cpu").eval()
    x = torch.randn(4, 128)
    with torch.no_grad():
        out, expected = LinearNF4.from_linear(linear)(x), ref(x)
    torch.testing.assert_close(out, expected, atol=1e-2, rtol=1e-2)


def tensor_bytes(*tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


@pytest.mark.parametrize(("out_features", "in_features"), [(96, 256), (64, 64), (300, 512)])
def test_linear_weight_bytes_equal_what_bitsandbytes_stores(out_features, in_features):
    linear = torch.nn.Linear(in_features, out_features, bias=False)
    int8 = bnb.nn.Linear8bitLt(in_features, out_features, bias=False, has_fp16_weights=False)
    int8.load_state_dict(linear.state_dict())
    int8 = int8.to("cpu")
    stored = {"fp16": tensor_bytes(linear.weight.half())}
    stored["int8"] = tensor_bytes(int8.weight.data, int8.weight.SCB)
    for fmt, nested in (("nf4", False), ("nf4-dq", True)):
        layer = bnb.nn.Linear4bit(
            in_features, out_features, bias=False, compress_statistics=nested, quant_type="nf4"
        )
        layer.load_state_dict(linear.state_dict())
        layer = layer.to("cpu")
        state = layer.weight.quant_state
        parts = [layer.weight.data, state.absmax]
        if nested:
            parts += [state.state2.absmax, state.offset.reshape(1).float()]
        stored[fmt] = tensor_bytes(*parts)
    for fmt, expected in stored.items():
        assert linear_weight_bytes(out_features, in_features, fmt) == expected, fmt


@pytest.mark.parametrize(("shape", "blocksize"), [((10, 10), 64), ((7,), 64), ((3, 50), 64)])
def test_a_short_last_block_is_quantised_as_bitsandbytes_does(shape, blocksize):
    """numel not a multiple of blocksize: bitsandbytes 0.50.2 gives the last, short block its own
    absmax (ceil(n / B) scales); so do we, codes and values equal."""
    weight = 0.05 * torch.randn(shape)
    codes, absmax = quantize_nf4(weight, blocksize)
    packed, state = BF.quantize_4bit(weight, blocksize=blocksize, quant_type="nf4")
    n = weight.numel()
    assert absmax.shape == state.absmax.shape == (-(-n // blocksize),)
    assert torch.equal(absmax, state.absmax)
    # the short block's scale is its own largest |w|, not the previous block's
    assert absmax[-1] == weight.reshape(-1)[(n // blocksize) * blocksize :].abs().max()
    assert torch.equal(codes, bnb_codes(packed, shape))
    values = dequantize_nf4(codes, absmax, blocksize)
    assert torch.equal(values, bnb_default_dequantize(packed, state))
    assert torch.equal(unpack_nf4(pack_nf4(codes), shape), codes)


def test_non_finite_weights_are_refused():
    """bitsandbytes quantises a NaN without a word and the whole block dequantises to NaN (shown
    here); ours refuses the weight and names the position."""
    weight = torch.full((64,), 0.5)
    weight[1] = float("nan")
    packed, state = BF.quantize_4bit(weight, blocksize=64, quant_type="nf4")
    assert torch.isnan(bnb_default_dequantize(packed, state)).all()
    with pytest.raises(ValueError, match=r"weight must be finite, got nan at index \(1,\)"):
        quantize_nf4(weight)
    weight[1] = float("inf")
    with pytest.raises(ValueError, match=r"weight must be finite, got inf"):
        quantize_nf4(weight)


def test_bad_input_raises():
    with pytest.raises(ValueError, match=r"weight must hold at least one value"):
        quantize_nf4(torch.randn(0, 10))
    with pytest.raises(ValueError, match="weight must be a floating-point tensor"):
        quantize_nf4(torch.ones(64, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"blocksize \(0\) must be a positive integer"):
        quantize_nf4(torch.randn(64), 0)
    codes, absmax = quantize_nf4(torch.randn(128))
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 15\], got values from 0 to 16"):
        dequantize_nf4(torch.tensor([16] + [0] * 63), absmax[:1])
    with pytest.raises(ValueError, match="codes must be an integer tensor"):
        dequantize_nf4(codes.float(), absmax)
    with pytest.raises(ValueError, match=r"absmax must have shape \(2,\)"):
        dequantize_nf4(codes, absmax[:1])
    with pytest.raises(ValueError, match=r"absmax must have shape \(3,\)"):
        dequantize_nf4(codes, absmax, 48)  # 128 codes in blocks of 48: three scales
    with pytest.raises(
        ValueError, match=r"absmax must hold finite values >= 0.* got -1.0 for block 1"
    ):
        dequantize_nf4(codes, torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"absmax must hold finite values >= 0.* got nan"):
        dequantize_nf4(codes, torch.tensor([float("nan"), 1.0]))
    with pytest.raises(
        ValueError, match=r"codes must lie in \[0, 15\] \(4 bits\), got values from 0 to 16"
    ):
        pack_nf4(torch.tensor([16, 0]))
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 15\]"):
        pack_nf4(torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match="codes must be an integer tensor of NF4 codes"):
        pack_nf4(torch.tensor([1.5, 0.0]))
    with pytest.raises(ValueError, match=r"weight must have shape \(out_features, in_features\)"):
        LinearNF4(torch.randn(64))
    with pytest.raises(ValueError, match=r"fmt \('fp8'\) must be one of"):
        linear_weight_bytes(64, 64, "fp8")
