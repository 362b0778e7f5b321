"""A tiny GPT-NeoX decoder (the Pythia suite): a parallel residual, partial rotary and fused q/k/v.

GPT-NeoX [black2022gptneox], whose architecture every Pythia model uses [biderman2023pythia],
differs from the Llama-style decoder in ``demos.models.llama`` in five places: (1) with
``use_parallel_residual`` the attention and the MLP read the same ``x`` (each through its own
LayerNorm) and both outputs are added to it at once; (2) RoPE turns only the first
``rotary_ndims = int(d * rotary_pct)`` channels of each head (Pythia: 25 %); (3) q, k and v come out
of one ``query_key_value`` matrix, head by head; (4) LayerNorm with a bias and a GELU MLP; (5) an
untied output matrix (``embed_out`` in the checkpoints, ``lm_head`` in transformers 5).
``GPTNeoXLM`` subclasses the decoder shell ``DecoderLM`` and restates only these (``# NEW vs Llama``).

Axes:
    b  batch
    t  new tokens in this call
    s  all tokens so far (cache + new)
    c  hidden size
    h  heads (query = key/value heads)
    d  head dimension, c // h
    r  rotated channels of a head, int(d * rotary_pct)
    f  MLP width (intermediate_size)
    v  vocabulary size

References:
    black2022gptneox   GPT-NeoX-20B, Section 2.1 (rotary on 25 % of dims, parallel attention + MLP).
    biderman2023pythia Pythia, Section 2 and Appendix (the suite's architecture).
    su2021roformer     rotary position embeddings.

Reference implementation:
    transformers==5.23.0, models/gpt_neox/modeling_gpt_neox.py::GPTNeoXAttention,
    ::GPTNeoXMLP, ::GPTNeoXLayer, ::GPTNeoXModel, ::GPTNeoXForCausalLM,
    ::GPTNeoXRotaryEmbedding.compute_default_rope_parameters (partial_rotary_factor).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any, ClassVar

import torch
from torch import nn

from demos.layers.fused_qkv import FusedQKVAttention
from demos.layers.mlp import GeluMLP
from demos.layers.rope import rope_cos_sin
from demos.models import fields_from_hf, rope_theta_from_hf
from demos.models.decoder import DecoderLM, SubStep, check_layer_idx, sequential_substeps
from demos.validation import check_positive_int, check_rope_theta
from demos.weights import load_hf_weights

# transformers' hidden_act -> torch's GELU approximation ("gelu_new" is the tanh formula)
GELU_APPROXIMATIONS = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh"}


def rotary_ndims(head_dim: int, partial_rotary_factor: float) -> int:
    """``r = int(d * partial_rotary_factor)``, the rotated channels of a head, as transformers counts them.

    ``ValueError`` unless ``0 < factor <= 1`` and ``r`` is a positive even number (RoPE turns pairs).
    """
    factor = partial_rotary_factor
    if isinstance(factor, bool) or not isinstance(factor, Real) or not 0 < factor <= 1:
        raise ValueError(f"partial_rotary_factor ({factor!r}) must be a number in (0, 1]")
    r = int(head_dim * factor)
    if r < 2 or r % 2:
        raise ValueError(
            f"rotary dims int(head_dim * partial_rotary_factor) = int({head_dim} * {factor}) = {r} "
            "must be a positive even number: RoPE turns channel pairs"
        )
    return r


def partial_rotary_from_hf(hf_config: Any, default: float) -> float:
    """``partial_rotary_factor`` of a transformers config (in ``rope_parameters`` since v5)."""
    rope = getattr(hf_config, "rope_parameters", None) or {}
    return rope.get("partial_rotary_factor", getattr(hf_config, "partial_rotary_factor", default))


@dataclass(frozen=True)
class GPTNeoXLMConfig:
    """Shape of a GPT-NeoX model, with transformers' ``GPTNeoXConfig`` field names."""

    model_types: ClassVar[tuple[str, ...]] = ("gpt_neox",)  # the transformers configs from_hf reads
    # transformers fields read under another name or by a special reader (fields_from_hf's check)
    hf_reads: ClassVar[dict[str, str]] = {
        "rope_parameters": "rope_theta and partial_rotary_factor (v4: rotary_emb_base, rotary_pct); "
        "rope types other than 'default' refused",
    }
    # transformers fields its eager forward does not read in eval mode (transformers 5.23.0)
    hf_ignores: ClassVar[dict[str, str]] = {
        "attention_dropout": "dropout: 0 in eval",
        "hidden_dropout": "dropout: 0 in eval",
        "classifier_dropout": "the sequence-classification head only",
        "initializer_range": "initialisation only",
    }

    vocab_size: int  # v
    hidden_size: int  # c
    num_hidden_layers: int  # number of decoder blocks
    num_attention_heads: int  # h (every head has its own key and value)
    intermediate_size: int  # f
    hidden_act: str = "gelu"  # "gelu" (exact) or "gelu_new" (tanh)
    layer_norm_eps: float = 1e-5
    use_parallel_residual: bool = True  # x + attn(ln1(x)) + mlp(ln2(x)); False: sequential
    partial_rotary_factor: float = 0.25  # rotary_pct: the share of each head RoPE turns
    rope_theta: float = 10000.0  # RoPE base (rotary_emb_base)
    attention_bias: bool = True  # biases on query_key_value and dense
    tie_word_embeddings: bool = False  # Pythia: embed_out is its own matrix
    # the context length it was trained for: not read by the forward (RoPE has no table), but the
    # window lm-eval's HFLM scores in (demos.eval.scoring.max_length_of); None: unknown
    max_position_embeddings: int | None = None

    def __post_init__(self) -> None:
        if self.max_position_embeddings is not None:
            check_positive_int("max_position_embeddings", self.max_position_embeddings)
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads"):
            check_positive_int(name, getattr(self, name))
        check_positive_int("intermediate_size", self.intermediate_size)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )
        self.check_hidden_act()
        if not self.layer_norm_eps > 0:
            raise ValueError(f"layer_norm_eps ({self.layer_norm_eps!r}) must be positive")
        check_rope_theta(self.rope_theta)
        rotary_ndims(self.head_dim, self.partial_rotary_factor)  # validates the factor

    def check_hidden_act(self) -> None:
        """``ValueError`` for an activation this family's MLP does not compute (hook)."""
        if self.hidden_act not in GELU_APPROXIMATIONS:
            raise ValueError(
                f"hidden_act ({self.hidden_act!r}) must be one of {sorted(GELU_APPROXIMATIONS)}"
            )

    @property
    def head_dim(self) -> int:  # d
        return self.hidden_size // self.num_attention_heads

    @property
    def rotary_ndims(self) -> int:  # r, the channels RoPE turns
        return rotary_ndims(self.head_dim, self.partial_rotary_factor)

    @classmethod
    def from_hf(cls, hf_config: Any) -> GPTNeoXLMConfig:
        """Read a transformers ``GPTNeoXConfig`` (``rotary_pct`` lives in ``rope_parameters``)."""
        return fields_from_hf(
            cls,
            hf_config,
            rope_theta=rope_theta_from_hf(hf_config),
            partial_rotary_factor=partial_rotary_from_hf(hf_config, 0.25),
        )


