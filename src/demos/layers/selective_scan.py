"""The selective scan of Mamba: a linear recurrence per channel whose step size and input/output maps
depend on the token, computed as a plain loop and chunk-parallel.

A selective state space model [gu2023mamba] runs ``x_t = exp(delta_t A) x_{t-1} + delta_t B_t u_t``,
``y_t = C_t . x_t`` per channel; ``delta``, ``B`` and ``C`` come from the current token, so the model
can choose what to keep.

Axes (paper's notation in brackets):
    b  batch                                    [B]
    l  sequence length                          [L]
    e  channels, expand * hidden size           [D in Algorithm 2, "ED" in Section 3.4]
    n  state size per channel                   [N]

References:
    gu2023mamba        Mamba, Algorithm 2 (selective SSM), Eq. (4) (zero-order hold), Section 3.3
                       (hardware-aware scan).
    gu2023mamba_code   state-spaces/mamba, mamba_ssm/ops/selective_scan_interface.py::
                       selective_scan_ref (the semantics ``selective_scan`` reproduces).

Reference implementation:
    transformers==5.23.0, models/mamba/modeling_mamba.py::MambaMixer.slow_forward
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import einsum, rearrange

from demos.validation import check_floating, check_positive_int, check_same_device


def _compute_dtype(*tensors: torch.Tensor | None) -> torch.dtype:
    """At least fp32 (as the reference, for bf16/fp16 inputs), fp64 when any input is fp64."""
    dtype = torch.float32
    for t in tensors:
        if t is not None:
            dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def _prepare_delta(u, delta, A, B, C, D, z, delta_bias, delta_softplus, steps=True):
    """Check every shape, dtype and the sign of A; return the step sizes ``softplus(delta + delta_bias)``, (b, e, l),
    in the compute dtype (:func:`_compute_dtype`); with ``steps=False`` only that dtype."""
    optional = {"D": D, "z": z, "delta_bias": delta_bias}
    given = {"u": u, "delta": delta, "A": A, "B": B, "C": C}
    given |= {k: t for k, t in optional.items() if t is not None}
    check_floating(**given)
    check_same_device(**given)
    if u.dim() != 3:
        raise ValueError(f"u must have shape (b, e, l), got {tuple(u.shape)}")
    b, e, seqlen = u.shape
    if seqlen == 0:
        raise ValueError(f"u must hold at least one token (l >= 1), got shape {tuple(u.shape)}")
    if delta.shape != u.shape:
        raise ValueError(
            f"delta {tuple(delta.shape)} must have the shape of u (b, e, l) = {(b, e, seqlen)}"
        )
    if A.dim() != 2 or A.shape[0] != e:
        raise ValueError(f"A must have shape (e, n) with e = {e} (from u), got {tuple(A.shape)}")
    want = (b, A.shape[1], seqlen)
    for name, M in (("B", B), ("C", C)):
        if tuple(M.shape) != want:
            raise ValueError(
                f"{name} must have shape (b, n, l) = {want} (from u and A), got {tuple(M.shape)}"
            )
    for name, t, want in (
        ("D", D, (e,)),
        ("delta_bias", delta_bias, (e,)),
        ("z", z, (b, e, seqlen)),
    ):
        if t is not None and tuple(t.shape) != want:
            raise ValueError(f"{name} must have shape {want}, got {tuple(t.shape)}")
    if not (A <= 0).all():  # NaN fails too
        bad = A[~(A <= 0)].flatten()[0].item()
        raise ValueError(
            f"A must be <= 0 everywhere (Mamba's A = -exp(A_log) < 0), got {bad}: "
            "a positive A makes exp(delta A) grow without bound"
        )
    dtype = _compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    if not steps:
        return dtype
    return _step_sizes(delta, delta_bias, delta_softplus, dtype)


def _step_sizes(delta, delta_bias, delta_softplus, dtype) -> torch.Tensor:
    """``softplus(delta + delta_bias)`` in ``dtype``, for checked inputs (any stretch of l)."""
    delta = delta.to(dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]  # (b, e, l)
    if delta_softplus:
        delta = F.softplus(delta)  # Delta = softplus(parameter + s_Delta(x)): Algorithm 2, line 3
    return delta


def _finish(y, u, D, z, last_state, return_last_state):
    """``y + D u``, the gate ``* silu(z)``, cast back to u's dtype (Algorithm 2's output, Figure 3's gate)."""
    if D is not None:
        y = y + u.to(y.dtype) * D.to(y.dtype)[:, None]  # (b, e, l): skip connection
    if z is not None:
        y = y * F.silu(z.to(y.dtype))  # (b, e, l): the gate branch of the block
    y = y.to(u.dtype)
    return (y, last_state) if return_last_state else y


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The selective SSM as a plain loop over time: ``x_t = exp(delta_t A) x_{t-1} + delta_t B_t u_t``,
    ``y_t = C_t . x_t``. Same semantics as the reference's ``selective_scan_ref`` (real A, B and C
    shared across channels).

    Args:
        u: ``(b, e, l)`` input.  delta: ``(b, e, l)`` step sizes before bias and softplus.
        A: ``(e, n)`` state matrix (diagonal per channel; negative in Mamba).
        B, C: ``(b, n, l)`` input-dependent input and output maps.
        D: ``(e,)`` skip weight.  z: ``(b, e, l)`` gate.  delta_bias: ``(e,)`` added to delta.
        delta_softplus: apply softplus to delta (after the bias).
        return_last_state: also return the final state ``x_l``.

    Returns:
        ``y`` of shape ``(b, e, l)`` in u's dtype; with ``return_last_state``, ``(y, x)`` where
        ``x`` is the state ``(b, e, n)`` after the last token, in the compute dtype.

    Computed in fp32 for bf16/fp16/fp32 inputs (as the reference), in fp64 when an input is fp64.

    Raises:
        ValueError: a shape that does not fit, an integer tensor, ``A > 0`` (or NaN) anywhere.
    """
    delta = _prepare_delta(u, delta, A, B, C, D, z, delta_bias, delta_softplus)  # (b, e, l)
    # Eq. (4), zero-order hold for A: A_bar = exp(Delta A), elementwise since A is diagonal.
    dtype = delta.dtype  # at least fp32, fp64 stays fp64
    deltaA = torch.exp(einsum(delta, A.to(dtype), "b e l, e n -> b e l n"))
    # For B the reference takes Euler's B_bar = Delta B, not ZOH's (Delta A)^-1 (exp(Delta A) - I) Delta B.
    deltaB_u = einsum(delta * u.to(dtype), B.to(dtype), "b e l, b n l -> b e l n")
    b, e, seqlen, n = deltaA.shape
    C = C.to(dtype)
    x = deltaA.new_zeros(b, e, n)  # the state starts at zero
    ys = []
    for t in range(seqlen):
        x = deltaA[:, :, t] * x + deltaB_u[:, :, t]  # (b, e, n): Eq. (2a) with A_bar, B_bar
        ys.append(einsum(x, C[:, :, t], "b e n, b n -> b e"))  # (b, e): Eq. (2b)
    y = torch.stack(ys, dim=2)  # (b, e, l)
    return _finish(y, u, D, z, x, return_last_state)


# Tokens per chunk of selective_scan_parallel, chosen by `scripts/bench_mamba.py --sweep` on the
# book's 2-core Xeon at l = 4096, b = 1, n = 16, best of 5 (ms for chunks of 16 / 32 / 64 / 128 / 256):
#   two threads  e = 64:   66 / 47 / 31 / 26 / 38     e = 128: 87 / 62 / 46 / 63 / 90
#                e = 1536: 409 / 312 / 278 / 780 / 717
#   one thread   e = 64:   -- / 48 / 34 / 55 / 31     e = 128: -- / 68 / 49 / 89 / 77
# 64 is the fastest or close to it everywhere. Shorter chunks make more Python-level steps (about
# 2 sqrt(L) per L tokens); longer ones make (L, b, e, n) temporaries that leave the 4 MiB L2 cache;
# and an L that is not a square pads its last piece (128 = 11 pieces of 12, 4 of them padding).
DEFAULT_CHUNK_SIZE = 64


def _scan_chunk(dt, du, A, B, C, x0):
    """One chunk, L tokens, from the entering state ``x0`` (b, e, n): all of its states at once.

    ``dt``, ``du`` = delta * u: (b, e, L); B, C: (b, n, L). Returns ``y`` (b, e, L) and the state
    after the chunk's last token. The chunk is cut into k pieces of T ~ sqrt(L) tokens:
    (1) T steps, all pieces at once, each piece started from zero;
    (2) k steps over the pieces, carrying the true state from each piece to the next;
    (3) one vectorised line adding each piece's entering state, decayed by
    ``exp(A * cumsum(delta))`` since the piece began (a sum of A * delta <= 0: at most 1, no overflow).
    """
    L = dt.shape[2]
    T = math.ceil(math.sqrt(L))
    pad = -L % T  # delta = 0 on padding: A_bar = 1 and B_bar u = 0, so nothing changes

    def pieces(t: torch.Tensor, pattern: str) -> torch.Tensor:  # (..., L) -> t-first, in pieces
        # Contiguous, so that the (t, b, k, e, n) products below are laid out step by step too:
        # torch gives an elementwise result the strides of its inputs.
        return rearrange(F.pad(t, (0, pad)), pattern, t=T).contiguous()

    dtp = pieces(dt, "b e (k t) -> t b k e 1")
    # The discretisation of selective_scan, laid out (t, b, k, e, n) so that step t is contiguous.
    deltaA = torch.exp(dtp * A)  # (t, b, k, e, n)
    deltaB_u = pieces(du, "b e (k t) -> t b k e 1") * pieces(B, "b n (k t) -> t b k 1 n")
    x, xs = torch.zeros_like(deltaB_u[0]), []  # (b, k, e, n)
    for t in range(T):  # (1) every piece at once, each started from x = 0
        x = torch.addcmul(deltaB_u[t], deltaA[t], x)  # (b, k, e, n): deltaA x + deltaB_u, one op
        xs.append(x)
    # Product of A_bar from the piece's start to t: exp(A * sum of delta), as A is the same at every t.
    decay = torch.exp(dtp.cumsum(dim=0) * A)  # (t, b, k, e, n)
    entering, starts = x0, []  # (b, e, n)
    for piece in range(x.shape[1]):  # (2) carry the state from piece to piece
        starts.append(entering)
        entering = torch.addcmul(x[:, piece], decay[-1, :, piece], entering)  # (b, e, n)
    x = torch.addcmul(torch.stack(xs), decay, torch.stack(starts, dim=1))  # (t, b, k, e, n): (3)
    y = x @ pieces(C, "b n (k t) -> t b k n 1")  # (t, b, k, e, 1): Eq. (2b), all t at once
    return rearrange(y, "t b k e 1 -> b e (k t)")[:, :, :L], entering


def selective_scan_parallel(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    chunk_size: int | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """:func:`selective_scan` streamed chunk by chunk, parallel inside a chunk.

    The sequence is read in chunks of ``chunk_size`` tokens (default ``DEFAULT_CHUNK_SIZE`` =
    64, measured); the state ``(b, e, n)`` is carried from one chunk to the next, so only
    one chunk's ``(tokens, b, e, n)`` temporaries are alive at a time: beyond the ``(b, e, l)``
    output, the memory does not grow with l. Inside a chunk of L tokens, :func:`_scan_chunk`
    takes about 2 sqrt(L) vectorised steps instead of L: about l / L * 2 sqrt(L) in all.

    Same arguments, result, dtypes and errors as :func:`selective_scan`, up to the order of fp32
    roundings; ``chunk_size`` that is not a positive integer raises ``ValueError``.
    """
    dtype = _prepare_delta(u, delta, A, B, C, D, z, delta_bias, delta_softplus, steps=False)
    b, e, seqlen = u.shape
    n = A.shape[1]
    if chunk_size is None:
        chunk_size = DEFAULT_CHUNK_SIZE
    check_positive_int("chunk_size", chunk_size)
    # At least fp32, fp64 stays fp64. Every (b, e, l)-sized step is taken one chunk at a time too,
    # written into the output: the only (b, e, l) tensor this function allocates.
    A, B, C = A.to(dtype), B.to(dtype), C.to(dtype)
    y = u.new_empty(b, e, seqlen)
    x = torch.zeros(b, e, n, dtype=dtype, device=u.device)  # the state starts at zero
    for start in range(0, seqlen, chunk_size):
        part = slice(start, start + chunk_size)
        dt = _step_sizes(delta[:, :, part], delta_bias, delta_softplus, dtype)  # (b, e, L)
        du = dt * u[:, :, part].to(dtype)  # (b, e, L): Euler's B_bar u = delta B u, before B
        y_part, x = _scan_chunk(dt, du, A, B[:, :, part], C[:, :, part], x)
        zpart = None if z is None else z[:, :, part]
        y[:, :, part] = _finish(y_part, u[:, :, part], D, zpart, None, False)
    return (y, x) if return_last_state else y
