"""Total and active parameters of an MoE decoder, checked against what one token's backward pass touches."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, MixtralConfig, MixtralForCausalLM

from demos.layers.moe import moe_parameter_counts
from helpers import tiny_mixtral_config


@pytest.mark.parametrize("top_k", [1, 2, 5])
def test_active_parameters_are_those_one_token_uses(top_k):
    """One token's gradient reaches exactly top_k experts per layer: count the parameters it reaches."""
    config = tiny_mixtral_config(num_experts_per_tok=top_k)
    counts = moe_parameter_counts(config)
    torch.manual_seed(0)
    model = MixtralForCausalLM(config)
    assert counts.total == sum(p.numel() for p in model.parameters())
    model(torch.tensor([[7]])).logits.sum().backward()
    touched = 0
    for name, p in model.named_parameters():
        if (
            ".experts." in name
        ):  # fused (E, ...) tensors: count the experts whose slice got a gradient
            used = p.grad is not None and p.grad.flatten(1).ne(0).any(1)
            touched += int(used.sum()) * p[0].numel() if p.grad is not None else 0
            assert p.grad is None or int(used.sum()) == top_k
        else:
            touched += p.numel()  # counted in full, like the model cards (embedding included)
    assert counts.active == touched
    assert counts.per_expert == 3 * config.hidden_size * config.intermediate_size


def test_mixtral_8x22b_matches_the_published_141b_and_39b():
    config = MixtralConfig(
        vocab_size=32000,
        hidden_size=6144,
        intermediate_size=16384,
        num_hidden_layers=56,
        num_attention_heads=48,
        num_key_value_heads=8,
        num_local_experts=8,
        num_experts_per_tok=2,
    )
    counts = moe_parameter_counts(config)
    assert round(counts.total / 1e9) == 141 and round(counts.active / 1e9) == 39


def test_non_moe_and_bad_top_k_raise_value_error():
    with pytest.raises(ValueError, match="not an MoE config"):
        moe_parameter_counts(LlamaConfig())
    with pytest.raises(ValueError, match="num_experts_per_tok"):
        moe_parameter_counts(tiny_mixtral_config(num_experts_per_tok=6))
