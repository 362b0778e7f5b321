"""A tiny Falcon decoder: multi-query (or grouped-query) attention and a parallel attention + MLP block.

Falcon [almazrouei2023falcon] differs from the Llama-style decoder in ``demos.models.llama`` in four
places: (1) attention and the MLP read the *same* normalised input and their outputs are added to
the residual together; (2) Falcon-7B uses multi-query attention [shazeer2019mqa] (one key/value
head for all 71 query heads), Falcon-40B/180B use 8 key/value groups; (3) q, k and v come out of
one fused matrix ``query_key_value``; (4) LayerNorm with a bias and a plain GELU MLP instead of
RMSNorm and SwiGLU. Attention itself is ``demos.layers.attention.attention``: MQA is the setting
``g == 1``. ``FalconLM`` subclasses the decoder shell ``DecoderLM`` (as ``LlamaLM`` does) and restates
only these (``# NEW vs Llama``).

Axes:
    b  batch
    t  new tokens in this call
    s  all tokens so far (cache + new)
    c  hidden size
    h  query heads
    g  key/value heads (1 for Falcon-7B, 8 for Falcon-40B/180B)
    r  query heads per key/value head, r = h // g
    d  head dimension
    f  MLP width (ffn_hidden_size, 4c)
    v  vocabulary size

References:
    almazrouei2023falcon  The Falcon Series of Open Language Models, Section 4.1 (architecture).
    shazeer2019mqa        multi-query attention.
    ainslie2023gqa        grouped-query attention.
    su2021roformer        rotary position embeddings.

Reference implementation:
    transformers==5.23.0, models/falcon/modeling_falcon.py::FalconAttention (``_split_heads``
    and the eager path of ``forward``), ::FalconMLP, ::FalconDecoderLayer, ::FalconModel,
    ::FalconForCausalLM. Deviation: HF's new-architecture attention broadcasts k and v to all
    ``h`` heads *before* its KV cache, so that cache holds ``h`` heads; ours caches the ``g``
    heads the weights actually produce. The outputs are the same. transformers' eager path divides
    the scores by ``sqrt(d)`` where ours multiplies by ``1 / sqrt(d)``: the same to the last bit
    when ``sqrt(d)`` is a power of two, as at every released size (``d = 64``) and in the
    catalogue's rows (``d = 16`` and ``4``), else up to one rounding apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from demos.layers.fused_qkv import FusedQKVAttention
from demos.layers.mlp import GeluMLP
from demos.models import check_model_type, fields_from_hf, rope_theta_from_hf
from demos.models.decoder import DecoderLM, SubStep, check_layer_idx
from demos.validation import check_positive_int, check_rope_theta
from demos.weights import load_hf_weights


@dataclass(frozen=True)
class FalconLMConfig:
    """Shape of a Falcon model, with transformers' ``FalconConfig`` field names."""

    model_types: ClassVar[tuple[str, ...]] = ("falcon",)  # the transformers configs from_hf reads
    # transformers fields read under another name or by a special reader (fields_from_hf's check)
    hf_reads: ClassVar[dict[str, str]] = {
        "rope_parameters": "rope_theta; rope types other than 'default' refused",
        "alibi": "refused when true (Falcon-RW's ALiBi): rotary only",
        "parallel_attn": "refused when false (the sequential block)",
        "activation": "refused unless 'gelu'",
    }
    # transformers fields its eager forward does not read in eval mode (transformers 5.23.0)
    hf_ignores: ClassVar[dict[str, str]] = {
        "attention_dropout": "dropout: 0 in eval",
        "hidden_dropout": "dropout: 0 in eval",
        "initializer_range": "initialisation only",
        "apply_residual_connection_post_layernorm": "a key of Falcon's config.json that 5.23's "
        "modeling_falcon does not read",
    }

    vocab_size: int  # v
    hidden_size: int  # c
    num_hidden_layers: int  # number of decoder blocks
    num_attention_heads: int  # h
    num_kv_heads: int | None = None  # g for the new architecture; None means h
    multi_query: bool = True  # old architecture only: one key/value head (g = 1)
    new_decoder_architecture: bool = False  # Falcon-40B/180B: g groups, two LayerNorms
    num_ln_in_parallel_attn: int | None = None  # new architecture: 2 (ln_attn, ln_mlp) or 1
    ffn_hidden_size: int | None = None  # f; None means 4 * c
    layer_norm_epsilon: float = 1e-5
    rope_theta: float = 10000.0  # RoPE base
    bias: bool = False  # biases on every linear layer (Falcon-7B/40B/180B: none)
    tie_word_embeddings: bool = True  # lm_head shares the embedding matrix
    # the context length it was trained for: not read by the forward (RoPE has no table), but the
    # window lm-eval's HFLM scores in (demos.eval.scoring.max_length_of); None: unknown
    max_position_embeddings: int | None = None

    def __post_init__(self) -> None:
        if self.max_position_embeddings is not None:
            check_positive_int("max_position_embeddings", self.max_position_embeddings)
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads"):
            check_positive_int(name, getattr(self, name))
        check_rope_theta(self.rope_theta)  # else it would fail only at the first forward
        h = self.num_attention_heads
        if self.hidden_size % h:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads ({h})"
            )
        if (self.hidden_size // h) % 2:
            raise ValueError(f"head_dim ({self.hidden_size // h}) must be even for RoPE")
        if self.num_kv_heads is None:
            object.__setattr__(self, "num_kv_heads", h)
        check_positive_int("num_kv_heads", self.num_kv_heads)
        if self.new_decoder_architecture and h % self.num_kv_heads:
            raise ValueError(
                f"num_attention_heads ({h}) must be divisible by num_kv_heads ({self.num_kv_heads})"
            )
        if not (self.new_decoder_architecture or self.multi_query) and self.num_kv_heads != h:
            raise ValueError(
                f"num_kv_heads ({self.num_kv_heads}) must equal num_attention_heads ({h}) in the "
                "old architecture without multi_query (multi-head attention)"
            )
        if self.num_ln_in_parallel_attn is None:
            object.__setattr__(
                self, "num_ln_in_parallel_attn", 2 if self.new_decoder_architecture else 1
            )
        if self.num_ln_in_parallel_attn not in (1, 2):
            raise ValueError(
                f"num_ln_in_parallel_attn ({self.num_ln_in_parallel_attn!r}) must be 1 or 2"
            )
        if self.ffn_hidden_size is None:
            object.__setattr__(self, "ffn_hidden_size", 4 * self.hidden_size)
        check_positive_int("ffn_hidden_size", self.ffn_hidden_size)
        if not self.layer_norm_epsilon > 0:
            raise ValueError(f"layer_norm_epsilon ({self.layer_norm_epsilon!r}) must be positive")

    @property
    def head_dim(self) -> int:  # d
        return self.hidden_size // self.num_attention_heads

    @property
    def kv_heads(self) -> int:
        """g, the key/value heads the weights produce: 1 (multi-query), ``num_kv_heads`` or h."""
        if self.new_decoder_architecture:
            return self.num_kv_heads
        return 1 if self.multi_query else self.num_attention_heads

    @classmethod
    def from_hf(cls, hf_config: Any) -> FalconLMConfig:
        """Read a transformers ``FalconConfig``; refuse the parts we do not implement."""
        check_model_type(cls, hf_config)  # first: the checks below read this type's fields
        if getattr(hf_config, "alibi", False):
            raise ValueError("alibi=True (Falcon-RW) is not supported here: only rotary embeddings")
        if not getattr(hf_config, "parallel_attn", True):  # (the new architecture fails in HF too)
            raise ValueError("parallel_attn=False is not supported here: only the parallel block")
        new_architecture = getattr(hf_config, "new_decoder_architecture", False)
        if not new_architecture and getattr(hf_config, "num_ln_in_parallel_attn", None) == 2:
            raise ValueError(  # transformers' old block has one LayerNorm: its forward fails too
                "num_ln_in_parallel_attn=2 needs new_decoder_architecture=True"
            )
        if getattr(hf_config, "activation", "gelu") != "gelu":
            raise ValueError(f"activation ({hf_config.activation!r}) must be 'gelu'")
        return fields_from_hf(cls, hf_config, rope_theta=rope_theta_from_hf(hf_config))


class FalconLMAttention(FusedQKVAttention):
    """Fused-QKV attention with ``g`` key/value heads and RoPE (HF names: ``query_key_value``, ``dense``).

    NEW vs Llama: one ``query_key_value`` matrix in the falcon layout instead of ``q_proj k_proj
    v_proj`` (:func:`~demos.layers.fused_qkv.split_fused_qkv`), and ``dense`` for ``o_proj``.
    """

    def __init__(self, config: FalconLMConfig) -> None:
        h, g, d = config.num_attention_heads, config.kv_heads, config.head_dim
        super().__init__(config.hidden_size, h, g, d, bias=config.bias, layout="falcon")

    @classmethod
    def from_hf(cls, hf_attention: nn.Module) -> FalconLMAttention:
        """Build from a transformers ``FalconAttention`` and copy its weights."""
        return load_hf_weights(cls(FalconLMConfig.from_hf(hf_attention.config)), hf_attention)


class FalconLMBlock(nn.Module):
    """Parallel block: ``x + attn(norm_a(x)) + mlp(norm_m(x))``.

    Falcon-7B has one LayerNorm (``input_layernorm``, ``norm_a == norm_m``); the new architecture
    has two (``ln_attn`` and ``ln_mlp``) unless ``num_ln_in_parallel_attn == 1``.
    """

    def __init__(self, config: FalconLMConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = check_layer_idx(layer_idx, config)
        c, eps = config.hidden_size, config.layer_norm_epsilon
        self.self_attention = FalconLMAttention(config)  # NEW vs Llama: fused QKV
        # NEW vs Llama: a GELU MLP, not SwiGLU
        self.mlp = GeluMLP(config.hidden_size, config.ffn_hidden_size, config.bias)
        self.two_norms = config.num_ln_in_parallel_attn == 2
        if self.two_norms:  # NEW vs Llama: LayerNorm with a bias, one per branch (40B/180B)
            self.ln_attn = nn.LayerNorm(c, eps=eps)
            self.ln_mlp = nn.LayerNorm(c, eps=eps)
        else:  # NEW vs Llama: one LayerNorm for both branches (7B)
            self.input_layernorm = nn.LayerNorm(c, eps=eps)

    def substeps(self) -> tuple[SubStep, ...]:
        """The sub-steps in forward order, for :func:`demos.debugging.first_divergence`."""
        if self.two_norms:
            norms = (
                SubStep("attention norm", "norm", "ln_attn"),
                SubStep("MLP norm", "norm", "ln_mlp"),
            )
        else:
            norms = (SubStep("input norm", "norm", "input_layernorm"),)
        return (
            *norms,
            SubStep("attention", "attention", "self_attention"),
            SubStep("MLP", "mlp", "mlp"),
            SubStep("residual after attention + MLP", "residual"),
        )

    def forward(self, x: torch.Tensor, *attention_args: Any) -> torch.Tensor:
        """``x (b, t, c)``; ``attention_args`` as in ``LlamaLMBlock``: ``(position_embeddings, cache,
        attention_mask)``, passed on to the attention."""
        if self.two_norms:
            attn_in, mlp_in = self.ln_attn(x), self.ln_mlp(x)  # (b, t, c) each
        else:
            attn_in = mlp_in = self.input_layernorm(x)  # NEW vs Llama: one norm feeds both
        attn_out = self.self_attention(attn_in, *attention_args)  # (b, t, c)
        return x + (self.mlp(mlp_in) + attn_out)  # NEW vs Llama: both branches read x, not x + attn


class FalconLM(DecoderLM):
    """:class:`~demos.models.decoder.DecoderLM`'s shell with Falcon's block, final LayerNorm and names.

    Embedding, the loop over blocks with RoPE and the KV cache, the tied head, ``new_cache``,
    ``generate`` and ``from_hf`` are the shell's (as Llama's); each cache holds the ``g`` key/value heads.
    """

    config_class = FalconLMConfig  # NEW vs Llama: FalconConfig's fields
    block_class = FalconLMBlock  # NEW vs Llama: the parallel block
    module_names = ("transformer", "word_embeddings", "h", "ln_f")  # NEW vs Llama: HF's names

    def make_final_norm(self, config: FalconLMConfig) -> nn.Module:
        return nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)  # NEW vs Llama
