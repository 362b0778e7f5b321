"""Matmul FLOPs of a Llama-style decoder's forward pass, split the way a long context splits them.

Every weight matrix costs ``2 * rows * cols`` FLOPs per token (a multiply and an add), whatever the
length: projections, MLP and output head grow *linearly* with the tokens. The two attention matmuls,
``Q K^T`` and ``weights V``, cost ``2 * t * s * d`` each per head: with ``t = s = L`` they grow with
the *square* of the length. XGen's case for training at 2K first and 8K last is this second term.

Counted as ``torch.utils.flop_counter.FlopCounterMode`` counts (``2 m k n`` per ``(m, k) @ (k, n)``)
and as eager attention computes: the whole ``t x s`` score matrix, the causal half masked *after* the
matmul (a causal kernel such as FlashAttention can skip most of it; this count does not). Norms,
RoPE, softmax and SiLU are not matmuls and are left out (a few per cent of the total at 7B).

Axes:
    b  batch
    t  query length (new tokens)
    s  key length (cached + new), s = past + t
    h  query heads
    g  key/value heads
    d  head dimension
    c  hidden size
    f  MLP width
    v  vocabulary

References:
    vaswani2017attention  scaled dot-product attention, Eq. (1): the two matmuls counted here.
    nijkamp2023xgen       XGen-7B, trained stage-wise on 2K, 4K then 8K tokens.

Reference implementation:
    transformers==5.23.0, models/llama/modeling_llama.py::LlamaForCausalLM (eager attention),
    counted by torch==2.13.0, utils/flop_counter.py::FlopCounterMode (aten.mm and aten.bmm).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Any

from demos.validation import check_positive_int


@dataclass(frozen=True)
class ForwardFlops:
    """Matmul FLOPs of one forward pass, term by term (Python ints: exact at any size)."""

    attention: int  # Q K^T and weights V in every layer: 4 b h t s d per layer
    projections: int  # q, k, v and o in every layer
    mlp: int  # gate, up and down in every layer
    head: int  # the output matrix, c -> v

    @property
    def rest(self) -> int:
        """Everything but the attention matmuls: linear in the number of tokens."""
        return self.projections + self.mlp + self.head

    @property
    def total(self) -> int:
        return self.attention + self.rest


def score_flops(batch: int, heads: int, length: int, head_dim: int) -> int:
    """FLOPs of one layer's score matrix ``Q K^T`` for ``length`` tokens: ``2 b h L^2 d``.

    ``(b, h, L, d) @ (b, h, d, L)`` is ``b h`` products of ``L x d`` by ``d x L``: ``L^2`` dot
    products of length ``d``, each ``d`` multiplies and ``d`` adds. ``ValueError`` unless every
    argument is a positive integer.
    """
    for name, value in (
        ("batch", batch),
        ("heads", heads),
        ("length", length),
        ("head_dim", head_dim),
    ):
        check_positive_int(name, value)
    return 2 * batch * heads * length * length * head_dim


def forward_flops(
    *,
    num_hidden_layers: int,
    hidden_size: int,
    num_attention_heads: int,
    num_key_value_heads: int,
    head_dim: int,
    intermediate_size: int,
    vocab_size: int,
    length: int,
    batch: int = 1,
    past: int = 0,
) -> ForwardFlops:
    """Matmul FLOPs of a Llama-style forward over ``length`` new tokens after ``past`` cached ones.

    Per layer: ``2 b t c (h d + 2 g d)`` for q, k, v; ``2 b t (h d) c`` for o; ``3 * 2 b t c f`` for
    the gated MLP; ``2 * 2 b h t s d`` for the two attention matmuls (``s = past + t``; grouped
    keys are repeated to ``h`` heads before them, so they count ``h``, not ``g``). Once:
    ``2 b t c v`` for the head. The embedding is a lookup, not a matmul.

    ``ValueError`` unless the sizes are positive integers and ``past`` an integer ``>= 0``.
    """
    sizes = dict(
        num_hidden_layers=num_hidden_layers,
        hidden_size=hidden_size,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        head_dim=head_dim,
        intermediate_size=intermediate_size,
        vocab_size=vocab_size,
        length=length,
        batch=batch,
    )
    for name, value in sizes.items():
        check_positive_int(name, value)
    if isinstance(past, bool) or not isinstance(past, Integral) or past < 0:
        raise ValueError(f"past ({past!r}) must be an integer >= 0")
    n, c, h, g, d = (
        num_hidden_layers,
        hidden_size,
        num_attention_heads,
        num_key_value_heads,
        head_dim,
    )
    tokens = batch * length  # b t: every linear layer sees each new token once
    s = past + length  # keys each query is scored against (masked ones included)
    return ForwardFlops(
        attention=n * 2 * 2 * batch * h * length * s * d,
        projections=n * 2 * tokens * (c * (h + 2 * g) * d + h * d * c),
        mlp=n * 3 * 2 * tokens * c * intermediate_size,
        head=2 * tokens * c * vocab_size,
    )


def forward_flops_of(config: Any, length: int, batch: int = 1, past: int = 0) -> ForwardFlops:
    """:func:`forward_flops` with the sizes read from a transformers Llama-style config.

    ``head_dim`` is the config's, or ``hidden_size // num_attention_heads`` when it has none;
    ``num_key_value_heads`` defaults to ``num_attention_heads`` as in transformers.
    """
    h = config.num_attention_heads
    g = getattr(config, "num_key_value_heads", None) or h
    d = getattr(config, "head_dim", None) or config.hidden_size // h
    return forward_flops(
        num_hidden_layers=config.num_hidden_layers,
        hidden_size=config.hidden_size,
        num_attention_heads=h,
        num_key_value_heads=g,
        head_dim=d,
        intermediate_size=config.intermediate_size,
        vocab_size=config.vocab_size,
        length=length,
        batch=batch,
        past=past,
    )


def counted_flops(model: Any, *args: Any, **kwargs: Any) -> dict[str, int]:
    """Run ``model(*args, **kwargs)`` under ``FlopCounterMode`` without gradients and return its
    matmul FLOPs by operator: ``{"mm": ..., "bmm": ...}`` (``aten.mm``: every ``nn.Linear``;
    ``aten.bmm``: the batched attention matmuls), plus any other operator it counted.

    Works on the ``meta`` device, where a 7B model's forward costs no memory and no time.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(*args, **kwargs)
    totals = counter.get_flop_counts().get("Global", {})
    return {str(op).removeprefix("aten.").split(".")[0]: int(n) for op, n in totals.items()}


def meta_forward_costs(hf_model: Any, length: int, batch: int = 1) -> tuple[dict[str, int], int]:
    """``(FLOPs by operator, KV-cache bytes)`` of one forward of ``length`` tokens through a
    transformers model on the ``meta`` device (``demos.registry.hf.meta_model``): shapes only, so a
    7B model at 8K tokens costs neither memory nor time. Eager attention is switched on (the
    count assumes it); the cache is transformers' ``DynamicCache``, measured by
    :func:`demos.layers.kv_cache.cache_bytes` in the model's dtype.
    """
    import torch

    from demos.layers.kv_cache import cache_bytes

    check_positive_int("length", length)
    check_positive_int("batch", batch)
    hf_model.config._attn_implementation = "eager"
    ids = torch.zeros(batch, length, dtype=torch.long, device="meta")
    mask = torch.ones(
        batch, length, dtype=torch.long, device="meta"
    )  # skips a data-dependent check
    holder: dict[str, Any] = {}

    def forward(ids: torch.Tensor) -> None:
        holder["cache"] = hf_model(ids, attention_mask=mask, use_cache=True).past_key_values

    flops = counted_flops(forward, ids)
    return flops, cache_bytes(holder["cache"])
