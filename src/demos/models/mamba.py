"""Mamba: the Mamba block around the selective scan (:mod:`demos.layers.selective_scan`), a tiny Mamba LM.

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

Over ~300 lines on purpose: the Mamba block and the tiny LM around it, named as transformers names
them so that weights copy; the scan itself is :mod:`demos.layers.selective_scan`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from einops import einsum
from torch import nn

from demos.generation import GenerationMixin
from demos.layers.norms import RMSNorm
from demos.layers.selective_scan import selective_scan, selective_scan_parallel
from demos.models import check_model_type, fields_from_hf
from demos.models.decoder import SubStep
from demos.validation import check_attention_mask, check_positive_int, check_state, check_token_ids
from demos.weights import load_hf_weights


@dataclass(frozen=True)
class MambaLMConfig:
    """A Mamba LM's width, depth, state size ``n``, expansion ``e / c`` and convolution, in
    transformers' ``MambaConfig`` names; ``from_hf`` reads one, refusing what we do not compute."""

    model_types: ClassVar[tuple[str, ...]] = ("mamba",)  # the transformers configs from_hf reads
    # transformers fields read under another name or by a special reader (fields_from_hf's check)
    hf_reads: ClassVar[dict[str, str]] = {
        "hidden_act": "refused unless 'silu'",
        "intermediate_size": "refused unless expand * hidden_size (our intermediate_size)",
    }
    # transformers fields its eager forward does not read in eval mode (transformers 5.23.0)
    hf_ignores: ClassVar[dict[str, str]] = {
        "initializer_range": "initialisation only",
        "rescale_prenorm_residual": "initialisation only (out_proj's scale)",
        **{
            f"time_step_{name}": "initialisation only (dt_proj)"
            for name in ("floor", "init_scheme", "max", "min", "scale")
        },
        "use_mambapy": "the same scan by another algorithm (mambapy's pscan): rounding only",
        "use_associative_scan": "the same scan by another algorithm (under torch.compile): "
        "rounding only",
        **{  # mamba_ssm's names in the config.json of the state-spaces/mamba-*-hf checkpoints
            name: "a key of Mamba's config.json that 5.23's modeling_mamba does not read"
            for name in (
                "d_model",
                "d_inner",
                "n_layer",
                "fused_add_norm",
                "rms_norm",
                "pad_vocab_size_multiple",
                "ssm_cfg",
            )
        },
    }

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
            check_positive_int(name, getattr(self, name))
        check_positive_int("conv_kernel", self.conv_kernel)
        if self.time_step_rank is None:
            object.__setattr__(self, "time_step_rank", math.ceil(self.hidden_size / 16))
        check_positive_int("time_step_rank", self.time_step_rank)
        if not self.layer_norm_epsilon > 0:
            raise ValueError(f"layer_norm_epsilon ({self.layer_norm_epsilon!r}) must be positive")

    @property
    def intermediate_size(self) -> int:  # e
        return self.expand * self.hidden_size

    @classmethod
    def from_hf(cls, hf_config: Any) -> MambaLMConfig:
        """Read a transformers ``MambaConfig``."""
        check_model_type(cls, hf_config)  # first: the checks below read this type's fields
        if getattr(hf_config, "hidden_act", "silu") != "silu":
            raise ValueError(f"hidden_act ({hf_config.hidden_act!r}) must be 'silu' as in Mamba")
        config = fields_from_hf(cls, hf_config)
        expected = config.intermediate_size  # expand * hidden_size
        if getattr(hf_config, "intermediate_size", expected) != expected:
            raise ValueError(
                f"intermediate_size ({hf_config.intermediate_size!r}) must be expand * hidden_size "
                f"= {expected} here"
            )
        return config


@dataclass
class MambaState:
    """What one block remembers between tokens: O(1) in the sequence length.

    ``conv``: the last k - 1 inputs of the convolution, (b, e, k - 1).
    ``ssm``: the selective scan's state x, (b, e, n), kept in fp32.
    """

    conv: torch.Tensor
    ssm: torch.Tensor


class ReturnsState(nn.Module):
    """The mixer's and the block's ``forward``: ``_forward`` computes ``(output, MambaState)``.

    ``forward(hidden_states (b, l, c), parallel=True, attention_mask=None, return_state=False)``
    returns the output ``(b, l, c)``, and the :class:`MambaState` after the last token too if
    ``return_state``; ``parallel`` picks the chunked scan or the sequential loop. The block asks the
    mixer for its state through this call, not ``_forward``, so forward hooks see every mixer run.
    """

    def forward(
        self,
        hidden_states: torch.Tensor,
        parallel: bool = True,
        attention_mask: torch.Tensor | None = None,
        return_state: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, MambaState]:
        out = self._forward(hidden_states, parallel, attention_mask)
        return out if return_state else out[0]


