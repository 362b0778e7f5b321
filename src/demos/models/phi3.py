"""Phi-3: the Llama decoder with fused ``qkv_proj`` and ``gate_up_proj`` matrices, and LongRoPE.

Phi-3-mini [abdin2024phi3] is a Llama-style block (RMSNorm, SwiGLU, RoPE, here multi-head
attention) whose checkpoint stores q, k and v as one matrix (``[all q | all k | all v]``) and
the MLP's gate and up projections as one (``[gate | up]``); an optional sliding window as in
Mistral. The 128K variants stretch RoPE with LongRoPE [ding2024longrope]: each of the ``d/2``
frequencies gets its own rescale factor, one set ("short") up to the pre-training length and
another ("long") beyond it, and cos/sin are multiplied by an attention factor
``sqrt(1 + ln s / ln L)`` (``s`` the length ratio, ``L`` the original length).

Axes:
    b  batch
    t  new tokens in this call
    h  query heads, g key/value heads, d head dimension (d/2 frequencies, indexed by i)
    c  hidden size, f MLP width, v vocabulary

References:
    abdin2024phi3     Phi-3 Technical Report, Section 2 (architecture; phi-3-mini-128K uses LongRope).
    ding2024longrope  LongRoPE, Section 2-3 (non-uniform per-dimension rescaling).

Reference implementation:
    transformers==5.23.0, models/phi3/modeling_phi3.py::Phi3Attention, ::Phi3MLP,
    ::Phi3RotaryEmbedding, ::Phi3ForCausalLM; modeling_rope_utils.py::_compute_longrope_parameters
    and ``dynamic_rope_update`` (the short/long switch). Deviations: no dropout (Phi-3's
    ``resid_pdrop`` is 0 in inference). Cached decoding across the switch: the held keys and
    values were computed with the short factors, and not only layer 0's keys' rotation differs
    (every later layer's keys and values come from hidden states the short factors made), so no
    rotation of the cache can repair them. transformers' ``generate``
    (``Phi3ForCausalLM.prepare_inputs_for_generation``) drops the cache at the first step whose
    sequence is longer than ``original_max_position_embeddings`` and re-encodes the whole sequence;
    its plain cached ``forward`` does not (measured in tests/models/test_phi3.py: its cached steps
    then differ from its own full forward, and from its ``generate``). Ours re-encodes inside
    ``forward`` (:class:`LongRopeCache` keeps the token ids for it), so every cached call equals
    the full forward of the sequence so far, and ``generate`` equals transformers' ``generate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from demos.generation import position_ids
from demos.layers.attention import AttentionConfig, rotate_cache_attend
from demos.layers.fused_qkv import split_fused_qkv
from demos.layers.kv_cache import KVCache
from demos.layers.rope import rope_cos_sin, rope_inv_freq
from demos.models import check_model_type, fields_from_hf
from demos.models.llama import LlamaLMBlock, LlamaLMConfig
from demos.models.mistral import MistralLM
from demos.validation import check_attention_mask, check_finite_number, check_positive_int


def longrope_attention_factor(factor: float, original_max_position_embeddings: int) -> float:
    """LongRoPE's scale on cos and sin: ``sqrt(1 + ln(factor) / ln(L))``, 1 when ``factor <= 1``.

    ``factor`` is the context extension ratio (Phi-3-mini-128K: 131072 / 4096 = 32, so 1.19).
    """
    check_positive_int("original_max_position_embeddings", original_max_position_embeddings)
    if not factor > 0:
        raise ValueError(f"factor ({factor!r}) must be positive")
    if factor <= 1.0:
        return 1.0
    return math.sqrt(1 + math.log(factor) / math.log(original_max_position_embeddings))


def longrope_inv_freq(
    head_dim: int,
    base: float,
    short_factor: tuple[float, ...],
    long_factor: tuple[float, ...],
    seq_len: int,
    original_max_position_embeddings: int,
) -> torch.Tensor:
    """LongRoPE's frequencies ``theta_i / lambda_i``, float32 ``(d/2,)``.

    ``lambda`` is ``long_factor`` when ``seq_len > original_max_position_embeddings``, else
    ``short_factor``: one rescale factor per frequency, found by search [ding2024longrope].

    Raises:
        ValueError: a factor list not of length ``d/2`` or with a value that is not positive.
    """
    for name, factors in (("short_factor", short_factor), ("long_factor", long_factor)):
        if len(factors) != head_dim // 2 or not all(x > 0 for x in factors):
            raise ValueError(
                f"{name} must hold head_dim/2 = {head_dim // 2} positive numbers, got {factors!r}"
            )
    long = seq_len > original_max_position_embeddings
    factors = torch.tensor(long_factor if long else short_factor, dtype=torch.float32)  # (d/2,)
    return rope_inv_freq(head_dim, base) / factors  # NEW vs RoPE: each frequency its own factor


class LongRopeCache(list):
    """One :class:`KVCache` per layer (a list, as every model's cache) and the token ids it has
    seen, ``(b, S)``: what a call that crosses LongRoPE's switch needs to re-encode the sequence."""

    def __init__(self, layers: list[KVCache]) -> None:
        super().__init__(layers)
        self.input_ids: torch.Tensor | None = None  # (b, S): every token the layers hold


@dataclass(frozen=True)
class Phi3LMConfig(LlamaLMConfig):
    """:class:`LlamaLMConfig` plus LongRoPE's fields (transformers' ``rope_parameters`` names)."""

    model_types: ClassVar[tuple[str, ...]] = ("phi3",)  # NEW vs Llama: Phi3Config
    hf_reads: ClassVar[dict[str, str]] = {
        "rope_parameters": "rope_theta, rope_type and LongRoPE's short_factor, long_factor, factor, "
        "attention_factor; partial_rotary_factor refused unless 1, rope types but longrope refused",
        "max_position_embeddings": "LongRoPE's factor (max / original) when rope_parameters has none",
        "head_dim": "not a Phi3Config field, but Phi3Attention reads getattr(config, 'head_dim')",
    }
    hf_ignores: ClassVar[dict[str, str]] = {
        **LlamaLMConfig.hf_ignores,
        "resid_pdrop": "dropout: 0 in eval",
        "embd_pdrop": "dropout; 5.23's modeling_phi3 does not even read it",
    }

    rope_type: str = "default"  # "default" or "longrope"
    short_factor: tuple[float, ...] | None = None  # lambda_i up to the original length
    long_factor: tuple[float, ...] | None = None  # lambda_i beyond it
    original_max_position_embeddings: int = 4096  # L, the pre-training length (the switch)
    attention_factor: float = 1.0  # scale on cos and sin (longrope_attention_factor)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rope_type not in ("default", "longrope"):
            raise ValueError(f"rope_type ({self.rope_type!r}) must be 'default' or 'longrope'")
        check_positive_int(
            "original_max_position_embeddings", self.original_max_position_embeddings
        )
        check_finite_number("attention_factor", self.attention_factor)  # scales cos and sin
        if not self.attention_factor > 0:
            raise ValueError(
                f"attention_factor ({self.attention_factor!r}) must be positive: it scales cos "
                "and sin (a negative one turns every rotation by 180 degrees)"
            )
        if self.rope_type == "longrope":
            if self.short_factor is None or self.long_factor is None:
                raise ValueError("rope_type 'longrope' needs short_factor and long_factor")
            object.__setattr__(self, "short_factor", tuple(self.short_factor))
            object.__setattr__(self, "long_factor", tuple(self.long_factor))
            longrope_inv_freq(
                self.head_dim, self.rope_theta, self.short_factor, self.long_factor, 1, 1
            )  # validates the factor lists

    @classmethod
    def from_hf(cls, hf_config: Any) -> Phi3LMConfig:
        """Read a transformers ``Phi3Config``; LongRoPE from its ``rope_parameters``."""
        check_model_type(cls, hf_config)  # first: the checks below read this type's fields
        if getattr(hf_config, "hidden_act", "silu") != "silu":
            raise ValueError(f"hidden_act ({hf_config.hidden_act!r}) must be 'silu'")
        rope = dict(getattr(hf_config, "rope_parameters", None) or {})
        if rope.get("partial_rotary_factor", 1.0) != 1.0:
            raise ValueError(
                f"partial_rotary_factor ({rope['partial_rotary_factor']!r}) must be 1.0 here"
            )
        rope_type = rope.get("rope_type", "default")
        values: dict[str, Any] = dict(
            rope_theta=rope.get("rope_theta", 10000.0), rope_type=rope_type
        )
        if rope_type == "longrope":  # NEW vs Llama (rope_theta_from_hf takes only 'default')
            original = rope.get(
                "original_max_position_embeddings", hf_config.original_max_position_embeddings
            )
            factor = rope.get("factor") or hf_config.max_position_embeddings / original
            attention_factor = rope.get("attention_factor")
            if attention_factor is None:
                attention_factor = longrope_attention_factor(factor, original)
            values.update(
                short_factor=rope["short_factor"],
                long_factor=rope["long_factor"],
                original_max_position_embeddings=original,
                attention_factor=attention_factor,
            )
        elif rope_type != "default":
            raise ValueError(f"rope_type ({rope_type!r}) must be 'default' or 'longrope'")
        return fields_from_hf(cls, hf_config, **values)


class Phi3LMAttention(nn.Module):
    """Grouped-query attention with one fused ``qkv_proj`` (``[all q | all k | all v]``) and ``o_proj``."""

    def __init__(self, config: AttentionConfig) -> None:
        super().__init__()
        self.config = config
        h, g, d = config.num_attention_heads, config.num_key_value_heads, config.head_dim
        self.qkv_proj = nn.Linear(config.hidden_size, (h + 2 * g) * d, bias=False)  # NEW: fused
        self.o_proj = nn.Linear(h * d, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor, *attention_args: Any) -> torch.Tensor:
        """``x (b, t, c) -> (b, t, c)``; ``attention_args``: ``(position_embeddings, cache,
        attention_mask)`` as for ``GroupedQueryAttention``."""
        cfg = self.config
        if x.dim() != 3 or x.shape[-1] != cfg.hidden_size:
            raise ValueError(f"x must have shape (b, t, {cfg.hidden_size}), got {tuple(x.shape)}")
        q, k, v = split_fused_qkv(
            self.qkv_proj(x), cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, "phi3"
        )  # (b, h, t, d), (b, g, t, d), (b, g, t, d)
        context = rotate_cache_attend(
            q, k, v, *attention_args, window=cfg.sliding_window
        )  # (b, t, h * d)
        return self.o_proj(context)  # (b, t, c)


class Phi3LMMLP(nn.Module):
    """SwiGLU with one fused ``gate_up_proj``: ``down(silu(gate) * up)``, ``[gate | up]`` halves."""

    def __init__(self, hidden_size: int, intermediate_size: int) -> None:
        super().__init__()
        self.gate_up_proj = nn.Linear(hidden_size, 2 * intermediate_size, bias=False)  # NEW
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)  # (b, t, f) each: first half is the gate
        return self.down_proj(F.silu(gate) * up)  # (b, t, c)


