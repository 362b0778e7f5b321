"""A StripedHyena-style hybrid at toy scale: Hyena blocks and grouped-query attention blocks, striped.

StripedHyena-7B alternates gated-convolution (Hyena) blocks with grouped-query attention blocks
[together2023stripedhyena]: its released configuration puts attention at the odd layer indices and
Hyena at the even ones, 32 heads with ``proj_groups: 4`` (8 key/value heads), RoPE base 500,000
[stripedhyena_repo]. Here the stack is :class:`~demos.models.decoder.DecoderLM` with a block chosen
per layer from ``config.mixer_types`` (data, as transformers' ``layer_types``): an attention layer
is Llama's block unchanged (proven against ``LlamaForCausalLM`` by the conformance table and by this
chapter's tests), a Hyena layer swaps attention for :class:`~demos.layers.hyena.HyenaOperator`.

This module lives in ``demos/toys/``, not ``demos/models/``: the catalogue's model modules are named
after a transformers ``model_type`` and proven against that class, and StripedHyena has none
(its checkpoints need remote code, which this book never runs). No released weights load into it.

Axes:
    b  batch
    t  sequence length
    c  hidden size
    v  vocabulary size

References:
    together2023stripedhyena  the hybrid of gated convolutions and grouped-query attention.
    stripedhyena_repo         configs/7b-sh-32k-v0.1.yml (layer indices, proj_groups, state_size).
    poli2023hyena             the Hyena operator.

Reference implementation (read, not run):
    togethercomputer/stripedhyena, stripedhyena/model.py::ParallelGatedConvBlock, ::AttentionBlock,
    ::get_block (a block per layer index, chosen from attn_layer_idxs / hyena_layer_idxs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from demos.layers.hyena import HyenaConfig, HyenaOperator
from demos.layers.kv_cache import KVCache
from demos.models.decoder import DecoderLM, SubStep, check_layer_idx
from demos.models.llama import LlamaLMBlock, LlamaLMConfig

MIXER_TYPES = ("hyena", "attention")


def striped(num_layers: int, first: str = "hyena") -> tuple[str, ...]:
    """``("hyena", "attention", "hyena", ...)``: StripedHyena-7B's pattern (Hyena at even indices)."""
    other = MIXER_TYPES[1 - MIXER_TYPES.index(first)]
    return tuple(first if i % 2 == 0 else other for i in range(num_layers))


@dataclass(frozen=True)
class StripedHyenaConfig(LlamaLMConfig):
    """Llama's fields for the attention layers, plus which mixer each layer uses and Hyena's shape."""

    mixer_types: tuple[str, ...] | None = None  # per layer "hyena" or "attention"; None: striped()
    hyena_order: int = 2  # N of the Hyena recurrence (StripedHyena: 2)
    short_filter_length: int = 3  # the depthwise FIR on Hyena's projections (StripedHyena: 3)
    filter_width: int = 16  # width of the implicit filter's MLP

    def __post_init__(self) -> None:
        super().__post_init__()
        kinds = self.mixer_types
        if kinds is None:
            kinds = striped(self.num_hidden_layers)
        if isinstance(kinds, str) or len(kinds) != self.num_hidden_layers:
            raise ValueError(
                f"mixer_types ({kinds!r}) must name one of {MIXER_TYPES} for each of the "
                f"{self.num_hidden_layers} layers"
            )
        unknown = sorted({k for k in kinds if k not in MIXER_TYPES}, key=str)
        if unknown:
            raise ValueError(f"mixer_types {unknown} not supported: only {MIXER_TYPES}")
        object.__setattr__(self, "mixer_types", tuple(kinds))
        self.hyena_config()  # validates Hyena's fields

    def hyena_config(self) -> HyenaConfig:
        return HyenaConfig(
            self.hidden_size,
            order=self.hyena_order,
            short_filter_length=self.short_filter_length,
            filter_width=self.filter_width,
        )