class MambaLMMixer(ReturnsState):
    """The Mamba block's sequence mixer (Figure 3): two projections, a causal convolution, the selective
    SSM on one branch and a SiLU gate on the other. transformers calls this ``MambaMixer``."""

    def __init__(self, config: MambaLMConfig) -> None:
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

    def _forward(
        self,
        hidden_states: torch.Tensor,
        parallel: bool = True,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, MambaState]:
        """Also returns the state after the last token. ``attention_mask (b, l)`` zeroes padding's
        input and its convolution output, as transformers' ``apply_mask_to_padding_states``."""
        k, mask = self.config.conv_kernel, attention_mask
        if mask is not None:
            hidden_states = hidden_states * mask[:, :, None].to(hidden_states.dtype)
        x, z = self.in_proj(hidden_states).transpose(1, 2).chunk(2, dim=1)  # 2 x (b, e, l)
        x = F.pad(x, (k - 1, 0))  # (b, e, k - 1 + l): zeros before the first token
        conv_state = x[:, :, hidden_states.shape[1] :]  # (b, e, k - 1): the last k - 1 inputs
        x = F.silu(self.conv1d(x))  # (b, e, l): a causal depthwise convolution
        if mask is not None:
            x = x * mask[:, None, :].to(x.dtype)  # (b, e, l): padding feeds nothing to the scan
        delta, A, B, C = self.ssm_inputs(x.transpose(1, 2))
        scan = selective_scan_parallel if parallel else selective_scan
        y, ssm_state = scan(
            x, delta, A, B, C, self.D.float(), z, self.dt_proj.bias.float(), True, True
        )  # (b, e, l), (b, e, n)
        return self.out_proj(y.transpose(1, 2).to(hidden_states.dtype)), MambaState(
            conv_state, ssm_state
        )

    def step(self, hidden_states: torch.Tensor, state: MambaState) -> torch.Tensor:
        """One token: (b, c) -> (b, c), updating ``state`` in place. Same as the full forward."""
        b, (e, n, k) = hidden_states.shape[0], self.A_log.shape + (self.config.conv_kernel,)
        check_state("conv", state.conv, (b, e, k - 1))  # a state from another batch or model
        check_state("ssm", state.ssm, (b, e, n))
        x, z = self.in_proj(hidden_states).chunk(2, dim=-1)  # 2 x (b, e)
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
        y = (y * F.silu(z.float())).to(hidden_states.dtype)  # (b, e)
        return self.out_proj(y)  # (b, c)


class MambaLMBlock(ReturnsState):
    """Pre-norm residual block: ``hidden_states + mixer(norm(hidden_states))``, the residual in fp32 if configured."""

    def __init__(self, config: MambaLMConfig) -> None:
        super().__init__()
        self.norm = RMSNorm(config.hidden_size, config.layer_norm_epsilon)
        self.mixer = MambaLMMixer(config)
        self.residual_in_fp32 = config.residual_in_fp32

    def substeps(self) -> tuple[SubStep, ...]:
        """The sub-steps in forward order, for :func:`demos.debugging.first_divergence`."""
        return (
            SubStep("input norm", "norm", "norm"),
            SubStep("mixer", "mixer", "mixer"),
            SubStep("residual after mixer", "residual"),
        )

    def _forward(
        self, hidden_states: torch.Tensor, *mixer_args: Any
    ) -> tuple[torch.Tensor, MambaState]:
        """``mixer_args``: ``(parallel, attention_mask)`` as for the mixer's ``_forward``."""
        residual = hidden_states.float() if self.residual_in_fp32 else hidden_states
        normed = self.norm(hidden_states.to(self.norm.weight.dtype))
        out, state = self.mixer(normed, *mixer_args, return_state=True)  # hooks see it
        return residual + out, state  # (b, l, c)

    def step(self, hidden_states: torch.Tensor, state: MambaState) -> torch.Tensor:
        residual = hidden_states.float() if self.residual_in_fp32 else hidden_states
        return residual + self.mixer.step(
            self.norm(hidden_states.to(self.norm.weight.dtype)), state
        )  # (b, c)


class MambaLMBackbone(nn.Module):
    """Embedding, the stack of blocks, the final norm (transformers' ``MambaModel``)."""

    def __init__(self, config: MambaLMConfig) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(MambaLMBlock(config) for _ in range(config.num_hidden_layers))
        self.norm_f = RMSNorm(config.hidden_size, config.layer_norm_epsilon)