class Phi3LMBlock(LlamaLMBlock):
    """Llama's pre-norm block with the fused attention and MLP."""

    def make_attention(self, config: Phi3LMConfig, layer_idx: int) -> nn.Module:
        return Phi3LMAttention(config.attention_config(layer_idx))  # NEW vs Llama: qkv_proj

    def make_mlp(self, config: Phi3LMConfig, layer_idx: int) -> nn.Module:
        return Phi3LMMLP(config.hidden_size, config.intermediate_size)  # NEW: gate_up_proj


class Phi3LM(MistralLM):
    """:class:`~demos.models.mistral.MistralLM` (Llama, plus a rolling cache when there is a
    sliding window) with Phi-3's fused matrices and LongRoPE."""

    config_class = Phi3LMConfig  # NEW vs Llama: LongRoPE's fields
    block_class = Phi3LMBlock  # NEW vs Llama: fused qkv_proj and gate_up_proj

    def new_cache(self, batch_size: int | None = None) -> list[KVCache]:
        """Mistral's cache; with LongRoPE a :class:`LongRopeCache` that also keeps the token ids."""
        layers = super().new_cache(batch_size)
        return LongRopeCache(layers) if self.config.rope_type == "longrope" else layers

    def forward(
        self,
        input_ids: torch.Tensor,
        cache: list[KVCache] | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """:meth:`DecoderLM.forward <demos.models.decoder.DecoderLM.forward>`. With LongRoPE, a
        cached call that takes the sequence past ``original_max_position_embeddings`` re-encodes
        the whole sequence with a fresh cache (as transformers' ``generate`` does at that step) and
        returns the new tokens' logits; the cache then holds the long factors' keys and values.

        Raises:
            ValueError: such a call with a cache that does not keep its token ids (a plain list
                instead of :meth:`new_cache`'s :class:`LongRopeCache`): it cannot be re-encoded.
        """
        if not isinstance(cache, LongRopeCache):
            if self._crosses_switch(input_ids, cache, attention_mask):
                raise ValueError(
                    "this cached call crosses LongRoPE's switch (original_max_position_embeddings "
                    f"= {self.config.original_max_position_embeddings}): the held keys and values "
                    "were computed with the short factors, and re-encoding needs the token ids; "
                    "make the cache with new_cache(), which keeps them"
                )
            return super().forward(input_ids, cache, attention_mask)
        seen = cache.input_ids
        if self._crosses_switch(input_ids, cache, attention_mask):  # NEW vs Llama: re-encode
            everything = torch.cat((seen, input_ids), dim=1)  # (b, S + t)
            fresh = self.new_cache(input_ids.shape[0])
            logits = self.forward(everything, fresh, attention_mask)[:, -input_ids.shape[1] :]
            cache[:], cache.input_ids = fresh, fresh.input_ids
            return logits  # (b, t, v)
        logits = super().forward(input_ids, cache, attention_mask)  # checks the arguments first
        cache.input_ids = input_ids if seen is None else torch.cat((seen, input_ids), dim=1)
        return logits

    def _crosses_switch(self, input_ids: Any, cache: Any, attention_mask: Any) -> bool:
        """LongRoPE, a cache that holds tokens of a sequence no longer than the switch, and this
        call making it longer (its longest row, as transformers: the batch switches together).
        False for anything the shell's checks refuse, so that they raise their own errors."""
        if not (
            self.config.rope_type == "longrope"
            and isinstance(input_ids, torch.Tensor)
            and input_ids.dim() == 2
            and isinstance(cache, list)
            and len(cache) == len(self.blocks)
            and all(isinstance(c, KVCache) for c in cache)
            and len(cache[0]) > 0
        ):
            return False
        past, (b, t) = len(cache[0]), input_ids.shape
        mask = check_attention_mask(attention_mask, b, past + t)
        positions = position_ids(past + t, 0, mask, input_ids.device)  # (S,) or (b, S)
        L = self.config.original_max_position_embeddings
        return int(positions[..., :past].max()) + 1 <= L < int(positions.max()) + 1

    def position_embeddings(
        self, positions: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """RoPE's ``(cos, sin)``, each ``(..., t, d)``; with LongRoPE, rescaled frequencies chosen
        by the sequence length ``max(positions) + 1`` and both tables times the attention factor."""
        cfg = self.config
        if cfg.rope_type != "longrope":
            return super().position_embeddings(positions, dtype)
        seq_len = int(positions.max()) + 1  # as transformers: the whole batch switches together
        inv_freq = longrope_inv_freq(  # NEW vs Llama: per-frequency factors, short or long
            cfg.head_dim,
            cfg.rope_theta,
            cfg.short_factor,
            cfg.long_factor,
            seq_len,
            cfg.original_max_position_embeddings,
        )
        work = torch.promote_types(dtype, torch.float32)  # scaled in fp32, then cast, as HF
        cos, sin = rope_cos_sin(positions, cfg.head_dim, cfg.rope_theta, work, inv_freq=inv_freq)
        scale = cfg.attention_factor  # NEW vs Llama: sqrt(1 + ln s / ln L) on cos and sin
        return (cos * scale).to(dtype), (sin * scale).to(dtype)
