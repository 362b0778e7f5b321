"""What is particular to Gemma (the shared checks are rows "gemma" and "gemma-7b-like" of
tests/test_conformance.py): the padding row of the embedding, bf16 logits bit for bit, the
released sizes' head_dim from the registry, and bad configurations."""

from __future__ import annotations

import pytest
import torch

from demos.models.gemma import GemmaLM, GemmaLMConfig
from demos.registry import family_sizes, released_config
from helpers import assert_lm_parity, tiny_config, tiny_model


def test_pad_token_row_gets_the_gradient_of_transformers(setting):
    """transformers builds the embedding with padding_idx = pad_token_id: the lookup sends no
    gradient to that row (the tied head still does). Ours too, or d/d embed_tokens differs."""
    hf = tiny_model("gemma", setting.device, setting.dtype, pad_token_id=0)
    ours = GemmaLM.from_hf(hf)
    assert ours.embed.padding_idx == hf.model.embed_tokens.padding_idx == 0
    ids = torch.tensor([[0, 5, 0, 9, 3], [4, 0, 2, 2, 1]], device=setting.device)
    assert_lm_parity(ours, hf, ids, setting)


def test_bf16_logits_and_gradients_equal_transformers_bit_for_bit():
    """Same operations in the same order (the normaliser in bf16, (1 + w) before the cast, one fp32
    copy of x in the norm), so on the CPU even bf16 gradients agree exactly."""
    from demos.book import compare_lm

    hf = tiny_model("gemma", dtype=torch.bfloat16)
    pairs = compare_lm(GemmaLM.from_hf(hf), hf, torch.randint(0, 97, (2, 9)))
    assert len(pairs) == 1 + len(list(hf.parameters()))
    for name, (ours, reference) in pairs.items():
        assert ours.dtype == torch.bfloat16 and torch.equal(ours, reference), name


@pytest.mark.parametrize("size", family_sizes("Gemma"), ids=lambda s: s.name)
def test_released_sizes_read_head_dim_256(size):
    """Our config takes head_dim from the released config, not hidden / heads. (Our parameter count
    at every released size is tests/registry/test_registry.py's.)"""
    ours_config = GemmaLMConfig.from_hf(released_config(size.name))
    assert ours_config.head_dim == size.head_dim == 256  # 7B: 3072 / 16 = 192, not 256


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"hidden_act": "relu"}, r"hidden_act \('relu'\) must be one of"),
        ({"use_bidirectional_attention": True}, "use_bidirectional_attention=True"),
        ({"pad_token_id": 97}, r"pad_token_id \(97\) must lie in \[0, vocab_size = 97\)"),
        ({"num_key_value_heads": 3}, "divisible"),
    ],
)
def test_bad_configs_raise(changes, match):
    config = tiny_config("gemma")
    for name, value in changes.items():
        setattr(config, name, value)
    with pytest.raises(ValueError, match=match):
        GemmaLMConfig.from_hf(config)