class GPTNeoXLMAttention(FusedQKVAttention):
    """Multi-head attention with one fused ``query_key_value`` matrix, head by head ``[q_i k_i v_i]``.

    NEW vs Llama: the fused matrix in the gpt_neox layout
    (:func:`~demos.layers.fused_qkv.split_fused_qkv`), ``dense`` for ``o_proj``, biases on both.
    Partial rotary needs nothing here: the model passes ``r``-wide cos/sin tables and
    :func:`~demos.layers.rope.apply_rope` turns only the first ``r`` channels.
    """

    def __init__(self, config: GPTNeoXLMConfig) -> None:
        h, d = config.num_attention_heads, config.head_dim
        super().__init__(config.hidden_size, h, h, d, config.attention_bias, layout="gpt_neox")

    @classmethod
    def from_hf(cls, hf_attention: nn.Module) -> GPTNeoXLMAttention:
        """Build from a transformers ``GPTNeoXAttention`` and copy its weights."""
        return load_hf_weights(cls(GPTNeoXLMConfig.from_hf(hf_attention.config)), hf_attention)


class GPTNeoXLMBlock(nn.Module):
    """``x + attn(ln1(x)) + mlp(ln2(x))`` (parallel), or Llama's order with LayerNorms (sequential)."""

    def __init__(self, config: GPTNeoXLMConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = check_layer_idx(layer_idx, config)
        c, eps = config.hidden_size, config.layer_norm_eps
        self.use_parallel_residual = config.use_parallel_residual
        self.input_layernorm = nn.LayerNorm(c, eps=eps)  # NEW vs Llama: LayerNorm, with a bias
        self.post_attention_layernorm = nn.LayerNorm(c, eps=eps)
        self.attention = GPTNeoXLMAttention(config)  # NEW vs Llama: fused QKV
        approximate = GELU_APPROXIMATIONS[config.hidden_act]
        # NEW vs Llama: a GELU MLP with biases, not SwiGLU
        self.mlp = GeluMLP(c, config.intermediate_size, bias=True, approximate=approximate)

    def substeps(self) -> tuple[SubStep, ...]:
        """The sub-steps in forward order, for :func:`demos.debugging.first_divergence`."""
        if not self.use_parallel_residual:
            return sequential_substeps(
                "input_layernorm", "attention", "post_attention_layernorm", "mlp"
            )
        return (
            SubStep("input norm", "norm", "input_layernorm"),
            SubStep("attention", "attention", "attention"),
            SubStep("MLP norm", "norm", "post_attention_layernorm"),  # reads x, not x + attention
            SubStep("MLP", "mlp", "mlp"),
            SubStep("residual after attention + MLP", "residual"),
        )

    def forward(self, x: torch.Tensor, *attention_args: Any) -> torch.Tensor:
        """``x (b, t, c)``; ``attention_args``: ``(position_embeddings, cache, attention_mask)``."""
        attn_out = self.attention(self.input_layernorm(x), *attention_args)  # (b, t, c)
        if self.use_parallel_residual:  # NEW vs Llama: the MLP reads x, not x + attn_out
            return self.mlp(self.post_attention_layernorm(x)) + attn_out + x  # (b, t, c)
        x = x + attn_out  # (b, t, c)
        return self.mlp(self.post_attention_layernorm(x)) + x  # (b, t, c)


class GPTNeoXLM(DecoderLM):
    """:class:`~demos.models.decoder.DecoderLM`'s shell with GPT-NeoX's block, partial RoPE and names.

    Embedding, the loop over blocks with the KV cache, ``new_cache``, ``generate`` and ``from_hf``
    are the shell's, as Llama's. transformers' module names: ``gpt_neox.embed_in``, ``gpt_neox.layers``,
    ``gpt_neox.final_layer_norm`` and ``lm_head``. The released checkpoints call the head
    ``embed_out``; transformers 5 renames it to ``lm_head`` when it loads them
    (``conversion_mapping.py``), so the module we compare against is named ``lm_head``.
    """

    config_class = GPTNeoXLMConfig  # NEW vs Llama: GPTNeoXConfig's fields
    block_class = GPTNeoXLMBlock  # NEW vs Llama: parallel (or sequential) block with LayerNorms
    # NEW vs Llama: HF's names
    module_names = ("gpt_neox", "embed_in", "layers", "final_layer_norm")

    def make_final_norm(self, config: GPTNeoXLMConfig) -> nn.Module:
        return nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # NEW vs Llama

    def position_embeddings(
        self, positions: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """RoPE tables ``(..., t, r)`` for the first ``r = rotary_ndims`` channels only.

        NEW vs Llama: ``r < d``; the frequencies are those of an ``r``-dimensional head,
        ``theta_i = base^(-2i/r)``, as transformers computes them.
        """
        r, base = self.config.rotary_ndims, self.config.rope_theta
        return rope_cos_sin(positions, r, base, dtype)
