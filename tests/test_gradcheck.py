"""float64 ``torch.autograd.gradcheck`` for every differentiable public function of ``demos``.

gradcheck compares the analytic gradient with finite differences (eps 1e-6, atol 1e-5, rtol 1e-3; the
larger functions in ``fast_mode``, which checks a random projection of the Jacobian); in
float32 the differences would drown in rounding, so it needs float64 end to end. A function that casts
to float32 inside fails it (its gradient is a float32 gradient), so this file also holds every function
to the rule "float64 stays float64".
"""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from demos.layers.attention import (
    AttentionConfig,
    GroupedQueryAttention,
    attention,
    attention_weights,
)
from demos.layers.banded_attention import banded_attention
from demos.layers.mlp import GatedMLP
from demos.layers.norms import RMSNorm
from demos.layers.rope import apply_rope, rope_cos_sin
from demos.layers.selective_scan import selective_scan, selective_scan_parallel
from demos.layers.tiled_attention import online_softmax_update, tiled_attention
from demos.training.preference import LOSS_TYPES, dpo_loss, log1mexp, orpo_loss, sequence_logps

F64 = torch.float64


def leaf(*shape: int, scale: float = 1.0) -> torch.Tensor:
    return (torch.randn(*shape, dtype=F64) * scale).requires_grad_()


def logps(b: int) -> torch.Tensor:
    return (-torch.rand(b, dtype=F64) * 3 - 0.05).requires_grad_()  # in (-3.05, -0.05)


def test_apply_rope():
    cos, sin = rope_cos_sin(torch.arange(5), 8, dtype=F64)
    assert gradcheck(lambda x: apply_rope(x, cos, sin), (leaf(2, 3, 5, 8),))


@pytest.mark.parametrize("g, window", [(4, None), (2, 2), (1, None)])
def test_attention_and_weights(g, window):
    q, k, v = leaf(1, 4, 3, 4), leaf(1, g, 5, 4), leaf(1, g, 5, 4)
    assert gradcheck(lambda q, k, v: attention(q, k, v, window=window), (q, k, v), fast_mode=True)
    assert gradcheck(lambda q, k: attention_weights(q, k, window=window), (q, k), fast_mode=True)
    assert attention(q, k, v, window=window).dtype == F64


@pytest.mark.parametrize("block", [None, 2])
def test_banded_attention(block):
    q, k, v = leaf(1, 4, 5, 2), leaf(1, 2, 7, 2), leaf(1, 2, 7, 2)
    f = lambda q, k, v: banded_attention(q, k, v, window=3, block=block)  # noqa: E731
    assert gradcheck(f, (q, k, v), fast_mode=True)


@pytest.mark.parametrize("causal, block_size", [(True, 2), (False, 3), (True, 64)])
def test_tiled_attention(causal, block_size):
    q, k, v = leaf(1, 4, 3, 4), leaf(1, 2, 5, 4), leaf(1, 2, 5, 4)  # t < s: a cached prefix
    f = lambda q, k, v: tiled_attention(q, k, v, causal=causal, block_size=block_size)  # noqa: E731
    assert gradcheck(f, (q, k, v), fast_mode=True)
    assert f(q, k, v).dtype == F64


def test_online_softmax_update():
    m, ell, acc = leaf(2, 1), leaf(2, 1).abs().detach().requires_grad_(), leaf(2, 3)
    assert gradcheck(online_softmax_update, (m, ell, acc, leaf(2, 4), leaf(4, 3)), fast_mode=True)


@pytest.mark.parametrize("scan", [selective_scan, selective_scan_parallel])
def test_selective_scans(scan):
    b, e, n, length = 1, 3, 2, 6
    args = (
        leaf(b, e, length),  # u
        leaf(b, e, length, scale=0.5),  # delta (softplus makes it a step size)
        (-torch.exp(0.5 * torch.randn(e, n, dtype=F64))).requires_grad_(),  # A < 0
        leaf(b, n, length),  # B
        leaf(b, n, length),  # C
        leaf(e),  # D
        leaf(b, e, length),  # z
        leaf(e, scale=0.3),  # delta_bias
    )

    def f(*a):
        y, x = scan(*a, delta_softplus=True, return_last_state=True)
        return y, x

    assert gradcheck(f, args, fast_mode=True)


def test_rmsnorm_and_gated_mlp_and_attention_module():
    norm = RMSNorm(6).double()
    with torch.no_grad():
        norm.weight.normal_()
    assert gradcheck(norm, (leaf(2, 3, 6),))
    assert gradcheck(
        lambda x, w: torch.func.functional_call(norm, {"weight": w}, (x,)), (leaf(2, 3, 6), leaf(6))
    )
    mlp = GatedMLP(6, 10).double()
    assert gradcheck(mlp, (leaf(2, 3, 6),))
    layer = GroupedQueryAttention(AttentionConfig(8, 4, 2)).double()
    cos, sin = rope_cos_sin(torch.arange(5), 2, dtype=F64)
    assert gradcheck(lambda x: layer(x, (cos, sin)), (leaf(1, 5, 8),), fast_mode=True)


@pytest.mark.parametrize("average", [False, True])
def test_sequence_logps(average):
    labels = torch.randint(0, 7, (3, 5))
    labels[0, :2] = -100
    labels[2, 4] = -100
    assert gradcheck(lambda x: sequence_logps(x, labels, average=average), (leaf(3, 5, 7),))


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_dpo_loss(loss_type):
    def f(*a):
        return dpo_loss(*a, beta=0.3, loss_type=loss_type)[0]

    assert gradcheck(f, tuple(logps(4) for _ in range(4)))


def test_dpo_loss_with_label_smoothing():
    def f(*a):
        return dpo_loss(*a, beta=0.3, label_smoothing=0.2)[0]

    assert gradcheck(f, tuple(logps(4) for _ in range(4)))


def test_orpo_loss_and_log1mexp():
    assert gradcheck(lambda lw, ll: orpo_loss(lw, ll, beta=0.2), (logps(5), logps(5)))
    x = torch.tensor([-1e-4, -0.3, -0.69, -0.7, -2.0, -30.0], dtype=F64, requires_grad=True)
    assert gradcheck(log1mexp, (x,))
