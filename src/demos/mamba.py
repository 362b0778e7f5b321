"""Mamba: the selective scan (sequential and parallel), the Mamba block, a tiny Mamba LM.

A selective state space model [gu2023mamba] runs a linear recurrence per channel whose step size
``delta`` and input/output maps ``B``, ``C`` depend on the current token, so it can choose what to
keep. Module and parameter names follow transformers, so weights copy from ``MambaForCausalLM``.

Axes (paper's notation in brackets):
    b  batch                                    [B]
    l  sequence length                          [L]
    e  channels inside the block, expand * c    [D in Algorithm 2, "ED" in Section 3.4]
    n  state size per channel                   [N]
    c  hidden size of the residual stream       [D in Section 3.4]
    k  width of the causal depthwise convolution
    r  rank of the delta projection (time_step_rank)

References:
    gu2023mamba        Mamba, Algorithm 2 (selective SSM), Eq. (4) (zero-order hold), Section 3.3
                       (hardware-aware scan), Figure 3 (block).
    gu2023mamba_code   state-spaces/mamba, mamba_ssm/ops/selective_scan_interface.py::
                       selective_scan_ref (the semantics ``selective_scan`` reproduces).

Reference implementation:
    transformers==5.23.0, models/mamba/modeling_mamba.py::mamba_selective_scan, ::MambaMixer,
    ::MambaBlock, ::MambaModel, ::MambaForCausalLM
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import einsum, rearrange
from torch import nn

from demos.attention import _check_positive_int, load_hf_weights
from demos.decoder import RMSNorm, check_token_ids

# ---- the selective scan ----------------------------------------------------------------------------


def _prepare_delta(u, delta, A, B, C, D, z, delta_bias, delta_softplus) -> torch.Tensor:
    """Check every shape; return the fp32 step sizes ``softplus(delta + delta_bias)``, (b, e, l)."""
    if u.dim() != 3:
        raise ValueError(f"u must have shape (b, e, l), got {tuple(u.shape)}")
    b, e, seqlen = u.shape
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
    delta = delta.float()
    if delta_bias is not None:
        delta = delta + delta_bias.float()[:, None]  # (b, e, l)
    if delta_softplus:
        delta = F.softplus(delta)  # Delta = softplus(parameter + s_Delta(x)): Algorithm 2, line 3
    return delta


def _finish(y, u, D, z, last_state, return_last_state):
    """``y + D u``, the gate ``* silu(z)``, cast back to u's dtype (Algorithm 2's output, Figure 3's gate)."""
    if D is not None:
        y = y + u.float() * D.float()[:, None]  # (b, e, l): skip connection
    if z is not None:
        y = y * F.silu(z.float())  # (b, e, l): the gate branch of the block
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
        ``x`` is the fp32 state ``(b, e, n)`` after the last token.
    """
    delta = _prepare_delta(u, delta, A, B, C, D, z, delta_bias, delta_softplus)  # (b, e, l)
    # Eq. (4), zero-order hold for A: A_bar = exp(Delta A), elementwise since A is diagonal.
    deltaA = torch.exp(einsum(delta, A.float(), "b e l, e n -> b e l n"))
    # For B the reference takes Euler's B_bar = Delta B, not ZOH's (Delta A)^-1 (exp(Delta A) - I) Delta B.
    deltaB_u = einsum(delta * u.float(), B.float(), "b e l, b n l -> b e l n")
    b, e, seqlen, n = deltaA.shape
    C = C.float()
    x = deltaA.new_zeros(b, e, n)  # the state starts at zero
    ys = []
    for t in range(seqlen):
        x = deltaA[:, :, t] * x + deltaB_u[:, :, t]  # (b, e, n): Eq. (2a) with A_bar, B_bar
        ys.append(einsum(x, C[:, :, t], "b e n, b n -> b e"))  # (b, e): Eq. (2b)
    y = torch.stack(ys, dim=2)  # (b, e, l)
    return _finish(y, u, D, z, x, return_last_state)


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
    """:func:`selective_scan` computed chunk-parallel: about 2 sqrt(l) vectorised steps instead of l.

    The sequence is cut into c chunks of T tokens (T = ``chunk_size``, default ceil(sqrt(l))).
    (1) All chunks at once, T steps: each token's state as if its chunk started from zero.
    (2) c steps over the chunks: the true state entering each chunk, from the one before.
    (3) One vectorised line: add the entering state, decayed by the product of ``deltaA`` since
    the chunk began, ``exp(A * cumsum(delta))`` (at most 1: nothing overflows).
    Same arguments and result as :func:`selective_scan`, up to the order of fp32 roundings.
    """
    delta = _prepare_delta(u, delta, A, B, C, D, z, delta_bias, delta_softplus)  # (b, e, l)
    seqlen = u.shape[2]
    if chunk_size is None:
        chunk_size = math.ceil(math.sqrt(seqlen))
    _check_positive_int("chunk_size", chunk_size)
    T = min(chunk_size, seqlen)
    # Pad to a multiple of T with delta = 0: there A_bar = 1 and B_bar u = 0, so nothing changes.
    pad = -seqlen % T

    def chunked(t: torch.Tensor, pattern: str) -> torch.Tensor:  # (..., l) -> t-first, chunked
        return rearrange(F.pad(t.float(), (0, pad)), pattern, t=T)

    dt = chunked(delta, "b e (c t) -> t b c e 1")
    # The discretisation of selective_scan, laid out (t, b, c, e, n) so that step t is contiguous.
    deltaA = torch.exp(dt * A.float())  # (t, b, c, e, n)
    deltaB_u = chunked(delta * u.float(), "b e (c t) -> t b c e 1") * chunked(
        B, "b n (c t) -> t b c 1 n"
    )  # (t, b, c, e, n)
    x, xs = torch.zeros_like(deltaB_u[0]), []  # (b, c, e, n)
    for t in range(T):  # (1) every chunk at once, each started from x = 0
        x = torch.addcmul(deltaB_u[t], deltaA[t], x)  # (b, c, e, n): deltaA x + deltaB_u, one op
        xs.append(x)
    # Product of A_bar from the chunk's start to t: exp(A * sum of delta), as A is the same at every t.
    decay = torch.exp(dt.cumsum(dim=0) * A.float())  # (t, b, c, e, n)
    entering, starts = torch.zeros_like(x[:, 0]), []  # (b, e, n)
    for chunk in range(x.shape[1]):  # (2) carry the state from chunk to chunk
        starts.append(entering)
        entering = torch.addcmul(x[:, chunk], decay[-1, :, chunk], entering)  # (b, e, n)
    x = torch.addcmul(torch.stack(xs), decay, torch.stack(starts, dim=1))  # (t, b, c, e, n): (3)
    y = x @ chunked(C, "b n (c t) -> t b c n 1")  # (t, b, c, e, 1): Eq. (2b), all t at once
    y = rearrange(y, "t b c e 1 -> b e (c t)")[:, :, :seqlen]  # (b, e, l)
    return _finish(y, u, D, z, x[-1, :, -1], return_last_state)


# ---- the Mamba block and a tiny language model ----------------------------------------------------


@dataclass(frozen=True)
class MambaConfig:
    """Shape of a Mamba LM, with transformers' ``MambaConfig`` field names."""

    vocab_size: int  # v
    hidden_size: int  # c
    num_hidden_layers: int  # number of Mamba blocks
    state_size: int = 16  # n, the SSM state per channel
    expand: int = 2  # e = expand * c
    conv_kernel: int = 4  # k, width of the causal depthwise convolution
    time_step_rank: int | None = None  # r; None means ceil(c / 16), transformers' "auto"
    layer_norm_epsilon: float = 1e-5  # epsilon inside RMSNorm
    use_bias: bool = False  # biases on in_proj and out_proj
    use_conv_bias: bool = True  # bias on the convolution
    residual_in_fp32: bool = True  # keep the residual stream in fp32 between blocks
    tie_word_embeddings: bool = True  # lm_head shares the embedding matrix

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "state_size", "expand"):
            _check_positive_int(name, getattr(self, name))
        _check_positive_int("conv_kernel", self.conv_kernel)
        if self.time_step_rank is None:
            object.__setattr__(self, "time_step_rank", math.ceil(self.hidden_size / 16))
        _check_positive_int("time_step_rank", self.time_step_rank)
        if not self.layer_norm_epsilon > 0:
            raise ValueError(f"layer_norm_epsilon ({self.layer_norm_epsilon!r}) must be positive")

    @property
    def intermediate_size(self) -> int:  # e
        return self.expand * self.hidden_size

    @classmethod
    def from_hf(cls, hf_config: Any) -> MambaConfig:
        """Read a transformers ``MambaConfig``."""
        if getattr(hf_config, "hidden_act", "silu") != "silu":
            raise ValueError(f"hidden_act ({hf_config.hidden_act!r}) must be 'silu' as in Mamba")
        fields = cls.__dataclass_fields__
        return cls(
            **{name: getattr(hf_config, name) for name in fields if hasattr(hf_config, name)}
        )


