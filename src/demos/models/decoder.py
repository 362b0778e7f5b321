"""The decoder shell every transformer language model here shares, and what a block declares about itself.

:class:`DecoderLM` is the part no family changes: the embedding, the loop over blocks with the RoPE
table and the cache, the final norm and the (tied) head. Each block is built with its layer index
(``make_block(config, layer_idx)``), as transformers builds ``DecoderLayer(config, layer_idx)``, so a
per-layer choice is data in the config: ``config.layer_types[i]`` says whether layer ``i`` attends
with a sliding window or over everything (Qwen2's ``max_window_layers``), and a family may choose
another MLP or another mixer for a layer in its own ``make_block``. A family changes a part by
overriding the hook that builds it (``make_embedding``, ``make_block``, ``make_final_norm``,
``make_head``, ``position_embeddings``, ``new_cache``), never by replacing the part afterwards.

Every block declares its sub-steps (:class:`SubStep`): its norms, its attention or mixer, its MLP and
the residual sums, in the order its forward pass computes them. :func:`demos.debugging.first_divergence`
asks the block for them instead of guessing from module names.

Axes:
    b  batch
    t  new tokens in this call
    s  all tokens so far (cache + new)
    c  hidden size
    v  vocabulary size

Reference implementation:
    transformers==5.23.0, models/llama/modeling_llama.py::LlamaModel, ::LlamaForCausalLM;
    models/qwen2/modeling_qwen2.py::Qwen2Attention (``config.layer_types[layer_idx]``)
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Any, ClassVar

import torch
from torch import nn

from demos.generation import GenerationMixin, position_ids
from demos.layers.kv_cache import KVCache
from demos.layers.rope import rope_cos_sin
from demos.validation import check_attention_mask, check_positive_int, check_token_ids
from demos.weights import load_hf_weights

# transformers' names of the per-layer attention kinds (config.layer_types)
LAYER_TYPES = ("full_attention", "sliding_attention")
SUBSTEP_KINDS = ("norm", "attention", "mixer", "mlp", "residual")


@dataclass(frozen=True)
class SubStep:
    """One sub-step of a block, as the block declares it.

    ``module`` is the block's child whose output this sub-step is (``None``: the block's own output,
    a residual sum). A residual that is no module's output is rebuilt as the block's input plus the
    output of the child named by ``adds``.
    """

    name: str  # as a report says it: "input norm", "attention", "residual after MLP"
    kind: str  # one of SUBSTEP_KINDS
    module: str | None = None  # the child's name (transformers' name), or None: the block's output
    adds: str | None = None  # rebuilt residual: block input + this child's output

    def __post_init__(self) -> None:
        if self.kind not in SUBSTEP_KINDS:
            raise ValueError(f"kind ({self.kind!r}) must be one of {SUBSTEP_KINDS}")
        if self.module is not None and self.adds is not None:
            raise ValueError("a sub-step is a child's output or a rebuilt residual, not both")


def sequential_substeps(
    input_norm: str, attention: str, post_norm: str, mlp: str
) -> tuple[SubStep, ...]:
    """``x + attn(norm(x))``, then ``+ mlp(norm(.))``: the sub-steps of a pre-norm sequential block."""
    return (
        SubStep("input norm", "norm", input_norm),
        SubStep("attention", "attention", attention),
        SubStep("residual after attention", "residual", adds=attention),
        SubStep("post-attention norm", "norm", post_norm),
        SubStep("MLP", "mlp", mlp),
        SubStep("residual after MLP", "residual"),
    )


def check_layer_types(
    layer_types: tuple[str, ...] | None, num_hidden_layers: int, sliding_window: int | None
) -> tuple[str, ...] | None:
    """``layer_types`` as a tuple; ``ValueError`` unless it has one known kind per layer and a window
    exists wherever a layer slides."""
    if layer_types is None:
        return None
    if isinstance(layer_types, str) or not hasattr(layer_types, "__len__"):
        raise ValueError(f"layer_types must be a sequence of {LAYER_TYPES}, got {layer_types!r}")
    layer_types = tuple(layer_types)
    if len(layer_types) != num_hidden_layers:
        raise ValueError(
            f"layer_types has {len(layer_types)} entries for num_hidden_layers ({num_hidden_layers})"
        )
    unknown = sorted({t for t in layer_types if t not in LAYER_TYPES}, key=str)
    if unknown:
        raise ValueError(f"layer_types {unknown} not supported here: only {LAYER_TYPES}")
    if "sliding_attention" in layer_types and sliding_window is None:
        raise ValueError("layer_types has 'sliding_attention' layers but sliding_window is None")
    return layer_types


class DecoderLM(GenerationMixin, nn.Module):
    """Decoder plus the language-model head: token ids in, next-token logits out.

    Hooks (class attributes and methods a family overrides): ``config_class`` reads the
    transformers config; ``block_class`` is built as ``block_class(config, layer_idx)`` by
    :meth:`make_block`; ``module_names`` are transformers' names (backbone, embedding, blocks,
    final norm), so weights copy with no rename map; :meth:`make_embedding`,
    :meth:`make_final_norm`, :meth:`make_head` build the other parts; :meth:`position_embeddings`
    gives RoPE's tables; :meth:`new_cache` one cache per layer.
    """

    config_class: ClassVar[type]  # hook: the config that reads the HF config
    block_class: ClassVar[type]  # hook: one decoder block, block_class(config, layer_idx)
    module_names: ClassVar[tuple[str, str, str, str]] = ("model", "embed_tokens", "layers", "norm")

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        backbone_name, embed_name, layers_name, norm_name = self.module_names
        backbone = nn.Module()  # transformers' ...Model, a container: the loop is in forward
        backbone.add_module(embed_name, self.make_embedding(config))
        blocks = (self.make_block(config, i) for i in range(config.num_hidden_layers))
        backbone.add_module(layers_name, nn.ModuleList(blocks))
        backbone.add_module(norm_name, self.make_final_norm(config))
        self.add_module(backbone_name, backbone)
        self.lm_head = self.make_head(config)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.embed.weight

    # ---- hooks: the parts, built from the config ----

    def make_embedding(self, config: Any) -> nn.Module:
        """Hook: token ids ``(b, t)`` -> ``(b, t, c)``."""
        return nn.Embedding(config.vocab_size, config.hidden_size)

    def make_block(self, config: Any, layer_idx: int) -> nn.Module:
        """Hook: block ``layer_idx``; a family with several kinds of block chooses here."""
        return self.block_class(config, layer_idx)

    def make_final_norm(self, config: Any) -> nn.Module:
        """Hook: the norm after the last block (Llama: RMSNorm)."""
        from demos.layers.norms import RMSNorm

        return RMSNorm(config.hidden_size, config.rms_norm_eps)

    def make_head(self, config: Any) -> nn.Linear:
        """Hook: the output matrix ``(c -> v)``; tied to the embedding when the config says so."""
        return nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    def position_embeddings(
        self, positions: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hook: RoPE's ``(cos, sin)`` for ``positions`` ``(t,)`` or ``(b, t)``, each ``(..., t, d)``."""
        return rope_cos_sin(positions, self.config.head_dim, self.config.rope_theta, dtype)

    def new_cache(self, batch_size: int | None = None) -> list[KVCache]:
        """Hook: one empty :class:`KVCache` per layer (they size themselves on the first update)."""
        return [KVCache() for _ in self.blocks]

    # ---- the parts, by role ----

    def _part(self, i: int) -> nn.Module:
        return getattr(getattr(self, self.module_names[0]), self.module_names[i])

    @property
    def embed(self) -> nn.Module:
        return self._part(1)

    @property
    def blocks(self) -> nn.ModuleList:
        return self._part(2)

    @property
    def norm_f(self) -> nn.Module:
        return self._part(3)

    def forward(
        self,
        input_ids: torch.Tensor,
        cache: list[KVCache] | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Args:
            input_ids: ``(b, t)`` token ids, each in ``[0, vocab_size)``.
            cache: from :meth:`new_cache`; the new tokens continue what it holds.
            attention_mask: ``(b, cached + t)``, 1 for a real token, 0 for left padding; the
                positions are counted over real tokens (:func:`demos.generation.position_ids`).

        Returns:
            ``(b, t, v)`` logits for the token after each position.
        """
        check_token_ids(input_ids, self.config.vocab_size)
        if cache is not None and (not isinstance(cache, list) or len(cache) != len(self.blocks)):
            got = len(cache) if isinstance(cache, list) else type(cache).__name__
            raise ValueError(
                f"cache must hold one KVCache per layer ({len(self.blocks)}), got {got}"
            )
        b, t = input_ids.shape
        past = 0 if cache is None else len(cache[0])
        attention_mask = check_attention_mask(attention_mask, b, past + t)
        positions = position_ids(t, past, attention_mask, input_ids.device)  # (t,) or (b, t)
        x = self.embed(input_ids)  # (b, t, c)
        cos_sin = self.position_embeddings(positions, x.dtype)  # each (t, r) or (b, t, r)
        for i, block in enumerate(self.blocks):
            x = block(x, cos_sin, None if cache is None else cache[i], attention_mask)  # (b, t, c)
        return self.lm_head(self.norm_f(x))  # (b, t, v)

    @classmethod
    def from_hf(cls, hf_model: nn.Module) -> DecoderLM:
        """Build from a transformers ``...ForCausalLM`` and copy its weights (same names, no renaming).

        ``ValueError`` (from ``config_class.from_hf``) for a config of a ``model_type`` this class
        does not serve, or with a setting that changes the numerics and is not implemented here.
        """
        if not isinstance(hf_model, nn.Module) or not hasattr(hf_model, "config"):
            raise ValueError(
                f"{cls.__name__}.from_hf takes a transformers model (a ...ForCausalLM, with its "
                f"weights), got {type(hf_model).__name__}; to read a config alone use "
                f"{cls.config_class.__name__}.from_hf(config)"
            )
        return load_hf_weights(cls(cls.config_class.from_hf(hf_model.config)), hf_model)


def check_layer_idx(layer_idx: int, config: Any) -> int:
    """``ValueError`` unless ``0 <= layer_idx < num_hidden_layers``."""
    if isinstance(layer_idx, bool) or not isinstance(layer_idx, Integral):
        raise ValueError(f"layer_idx must be an integer, got {layer_idx!r}")
    check_positive_int("num_hidden_layers", config.num_hidden_layers)
    if not 0 <= layer_idx < config.num_hidden_layers:
        raise ValueError(
            f"layer_idx ({layer_idx}) must lie in [0, num_hidden_layers = {config.num_hidden_layers})"
        )
    return layer_idx
