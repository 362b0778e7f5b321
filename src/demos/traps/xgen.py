"""The XGen chapter's traps: the cost of a long context counted as if it were short.

Two estimates that look right at 2K and go wrong as the context grows: forward FLOPs as ``2 N`` per
token (every weight once, the attention matmuls left out, so the cost looks linear in the length),
and a KV cache sized with the ``h`` query heads instead of the ``g`` key/value heads (right for
XGen's multi-head attention, where ``g = h``, wrong by ``h / g`` for any grouped-query model).
Measured against ``torch.utils.flop_counter.FlopCounterMode`` on transformers' ``LlamaForCausalLM``
at XGen-7B's released shape (on the meta device), and against the tensors transformers'
``DynamicCache`` holds (transformers==5.23.0).
"""

from __future__ import annotations

import torch

from demos.layers.flops import forward_flops_of, meta_forward_costs
from demos.layers.kv_cache import cache_bytes, kv_cache_bytes
from demos.traps import Measured, Trap
from demos.traps.tiny import seeded, tiny_reference, token_ids

LENGTHS = (2048, 4096, 8192)  # XGen's three stages


def measure_flops_linear_in_length() -> Measured:
    """Right: :func:`forward_flops_of`; wrong: ``2 N`` per token, N the weights of every matmul.
    Both against FlopCounterMode's count of a meta-device XGen-7B-8K forward at 2K, 4K and 8K."""
    from demos.registry import model_size
    from demos.registry.hf import meta_model

    model = meta_model(model_size("XGen-7B-8K"))
    weights = sum(p.numel() for n, p in model.named_parameters() if "norm" not in n)
    weights -= model.model.embed_tokens.weight.numel()  # a lookup, not a matmul
    right, wrong, counted = [], [], []
    for length in LENGTHS:
        flops, _ = meta_forward_costs(model, length)
        counted.append(float(sum(flops.values())))
        right.append(float(forward_flops_of(model.config, length).total))
        wrong.append(float(2 * weights * length))  # the wrong line: no L^2 term
    quantity = "forward matmul FLOPs of XGen-7B-8K at 2K, 4K and 8K tokens (FlopCounterMode, meta)"
    return Measured.of(right, wrong, counted, tolerance=0.5, quantity=quantity, exact=True)


def measure_kv_with_query_heads() -> Measured:
    """Right: ``kv_cache_bytes`` with ``g``; wrong: with ``h``. Both against the bytes of the
    ``DynamicCache`` a tiny grouped-query Llama (h = 16, g = 2, as Llama-2-70B's ratio) holds."""
    from demos.catalog import ROWS

    row = ROWS["llama2-70b-like"]
    with seeded(0):
        reference = tiny_reference("llama", **row.config)
        ids = token_ids(reference.config.vocab_size)
    c = reference.config
    b, t = ids.shape
    with torch.no_grad():
        held = cache_bytes(reference(ids, use_cache=True).past_key_values)
    size = reference.dtype.itemsize
    right = kv_cache_bytes(c.num_hidden_layers, c.num_key_value_heads, c.head_dim, t, b, size)
    wrong = kv_cache_bytes(c.num_hidden_layers, c.num_attention_heads, c.head_dim, t, b, size)
    quantity = (
        "bytes of transformers' DynamicCache, tiny Llama with h = 16, g = 2, 2 x 12 tokens, fp32"
    )
    return Measured.of([float(right)], [float(wrong)], [float(held)], 0.5, quantity, exact=True)


TRAPS = [
    Trap(
        chapter="xgen",
        title="Forward FLOPs as 2N per token: attention's L^2 term left out",
        wrong="flops = 2 * n_weights * tokens",
        right="flops = 2 * n_weights * tokens + 4 * layers * b * h * t * s * d",
        shows="the cost of every long sequence: 24 % of XGen-7B's FLOPs at 8K",
        measure=measure_flops_linear_in_length,
    ),
    Trap(
        chapter="xgen",
        title="KV cache sized with the query heads h instead of the key/value heads g",
        wrong="2 * layers * num_attention_heads * head_dim * bytes * tokens",
        right="2 * layers * num_key_value_heads * head_dim * bytes * tokens",
        shows="every grouped-query model's cache, h / g times too large",
        measure=measure_kv_with_query_heads,
    ),
]