@dataclass
class MambaState:
    """What one block remembers between tokens: O(1) in the sequence length.

    ``conv``: the last k - 1 inputs of the convolution, (b, e, k - 1).
    ``ssm``: the selective scan's state x, (b, e, n), kept in fp32.
    """

    conv: torch.Tensor
    ssm: torch.Tensor


class MambaMixer(nn.Module):
    """The Mamba block's sequence mixer (Figure 3): two projections, a causal convolution, the selective
    SSM on one branch and a SiLU gate on the other. transformers calls this ``MambaMixer``."""

    def __init__(self, config: MambaConfig) -> None:
        super().__init__()
        c, e, n, r = (
            config.hidden_size,
            config.intermediate_size,
            config.state_size,
            config.time_step_rank,
        )
        self.config = config
        self.conv1d = nn.Conv1d(e, e, config.conv_kernel, groups=e, bias=config.use_conv_bias)
        self.in_proj = nn.Linear(c, 2 * e, bias=config.use_bias)  # x and the gate z
        self.x_proj = nn.Linear(e, r + 2 * n, bias=False)  # s_Delta (low rank), s_B, s_C
        self.dt_proj = nn.Linear(r, e, bias=True)  # its bias is Delta's parameter
        self.A_log = nn.Parameter(torch.log(torch.arange(1, n + 1.0)).repeat(e, 1))  # (e, n)
        self.D = nn.Parameter(torch.ones(e))
        self.out_proj = nn.Linear(e, c, bias=config.use_bias)

    def ssm_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """From the convolved x (b, l, e): delta (b, e, l), A (e, n), B and C (b, n, l)."""
        n, r = self.config.state_size, self.config.time_step_rank
        dt, B, C = self.x_proj(x).split([r, n, n], dim=-1)  # (b, l, r), (b, l, n), (b, l, n)
        delta = self.dt_proj.weight @ dt.transpose(1, 2)  # (b, e, l); bias added in the scan
        A = -torch.exp(self.A_log.float())  # (e, n): negative, so exp(delta A) < 1
        return delta, A, B.transpose(1, 2), C.transpose(1, 2)

    def forward(self, h: torch.Tensor, parallel: bool = True) -> torch.Tensor:
        """(b, l, c) -> (b, l, c); ``parallel`` picks the chunked scan or the sequential loop."""
        return self._forward(h, parallel)[0]

    def _forward(self, h: torch.Tensor, parallel: bool = True) -> tuple[torch.Tensor, MambaState]:
        k = self.config.conv_kernel
        x, z = self.in_proj(h).transpose(1, 2).chunk(2, dim=1)  # 2 x (b, e, l)
        x = F.pad(x, (k - 1, 0))  # (b, e, k - 1 + l): zeros before the first token
        conv_state = x[:, :, h.shape[1] :]  # (b, e, k - 1): the last k - 1 inputs
        x = F.silu(self.conv1d(x))  # (b, e, l): a causal depthwise convolution
        delta, A, B, C = self.ssm_inputs(x.transpose(1, 2))
        scan = selective_scan_parallel if parallel else selective_scan
        y, ssm_state = scan(
            x, delta, A, B, C, self.D.float(), z, self.dt_proj.bias.float(), True, True
        )  # (b, e, l), (b, e, n)
        return self.out_proj(y.transpose(1, 2).to(h.dtype)), MambaState(conv_state, ssm_state)

    def step(self, h: torch.Tensor, state: MambaState) -> torch.Tensor:
        """One token: (b, c) -> (b, c), updating ``state`` in place. Same as the full forward."""
        x, z = self.in_proj(h).chunk(2, dim=-1)  # 2 x (b, e)
        window = torch.cat([state.conv, x[:, :, None]], dim=2)  # (b, e, k): last k inputs
        state.conv = window[:, :, 1:]
        x = (window * self.conv1d.weight[:, 0]).sum(-1)  # (b, e): the convolution at one position
        x = F.silu(x if self.conv1d.bias is None else x + self.conv1d.bias)
        delta, A, B, C = self.ssm_inputs(x[:, None])  # (b, e, 1), (e, n), (b, n, 1), (b, n, 1)
        delta = F.softplus(delta[:, :, 0].float() + self.dt_proj.bias.float())  # (b, e)
        deltaA = torch.exp(einsum(delta, A, "b e, e n -> b e n"))  # Eq. (4)
        deltaB_u = einsum(delta * x.float(), B[:, :, 0].float(), "b e, b n -> b e n")
        state.ssm = deltaA * state.ssm + deltaB_u  # (b, e, n): one step of the recurrence
        y = einsum(state.ssm, C[:, :, 0].float(), "b e n, b n -> b e") + self.D.float() * x.float()
        y = (y * F.silu(z.float())).to(h.dtype)  # (b, e)
        return self.out_proj(y)  # (b, c)


