"""What is particular to Phi-3 (the checks every model shares are rows of tests/test_conformance.py):
LongRoPE's tables against ``Phi3RotaryEmbedding`` below and above the switch at
``original_max_position_embeddings``, the whole model beyond the switch, and reading configs."""

from __future__ import annotations

import math

import pytest
import torch

from demos.models.phi3 import (
    Phi3LM,
    Phi3LMConfig,
    longrope_attention_factor,
    longrope_inv_freq,
)
from demos.registry.hf import released_config
from helpers import assert_lm_parity, tiny_config, tiny_model

L = 8  # original_max_position_embeddings of the tiny LongRoPE config (the switch)
SHORT = [1.0, 1.3, 2.1, 3.7]  # d = 8: d/2 = 4 factors each
LONG = [1.0, 2.9, 6.4, 15.2]


def longrope(factor: float | None = 32.0, **rope) -> dict:
    params = {"rope_type": "longrope", "rope_theta": 10000.0}
    params.update(short_factor=SHORT, long_factor=LONG, **rope)
    if factor is not None:
        params["factor"] = factor
    return {"original_max_position_embeddings": L, "rope_parameters": params}


@pytest.mark.parametrize("factor", [32.0, None], ids=["factor", "ratio"])
@pytest.mark.parametrize("t", [3, L, L + 1, 40], ids=lambda t: f"t{t}")
def test_longrope_tables_equal_phi3_rotary_embedding(t, factor):
    """Below, at and above the switch; ``factor`` given, or the ratio max/original (256 / 8)."""
    hf = tiny_model("phi3", **longrope(factor))
    ours = Phi3LM.from_hf(hf)
    positions = torch.arange(t)
    cos, sin = ours.position_embeddings(positions, torch.float32)
    x = torch.zeros(1, t, 32)
    ref_cos, ref_sin = hf.model.rotary_emb(x, positions[None])
    torch.testing.assert_close(cos, ref_cos[0], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(sin, ref_sin[0], atol=1e-6, rtol=1e-6)
    expected = longrope_attention_factor(32.0, L)
    assert math.isclose(ours.config.attention_factor, expected)
    assert math.isclose(hf.model.rotary_emb.attention_scaling, expected)
    # the table is not the plain one: scaled, and its frequencies rescaled
    assert cos[0].max().item() == pytest.approx(expected)


def test_longrope_switches_factors_at_the_original_length():
    short = longrope_inv_freq(8, 1e4, SHORT, LONG, L, L)
    long = longrope_inv_freq(8, 1e4, SHORT, LONG, L + 1, L)
    plain = 1 / 1e4 ** (torch.arange(0, 8, 2) / 8)
    torch.testing.assert_close(short, plain / torch.tensor(SHORT))
    torch.testing.assert_close(long, plain / torch.tensor(LONG))


@pytest.mark.parametrize("t", [5, 20], ids=["below", "above"])
def test_longrope_model_logits_and_gradients_match_transformers(setting, t):
    hf = tiny_model("phi3", setting.device, setting.dtype, **longrope())
    ours = Phi3LM.from_hf(hf)
    assert_lm_parity(ours, hf, torch.randint(0, 97, (2, t), device=setting.device), setting)


def test_attention_factor_of_the_128k_ratio():
    """Phi-3-mini-128K: 131072 / 4096 = 32 -> sqrt(1 + ln 32 / ln 4096) = sqrt(1 + 5/12)."""
    assert longrope_attention_factor(131072 / 4096, 4096) == pytest.approx(math.sqrt(17 / 12))
    assert longrope_attention_factor(1.0, 4096) == 1.0


def test_released_phi3_mini_config_reads():
    config = Phi3LMConfig.from_hf(released_config("Phi-3-mini-4k"))
    assert (config.hidden_size, config.num_attention_heads, config.head_dim) == (3072, 32, 96)
    assert config.rope_type == "default" and config.attention_factor == 1.0


def test_bad_configs_raise():
    base = dict(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=56,
        num_hidden_layers=1,
        num_attention_heads=4,
    )
    with pytest.raises(ValueError, match="short_factor must hold head_dim/2 = 4 positive numbers"):
        Phi3LMConfig(**base, rope_type="longrope", short_factor=[1, 1, 1, -1], long_factor=LONG)
    with pytest.raises(ValueError, match="long_factor must hold head_dim/2 = 4 positive numbers"):
        Phi3LMConfig(**base, rope_type="longrope", short_factor=SHORT, long_factor=[1.0] * 3)
    with pytest.raises(ValueError, match="rope_type 'longrope' needs short_factor and long_factor"):
        Phi3LMConfig(**base, rope_type="longrope")
    with pytest.raises(ValueError, match=r"rope_type \('yarn'\) must be 'default' or 'longrope'"):
        Phi3LMConfig(**base, rope_type="yarn")
    with pytest.raises(ValueError, match=r"hidden_act \('gelu'\) must be 'silu'"):
        Phi3LMConfig.from_hf(tiny_config("phi3", hidden_act="gelu"))
    with pytest.raises(ValueError, match=r"factor \(0.0\) must be positive"):
        longrope_attention_factor(0.0, 4096)


# ---- cached decoding across the switch (L = 8): what transformers does, and ours ----


def hf_cached_steps(hf, ids: torch.Tensor, prompt: int) -> list[torch.Tensor]:
    """transformers' plain cached forward: the prompt, then one token a call (no re-encoding)."""
    from transformers import DynamicCache

    cache = DynamicCache(config=hf.config)
    out = hf(ids[:, :prompt], past_key_values=cache, use_cache=True)
    steps = [out.logits[:, -1]]
    for i in range(prompt, ids.shape[1] - 1):
        out = hf(ids[:, i : i + 1], past_key_values=out.past_key_values, use_cache=True)
        steps.append(out.logits[:, -1])
    return steps  # the logits for the token after positions prompt-1, ..., S-2


@torch.no_grad()
def test_transformers_generate_re_encodes_at_the_switch_and_its_cached_forward_does_not():
    """Measured on transformers 5.23.0: ``generate``'s logits at every step equal its own full
    forward of the sequence so far (it drops the cache at the first step past L); its plain cached
    ``forward`` keeps the short factors' keys, and from the first step past the switch differs
    from that full forward by far more than rounding. Ours equals ``generate``."""
    hf = tiny_model("phi3", **longrope())
    ours = Phi3LM.from_hf(hf)
    prompt = torch.randint(0, 97, (1, 4))
    run = hf.generate(
        prompt,
        max_new_tokens=12,
        do_sample=False,
        attention_mask=torch.ones_like(prompt),
        output_logits=True,
        return_dict_in_generate=True,
    )
    ids = run.sequences  # (1, 16): crosses L = 8
    full = [hf(ids[:, : i + 1]).logits[:, -1] for i in range(3, 15)]  # the prefixes' last logits
    cached = hf_cached_steps(hf, ids, 4)
    for i, (gen, fwd, step) in enumerate(zip(run.logits, full, cached, strict=True)):
        length = 4 + i  # the tokens seen at this step
        torch.testing.assert_close(gen, fwd, atol=1e-5, rtol=1e-5)
        gap = (step - fwd).abs().max().item()
        if length <= L:
            assert gap <= 1e-5, f"length {length}: below the switch the cache is right"
        else:
            assert gap > 1e-2, f"length {length}: transformers' cached forward kept short keys"
    cache = ours.new_cache(1)
    steps = [ours(ids[:, :4], cache)[:, -1]] + [
        ours(ids[:, i : i + 1], cache)[:, -1] for i in range(4, 15)
    ]
    for gen, step in zip(run.logits, steps, strict=True):
        torch.testing.assert_close(step, gen, atol=1e-5, rtol=1e-5)
    assert torch.equal(ours.generate(prompt, 12), ids)


@torch.no_grad()
def test_a_cache_without_its_token_ids_refuses_to_cross_the_switch():
    ours = Phi3LM.from_hf(tiny_model("phi3", **longrope()))
    ids = torch.randint(0, 97, (1, L + 1))
    cache = list(ours.new_cache(1))  # a plain list: the token ids are gone
    ours(ids[:, :L], cache)
    with pytest.raises(ValueError, match=r"crosses LongRoPE's switch \(original_max_position_emb"):
        ours(ids[:, L:], cache)
