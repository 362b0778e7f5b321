"""The FLOP formula against torch's FlopCounterMode, and the KV-cache bytes against real caches.

Each formula term is compared exactly (integers) with what FlopCounterMode counts on a forward of
our model and of transformers' ``LlamaForCausalLM`` (eager): ``aten.mm`` is every ``nn.Linear``
(projections, MLP, head: the formula's ``rest``), ``aten.bmm`` the two attention matmuls (its
``attention``). The expected values come from torch's counter, never from the formula.
"""

from __future__ import annotations

import pytest
import torch

from demos.catalog import ROWS
from demos.layers.flops import (
    counted_flops,
    forward_flops,
    forward_flops_of,
    meta_forward_costs,
    score_flops,
)
from demos.layers.kv_cache import cache_bytes, kv_cache_bytes

LLAMA_ROWS = ["llama-mha", "llama-gqa", "llama-mqa", "llama2-70b-like"]


@pytest.mark.parametrize("row", LLAMA_ROWS)
@pytest.mark.parametrize("b, t", [(1, 1), (2, 9), (1, 17)])
def test_formula_equals_flop_counter_on_ours_and_transformers(row, b, t):
    ours, reference = ROWS[row].pair()
    ids = torch.randint(0, reference.config.vocab_size, (b, t))
    expected = forward_flops_of(reference.config, t, b)
    for model in (ours, reference):
        counted = counted_flops(model, ids)
        assert set(counted) == {"mm", "bmm"}, counted
        assert counted["bmm"] == expected.attention
        assert counted["mm"] == expected.rest


@pytest.mark.parametrize("row", ["llama-mha", "llama-gqa"])
def test_formula_with_a_cache_equals_flop_counter(row):
    """One decoding step after 9 cached tokens: 1 query against 10 keys."""
    ours, _ = ROWS[row].pair()
    ids = torch.randint(0, ours.config.vocab_size, (2, 10))
    cache = ours.new_cache()
    with torch.no_grad():
        ours(ids[:, :9], cache=cache)
    counted = counted_flops(ours, ids[:, 9:], cache=cache)
    expected = forward_flops_of(ours.config, 1, 2, past=9)
    assert (counted["bmm"], counted["mm"]) == (expected.attention, expected.rest)


def test_formula_equals_flop_counter_on_xgen_7b_at_its_stage_lengths():
    """The full-size XGen-7B-8K on the meta device: the chapter's table, proven at 7B."""
    from demos.registry import model_size
    from demos.registry.hf import meta_model

    model = meta_model(model_size("XGen-7B-8K")).to(torch.bfloat16)
    for length in (2048, 8192):
        counted, held = meta_forward_costs(model, length)
        expected = forward_flops_of(model.config, length)
        assert (counted["bmm"], counted["mm"]) == (expected.attention, expected.rest)
        assert held == kv_cache_bytes(32, 32, 128, length, 1, 2)  # bf16: 2 bytes per value


def test_score_flops_is_half_the_attention_term_of_one_layer():
    one = forward_flops(
        num_hidden_layers=1, hidden_size=32, num_attention_heads=4, num_key_value_heads=2,
        head_dim=8, intermediate_size=56, vocab_size=97, length=9, batch=2,
    )  # fmt: skip
    assert 2 * score_flops(2, 4, 9, 8) == one.attention
    q, k = torch.randn(2, 4, 9, 8), torch.randn(2, 4, 9, 8)
    assert counted_flops(torch.matmul, q, k.transpose(2, 3))["bmm"] == score_flops(2, 4, 9, 8)


@pytest.mark.parametrize("row", LLAMA_ROWS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kv_bytes_equal_what_both_caches_hold(row, dtype):
    ours, reference = ROWS[row].pair(dtype=dtype)
    ids = torch.randint(0, reference.config.vocab_size, (2, 9))
    cache = ours.new_cache()
    with torch.no_grad():
        ours(ids, cache=cache)
        held = cache_bytes(reference(ids, use_cache=True).past_key_values)
    c = reference.config
    expected = kv_cache_bytes(
        c.num_hidden_layers, c.num_key_value_heads, c.head_dim, 9, 2, dtype.itemsize
    )
    assert cache_bytes(cache) == held == expected


def test_kv_bytes_with_a_window_equal_our_rolling_buffer_once_full():
    """Mistral's rolling buffer keeps ``W`` slots; transformers' sliding layer keeps ``W - 1``
    positions between steps (the next token brings its own key)."""
    ours, reference = ROWS["mistral-W3"].pair()
    c = reference.config
    ids = torch.randint(0, c.vocab_size, (2, 9))
    cache = ours.new_cache()
    with torch.no_grad():
        ours(ids, cache=cache)
        held = cache_bytes(reference(ids, use_cache=True).past_key_values)
    args = (c.num_hidden_layers, c.num_key_value_heads, c.head_dim)
    assert cache_bytes(cache) == kv_cache_bytes(*args, 9, 2, 4, window=c.sliding_window)
    assert held == kv_cache_bytes(*args, 9, 2, 4, window=c.sliding_window - 1)
    assert kv_cache_bytes(*args, 2, 2, 4, window=3) == kv_cache_bytes(*args, 2, 2, 4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"length": 0}, "length"),
        ({"batch": True}, "batch"),
        ({"past": -1}, "past"),
        ({"num_attention_heads": 2.0}, "num_attention_heads"),
    ],
)
def test_forward_flops_refuses_bad_sizes(kwargs, match):
    sizes = dict(
        num_hidden_layers=1, hidden_size=8, num_attention_heads=2, num_key_value_heads=1,
        head_dim=4, intermediate_size=16, vocab_size=11, length=3,
    )  # fmt: skip
    with pytest.raises(ValueError, match=match):
        forward_flops(**{**sizes, **kwargs})


def test_kv_bytes_and_score_flops_refuse_bad_sizes():
    with pytest.raises(ValueError, match="window"):
        kv_cache_bytes(1, 1, 1, 5, window=0)
    with pytest.raises(ValueError, match="length"):
        kv_cache_bytes(1, 1, 1, 0)
    with pytest.raises(ValueError, match="length"):
        score_flops(1, 1, -3, 4)
    with pytest.raises(ValueError, match="must be a list of KVCache"):
        cache_bytes({"k": torch.ones(1)})


def test_forward_and_backward_cost_three_forwards_term_by_term():
    """Each matmul's backward is two matmuls of its size (one per input): training costs 3 x the
    formula, in both terms, so the attention share of a training step is the forward's."""
    ours, _ = ROWS["llama-gqa"].pair()
    ids = torch.randint(0, ours.config.vocab_size, (2, 9))
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        ours(ids).sum().backward()
    counted = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    expected = forward_flops_of(ours.config, 9, 2)
    assert counted == {"aten.bmm": 3 * expected.attention, "aten.mm": 3 * expected.rest}