class MambaBlock(nn.Module):
    """Pre-norm residual block: ``h + mixer(norm(h))``, the residual in fp32 if configured."""

    def __init__(self, config: MambaConfig) -> None:
        super().__init__()
        self.norm = RMSNorm(config.hidden_size, config.layer_norm_epsilon)
        self.mixer = MambaMixer(config)
        self.residual_in_fp32 = config.residual_in_fp32

    def forward(self, h: torch.Tensor, parallel: bool = True) -> torch.Tensor:
        return self._forward(h, parallel)[0]

    def _forward(self, h: torch.Tensor, parallel: bool = True) -> tuple[torch.Tensor, MambaState]:
        residual = h.float() if self.residual_in_fp32 else h
        out, state = self.mixer._forward(self.norm(h.to(self.norm.weight.dtype)), parallel)
        return residual + out, state  # (b, l, c)

    def step(self, h: torch.Tensor, state: MambaState) -> torch.Tensor:
        residual = h.float() if self.residual_in_fp32 else h
        return residual + self.mixer.step(self.norm(h.to(self.norm.weight.dtype)), state)  # (b, c)


class MambaBackbone(nn.Module):
    """Embedding, the stack of blocks, the final norm (transformers' ``MambaModel``)."""

    def __init__(self, config: MambaConfig) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(MambaBlock(config) for _ in range(config.num_hidden_layers))
        self.norm_f = RMSNorm(config.hidden_size, config.layer_norm_epsilon)


