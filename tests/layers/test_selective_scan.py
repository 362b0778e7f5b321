"""The selective scans' boundary: dtypes, the sign of A, and float64 kept float64.

(Parity with transformers and the paper's equations lives in tests/models/test_mamba.py.)
"""

from __future__ import annotations

import math

import pytest
import torch

from demos.layers.selective_scan import (
    selective_scan,
    selective_scan_parallel,
)

SCANS = [selective_scan, selective_scan_parallel]


def inputs(dtype=torch.float32, b=1, e=3, n=2, length=5):
    return dict(
        u=torch.randn(b, e, length, dtype=dtype),
        delta=torch.randn(b, e, length, dtype=dtype),
        A=-torch.exp(torch.randn(e, n, dtype=dtype)),
        B=torch.randn(b, n, length, dtype=dtype),
        C=torch.randn(b, n, length, dtype=dtype),
    )


def with_(**changes):
    return {**inputs(), **changes}


BAD = [
    ("integer u", with_(u=torch.ones(1, 3, 5, dtype=torch.long)), "floating"),
    ("integer delta", with_(delta=torch.ones(1, 3, 5, dtype=torch.int32)), "floating"),
    ("integer B", with_(B=torch.ones(1, 2, 5, dtype=torch.long)), "floating"),
    ("boolean C", with_(C=torch.ones(1, 2, 5, dtype=torch.bool)), "floating"),
    ("integer D", with_(D=torch.ones(3, dtype=torch.long)), "floating"),
    ("A > 0", with_(A=torch.full((3, 2), 0.5)), "A must be <= 0"),
    ("one A > 0", with_(A=torch.tensor([[-1.0, -2.0], [-1.0, 1e-3], [-0.5, -0.5]])), "<= 0"),
    ("A NaN", with_(A=torch.full((3, 2), math.nan)), "<= 0"),
    ("A of another width", with_(A=-torch.ones(4, 2)), "A must have shape"),
    ("B of another length", with_(B=torch.randn(1, 2, 4)), "B must have shape"),
]


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("case, x, match", BAD, ids=[c[0] for c in BAD])
def test_bad_scan_inputs_raise_value_error(scan, case, x, match):
    with pytest.raises(ValueError, match=match):
        scan(**x, delta_softplus=True)


@pytest.mark.parametrize("scan", SCANS)
def test_a_positive_a_no_longer_overflows_silently(scan):
    """Before: A = +5 over 200 steps gave inf/NaN in float32 without a word."""
    x = inputs(length=200)
    x["A"] = x["A"].abs() * 5
    with pytest.raises(ValueError, match="A must be <= 0"):
        scan(**x, delta_softplus=True)


@pytest.mark.parametrize("scan", SCANS)
def test_float64_stays_float64_and_bf16_computes_in_float32(scan):
    x64 = inputs(torch.float64)
    y, state = scan(**x64, delta_softplus=True, return_last_state=True)
    assert y.dtype == torch.float64 and state.dtype == torch.float64
    # the same inputs rounded to fp32 give a result ~1e-7 away: fp64 did not pass through fp32
    x32 = {k: v.float() for k, v in x64.items()}
    y32 = scan(**{k: v.double() for k, v in x32.items()}, delta_softplus=True)
    y32_inside = scan(**x32, delta_softplus=True)
    assert (y32 - y32_inside.double()).abs().max() > 0  # fp32 arithmetic differs from fp64's
    xb = {
        k: v.to(torch.bfloat16) if k in ("u", "delta", "B", "C") else v.float()
        for k, v in x64.items()
    }
    yb, sb = scan(**xb, delta_softplus=True, return_last_state=True)
    assert yb.dtype == torch.bfloat16 and sb.dtype == torch.float32


@pytest.mark.parametrize("scan", [selective_scan, selective_scan_parallel])
def test_empty_sequence_raises(scan):
    b, e, n = 1, 2, 3
    with pytest.raises(ValueError, match=r"at least one token \(l >= 1\)"):
        scan(
            torch.randn(b, e, 0),
            torch.randn(b, e, 0),
            -torch.rand(e, n),
            torch.randn(b, n, 0),
            torch.randn(b, n, 0),
        )


@pytest.mark.parametrize(
    "length, chunk_size",
    [(7, 3), (50, 16), (50, 64), (1, 16), (33, 1), (100, 7)],
    ids=["7-by-3", "50-by-16", "l<chunk", "one-token", "chunk-1", "100-by-7"],
)
def test_chunked_scan_equals_the_loop_values_state_and_gradients(length, chunk_size):
    """Chunks that do not divide l, and l shorter than one chunk: the streamed form carries the
    state across chunk borders exactly. In float64, so the two orders of summation agree to 1e-12."""
    torch.manual_seed(length * 31 + chunk_size)
    x = inputs(torch.float64, b=2, e=3, n=4, length=length)
    x |= dict(
        D=torch.randn(3, dtype=torch.float64),
        z=torch.randn(2, 3, length, dtype=torch.float64),
        delta_bias=torch.randn(3, dtype=torch.float64),
    )
    x = {k: v.requires_grad_() for k, v in x.items()}
    seq, seq_state = selective_scan(**x, delta_softplus=True, return_last_state=True)
    par, par_state = selective_scan_parallel(
        **x, delta_softplus=True, return_last_state=True, chunk_size=chunk_size
    )
    assert par.dtype == par_state.dtype == torch.float64
    torch.testing.assert_close(par, seq, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(par_state, seq_state, atol=1e-12, rtol=1e-12)
    weights = torch.randn_like(seq), torch.randn_like(seq_state)
    loss = lambda y, s: (y * weights[0]).sum() + (s * weights[1]).sum()  # noqa: E731
    grads_seq = torch.autograd.grad(loss(seq, seq_state), list(x.values()))
    grads_par = torch.autograd.grad(loss(par, par_state), list(x.values()))
    for name, g_par, g_seq in zip(x, grads_par, grads_seq, strict=True):
        if not (name == "A" and length == 1):  # from x_0 = 0 one step never multiplies by A_bar
            assert g_seq.abs().max() > 0, name  # a gradient that is all zero proves nothing
        torch.testing.assert_close(g_par, g_seq, atol=1e-12, rtol=1e-12, msg=name)