class HyenaBlock(LlamaLMBlock):
    """Llama's pre-norm block with the Hyena operator in attention's place (``mixer``).

    ``x + hyena(norm(x))`` then ``x + mlp(norm(x))``, as StripedHyena's ParallelGatedConvBlock
    (its ``projections`` and ``out_filter_dense`` are the operator's ``in_proj`` and ``out_proj``).
    """

    def __init__(self, config: StripedHyenaConfig, layer_idx: int) -> None:
        nn.Module.__init__(self)
        self.layer_idx = check_layer_idx(layer_idx, config)
        self.mixer = HyenaOperator(config.hyena_config())
        self.mlp = self.make_mlp(config, layer_idx)
        self.input_layernorm = self.make_norm(config)
        self.post_attention_layernorm = self.make_norm(config)

    def substeps(self) -> tuple[SubStep, ...]:
        return (
            SubStep("input norm", "norm", "input_layernorm"),
            SubStep("Hyena mixer", "mixer", "mixer"),
            SubStep("residual after mixer", "residual", adds="mixer"),
            SubStep("post-mixer norm", "norm", "post_attention_layernorm"),
            SubStep("MLP", "mlp", "mlp"),
            SubStep("residual after MLP", "residual"),
        )

    def forward(
        self,
        x: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: KVCache | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if cache is not None:
            raise ValueError(
                "a Hyena block keeps no cache here: run the whole sequence, cache=None"
            )
        if attention_mask is not None and not bool(attention_mask.all()):
            raise ValueError("a Hyena block takes no padding: attention_mask must be all ones")
        x = x + self.mixer(self.input_layernorm(x))  # (b, t, c): no RoPE, order is in the filter
        return x + self.mlp(self.post_attention_layernorm(x))  # (b, t, c)


class StripedHyenaLM(DecoderLM):
    """The decoder shell with a block per layer chosen from ``config.mixer_types``."""

    config_class = StripedHyenaConfig
    block_class = LlamaLMBlock

    def make_block(self, config: StripedHyenaConfig, layer_idx: int) -> nn.Module:
        if config.mixer_types[layer_idx] == "hyena":
            return HyenaBlock(config, layer_idx)
        return LlamaLMBlock(config, layer_idx)  # grouped-query attention with RoPE

    def forward(self, input_ids: torch.Tensor, cache=None, attention_mask=None) -> torch.Tensor:
        """``(b, t)`` ids -> ``(b, t, v)`` logits; ``ValueError`` for a cache (none is kept here)."""
        if cache is not None:
            raise ValueError("StripedHyenaLM keeps no cache: pass the whole sequence, cache=None")
        return super().forward(input_ids, None, attention_mask)


# ---- the proof against transformers where the hybrid coincides with Llama ----


def from_llama(hf_model: nn.Module, mixer_types: tuple[str, ...]) -> StripedHyenaLM:
    """A hybrid whose attention layers, embedding, final norm and head are ``hf_model``'s (a
    transformers ``LlamaForCausalLM``, its layers taken in order), with fresh Hyena layers between.

    ``ValueError`` unless ``mixer_types`` has as many ``"attention"`` layers as ``hf_model``."""
    from dataclasses import fields

    base = LlamaLMConfig.from_hf(hf_model.config)
    n_attention = sum(kind == "attention" for kind in mixer_types)
    if n_attention != base.num_hidden_layers:
        raise ValueError(
            f"mixer_types has {n_attention} attention layers, the Llama has {base.num_hidden_layers}"
        )
    kept = {f.name: getattr(base, f.name) for f in fields(LlamaLMConfig)}
    kept["num_hidden_layers"] = len(mixer_types)
    model = StripedHyenaLM(StripedHyenaConfig(**kept, mixer_types=tuple(mixer_types)))
    attention_idx = [i for i, kind in enumerate(mixer_types) if kind == "attention"]
    state = {}
    for name, tensor in hf_model.state_dict().items():
        parts = name.split(".")
        if parts[:2] == ["model", "layers"]:
            parts[2] = str(attention_idx[int(parts[2])])  # HF layer j -> our j-th attention layer
        state[".".join(parts)] = tensor
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(".mixer." not in n and "layers" not in n for n in missing):
        raise ValueError(f"weights did not map: missing {missing}, unexpected {unexpected}")
    return model.to(next(hf_model.parameters()).dtype)


def silence_hyena_(model: StripedHyenaLM) -> StripedHyenaLM:
    """Zero each Hyena block's out-projection and MLP down-projection, in place: the block becomes the
    identity, so the hybrid computes what its attention layers alone compute."""
    with torch.no_grad():
        for block in model.blocks:
            if isinstance(block, HyenaBlock):
                for p in (*block.mixer.out_proj.parameters(), block.mlp.down_proj.weight):
                    p.zero_()
    return model


def llama_parity_pairs(hf_model: nn.Module, mixer_types: tuple[str, ...], input_ids: torch.Tensor):
    """``{"logits": ..., "grad <hf name>": ...}`` of the silenced hybrid against ``hf_model``: both
    through one random linear loss; the gradients of every transformers parameter, paired by name."""
    ours = silence_hyena_(from_llama(hf_model, mixer_types))
    attention_idx = [i for i, kind in enumerate(mixer_types) if kind == "attention"]
    ref_logits = hf_model(input_ids).logits
    our_logits = ours(input_ids)
    w = torch.randn_like(ref_logits)
    hf_model.zero_grad(set_to_none=True)
    (ref_logits * w).sum().backward()
    (our_logits * w).sum().backward()
    ours_params = dict(ours.named_parameters())
    pairs = {"logits": (our_logits.detach(), ref_logits.detach())}
    for name, p in hf_model.named_parameters():
        parts = name.split(".")
        if parts[:2] == ["model", "layers"]:
            parts[2] = str(attention_idx[int(parts[2])])
        pairs[f"grad {name}"] = (ours_params[".".join(parts)].grad, p.grad)
    return pairs