class MambaLM(nn.Module):
    """A Mamba language model; its ``state_dict`` keys are those of ``MambaForCausalLM``."""

    def __init__(self, config: MambaConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = MambaBackbone(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.backbone.embeddings.weight

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        h = self.backbone.norm_f(h)
        return self.lm_head(h.to(self.lm_head.weight.dtype)).float()  # fp32 logits, as HF

    def forward(self, input_ids: torch.Tensor, parallel: bool = True) -> torch.Tensor:
        """(b, l) token ids -> (b, l, v) fp32 logits for the token after each position."""
        return self.prefill(input_ids, parallel)[0]

    def prefill(
        self, input_ids: torch.Tensor, parallel: bool = True
    ) -> tuple[torch.Tensor, list[MambaState]]:
        """The full forward, also returning each block's state after the last token."""
        check_token_ids(input_ids, self.config.vocab_size, "(b, l)")
        h, states = self.backbone.embeddings(input_ids), []  # (b, l, c)
        for layer in self.backbone.layers:
            h, state = layer._forward(h, parallel)  # (b, l, c)
            states.append(state)
        return self._logits(h), states

    def step(self, input_ids: torch.Tensor, states: list[MambaState]) -> torch.Tensor:
        """One token per sequence, (b,) -> (b, v) logits; updates ``states`` (one per block) in place."""
        check_token_ids(input_ids, self.config.vocab_size, "(b,)")
        if len(states) != len(self.backbone.layers):
            raise ValueError(
                f"states must hold one MambaState per layer ({len(self.backbone.layers)}), got {len(states)}"
            )
        h = self.backbone.embeddings(input_ids)  # (b, c)
        for layer, state in zip(self.backbone.layers, states, strict=True):
            h = layer.step(h, state)  # (b, c)
        return self._logits(h)

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        """Greedy decoding: the prompt once, then one :meth:`step` per token on O(1) state.

        Returns ``(b, l + max_new_tokens)``: the prompt followed by the generated tokens.
        """
        _check_positive_int("max_new_tokens", max_new_tokens)
        logits, states = self.prefill(input_ids)
        out, next_id = [input_ids], logits[:, -1].argmax(-1)  # (b,)
        for i in range(max_new_tokens):
            out.append(next_id[:, None])
            if i + 1 < max_new_tokens:
                next_id = self.step(next_id, states).argmax(-1)  # (b,)
        return torch.cat(out, dim=1)

    @classmethod
    def from_hf(cls, hf_model: nn.Module) -> MambaLM:
        """Build from a transformers ``MambaForCausalLM`` and copy its weights (same names)."""
        return load_hf_weights(cls(MambaConfig.from_hf(hf_model.config)), hf_model)


def state_bytes_per_token(
    num_hidden_layers: int,
    intermediate_size: int,
    state_size: int,
    conv_kernel: int,
    seq_len: int,
    bytes_per_value: int = 2,
) -> float:
    """Bytes of recurrent state per token of context: (conv + ssm state) / seq_len; it shrinks as 1/l."""
    per_layer = intermediate_size * (conv_kernel - 1 + state_size)
    return num_hidden_layers * per_layer * bytes_per_value / seq_len
