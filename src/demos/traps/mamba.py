"""The Mamba chapter's trap: the paper's zero-order hold for B-bar where the code uses Euler's step.

Eq. (4) of [gu2023mamba] discretises both A and B by the zero-order hold; the released code (and
transformers) keeps ``A_bar = exp(delta A)`` but takes Euler's ``B_bar = delta B``. A port that
follows the equation to the letter runs, and differs. Measured on the output of the selective scan
(``b = 2``, ``e = 8`` channels, ``n = 4`` states, ``l = 16`` tokens, fp32, softplus on delta, D and
the gate z): right is :func:`demos.layers.selective_scan.selective_scan`, the reference is
transformers' ``mamba_selective_scan``.

References:
    gu2023mamba  Mamba, Eq. (4) (zero-order hold for A and B).

Reference implementation: transformers==5.23.0, models/mamba/modeling_mamba.py::mamba_selective_scan.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import einsum

from demos.traps import Measured, Trap
from demos.traps.tiny import seeded

QUANTITY = "output y of the selective scan, (b, e, l) = (2, 8, 16), n = 4, fp32"
TOLERANCE = 1e-5  # the same fp32 operations in another order: ~1e-7


def scan_zoh_b(u, delta, A, B, C, D, z, delta_bias) -> torch.Tensor:
    """The wrong scan: ``B_bar = (delta A)^-1 (exp(delta A) - 1) delta B``, as Eq. (4) writes it."""
    delta = F.softplus(delta + delta_bias[:, None])  # (b, e, l)
    deltaA = torch.exp(einsum(delta, A, "b e l, e n -> b e l n"))  # ZOH for A, as the reference
    B_bar = einsum(
        (deltaA - 1) / A[:, None], B, "b e l n, b n l -> b e l n"
    )  # ZOH for B: the mistake
    deltaB_u = B_bar * u[..., None]  # (b, e, l, n)
    x = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])  # (b, e, n)
    ys = []
    for t in range(u.shape[2]):
        x = deltaA[:, :, t] * x + deltaB_u[:, :, t]  # (b, e, n)
        ys.append(einsum(x, C[:, :, t], "b e n, b n -> b e"))
    y = torch.stack(ys, dim=2) + D[:, None] * u  # (b, e, l)
    return y * F.silu(z)


def measure() -> Measured:
    from transformers.models.mamba.modeling_mamba import mamba_selective_scan

    from demos.layers.selective_scan import selective_scan

    with seeded(0):
        b, e, n, length = 2, 8, 4, 16
        u, delta, z = (torch.randn(b, e, length) for _ in range(3))
        A = -torch.arange(1.0, n + 1).repeat(e, 1)  # (e, n): Mamba's initialisation, -1 ... -n
        B, C = torch.randn(b, n, length), torch.randn(b, n, length)
        D, delta_bias = torch.randn(e), torch.randn(e) - 2.0  # softplus(-2 + noise): delta ~ 0.1
        args = (u, delta, A, B, C, D, z, delta_bias)
        expected = mamba_selective_scan(*args, delta_softplus=True)
        right = selective_scan(*args, delta_softplus=True)
        wrong = scan_zoh_b(*args)
    return Measured.of(right, wrong, expected, TOLERANCE, QUANTITY)


TRAPS = [
    Trap(
        chapter="mamba",
        title="Zero-order hold for B-bar instead of Euler",
        # the wrong line names Eq. (4) and does not write it out: its closed form for a diagonal A
        # is the answer to the chapter's zero-order-hold exercise (tests/traps/test_no_answers.py)
        wrong="B_bar = zero_order_hold(delta, A, B)  # Eq. (4), followed to the letter",
        right="B_bar = delta * B  # Euler's rule, as the released code",
        shows="every output; the two agree to first order in delta * A, so the gap grows with "
        "the step size delta",
        measure=measure,
    ),
]