class MambaCache:
    """Mamba's cache: one :class:`MambaState` per block (``None`` before the prompt), O(1) in length.

    ``len(cache)`` is the number of tokens seen, as for a KV cache.
    """

    def __init__(self, num_layers: int) -> None:
        self.states: list[MambaState | None] = [None] * num_layers
        self.seen = 0

    def __len__(self) -> int:
        return self.seen


class MambaLM(GenerationMixin, nn.Module):
    """A Mamba language model; its ``state_dict`` keys are those of ``MambaForCausalLM``."""

    config_class = MambaLMConfig  # reads a transformers MambaConfig

    def __init__(self, config: MambaLMConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = MambaLMBackbone(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.backbone.embeddings.weight

    def new_cache(self, batch_size: int | None = None) -> MambaCache:
        """An empty :class:`MambaCache`: the prompt fills it, each later token steps it."""
        return MambaCache(len(self.backbone.layers))

    def forward(
        self,
        input_ids: torch.Tensor,
        cache: MambaCache | None = None,
        attention_mask: torch.Tensor | None = None,
        parallel: bool = True,
    ) -> torch.Tensor:
        """(b, l) token ids -> (b, l, v) fp32 logits for the token after each position.

        Args:
            cache: from :meth:`new_cache`. Empty: the whole input runs through the scan (``parallel``
                picks the chunked scan or the sequential loop) and leaves each block's state in
                it. Filled: the tokens continue from the state, one recurrent :meth:`step` each.
            attention_mask: ``(b, cached + l)``, 1 for a real token, 0 for left padding; padding
                is zeroed inside each mixer, as transformers does.
        """
        check_token_ids(input_ids, self.config.vocab_size, "(b, l)")
        layers = self.backbone.layers
        if cache is not None and not isinstance(cache, MambaCache):
            raise ValueError(
                f"cache must be a MambaCache from new_cache() (one recurrent state per layer), got "
                f"{type(cache).__name__}: a list of KV caches belongs to an attention model"
            )
        if cache is not None and len(cache.states) != len(layers):
            raise ValueError(
                f"cache must hold one MambaState per layer ({len(layers)}), got {len(cache.states)}"
            )
        b, length = input_ids.shape
        past = 0 if cache is None else len(cache)
        mask = check_attention_mask(attention_mask, b, past + length)
        hidden_states = self.backbone.embeddings(input_ids)  # (b, l, c)
        if past == 0:  # the prompt: the scan over all of it
            for i, layer in enumerate(layers):
                new = None if mask is None else mask[:, -length:]
                hidden_states, state = layer(hidden_states, parallel, new, return_state=True)
                if cache is not None:
                    cache.states[i] = state
        else:  # decoding: the recurrence, one token at a time (new tokens are real ones)
            hidden_states = torch.stack(
                [self.recurrent_step(hidden_states[:, j], cache.states) for j in range(length)],
                dim=1,
            )  # (b, l, c)
        if cache is not None:
            cache.seen += length
        hidden_states = self.backbone.norm_f(hidden_states)
        return self.lm_head(hidden_states.to(self.lm_head.weight.dtype)).float()  # fp32, as HF

    def recurrent_step(self, hidden_states: torch.Tensor, states: list[MambaState]) -> torch.Tensor:
        """One token's embedding through every block: (b, c) -> (b, c); updates ``states`` in place."""
        for layer, state in zip(self.backbone.layers, states, strict=True):
            hidden_states = layer.step(hidden_states, state)  # (b, c)
        return hidden_states

    @classmethod
    def from_hf(cls, hf_model: nn.Module) -> MambaLM:
        """Build from a transformers ``MambaForCausalLM`` and copy its weights (same names)."""
        return load_hf_weights(cls(cls.config_class.from_hf(hf_model.config)), hf_model)


def state_bytes_per_token(
    num_hidden_layers: int,
    intermediate_size: int,
    state_size: int,
    conv_kernel: int,
    seq_len: int,
    bytes_per_value: int = 2,
) -> float:
    """Bytes of recurrent state per token of context: (conv + ssm state) / seq_len; it shrinks as 1/l.

    Raises ``ValueError`` unless every argument is a positive integer (``conv_kernel`` >= 1).
    """
    for name, value in (
        ("num_hidden_layers", num_hidden_layers),
        ("intermediate_size", intermediate_size),
        ("state_size", state_size),
        ("conv_kernel", conv_kernel),
        ("seq_len", seq_len),
        ("bytes_per_value", bytes_per_value),
    ):
        check_positive_int(name, value)
    per_layer = intermediate_size * (conv_kernel - 1 + state_size)
    return num_hidden_layers * per_layer * bytes_per_value / seq_len
