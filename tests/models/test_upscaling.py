"""Depth up-scaling (Yi-9B from Yi-6B): the grown model equals transformers' LlamaForCausalLM built
from the grown config with the weights renamed, in logits and gradients; cached decoding equals the
full forward and transformers' cached decoding; per-layer data (layer_types) follows its layer; the
copies own their weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from demos.catalog import ROWS
from demos.models.llama import LlamaLM
from demos.models.upscaling import (
    check_span,
    depth_upscale,
    layer_cosines,
    output_shift,
    upscaled_config,
    upscaled_layer_map,
    upscaled_state_dict,
)
from demos.registry import model_size
from demos.registry.hf import counted_parameters, released_config
from demos.traps.yi15 import copied_without_renumbering, grown_reference
from demos.weights import count_parameters
from helpers import assert_lm_parity


def test_yi_9b_layer_map():
    """Yi-6B's 32 layers, layers 12-27 copied after layer 27: 48 layers, new ones at 28-43."""
    layer_map = upscaled_layer_map(32, (12, 28))
    assert len(layer_map) == 48
    assert layer_map[:28] == tuple(range(28))
    assert layer_map[28:44] == tuple(range(12, 28))
    assert layer_map[44:] == tuple(range(28, 32))


@pytest.mark.parametrize(
    "span", [(0, 0), (3, 3), (5, 2), (-1, 2), (0, 9), (1.0, 2), (True, 2), (1,), (1, 2, 3), "12"]
)
def test_bad_span_raises(span):
    with pytest.raises(ValueError, match="span"):
        check_span(span, 8)
    with pytest.raises(ValueError, match="span"):
        upscaled_layer_map(8, span)


def test_depth_upscale_refuses_what_is_not_a_decoder():
    with pytest.raises(ValueError, match="DecoderLM"):
        depth_upscale(nn.Linear(2, 2), (0, 1))


def _pair(setting, layers=4, **overrides):
    row = ROWS["yi-like"]
    return row.pair(setting.device, setting.dtype, num_hidden_layers=layers, **overrides)


@pytest.mark.parametrize("span", [(1, 3), (0, 4), (3, 4), (0, 1)])
def test_grown_model_equals_transformers_grown_by_renaming(setting, span):
    """Ours grown by depth_upscale vs transformers' LlamaForCausalLM from the grown config with the
    state dict renamed by the layer map: logits and every gradient."""
    ours, reference = _pair(setting)
    grown = depth_upscale(ours, span)
    hf_grown = grown_reference(reference, span).to(setting.device)
    assert (
        grown.config.num_hidden_layers == hf_grown.config.num_hidden_layers == 4 + span[1] - span[0]
    )
    ids = torch.randint(0, 97, (2, 9), device=setting.device)
    assert_lm_parity(grown.model, hf_grown, ids, setting)


def test_grown_model_at_yi_ratio(fp32_setting):
    """8 layers grown by (3, 7) to 12: Yi's 32 -> 48 by (12, 28), divided by 4. (No float64 case:
    transformers computes RoPE's angles in float32 whatever the model's dtype.)"""
    ours, reference = _pair(fp32_setting, layers=8)
    grown = depth_upscale(ours, (3, 7))
    assert grown.layer_map == (0, 1, 2, 3, 4, 5, 6, 3, 4, 5, 6, 7)
    ids = torch.randint(0, 97, (2, 11))
    assert_lm_parity(grown.model, grown_reference(reference, (3, 7)), ids, fp32_setting)


def test_grown_model_loads_into_llama_for_causal_lm():
    """The grown model's own state dict loads strictly into LlamaForCausalLM(grown config)."""
    from transformers import LlamaForCausalLM

    ours, reference = ROWS["yi-like"].pair(num_hidden_layers=4)
    grown = depth_upscale(ours, (1, 3))
    hf = LlamaForCausalLM(upscaled_config(reference.config, grown.layer_map)).eval()
    hf.load_state_dict(grown.model.state_dict())  # strict: same names, same shapes
    ids = torch.randint(0, 97, (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(grown.model(ids), hf(ids).logits, atol=1e-5, rtol=1e-5)


def test_cached_decoding_of_grown_model_equals_full_forward(fp32_setting):
    ours, _ = _pair(fp32_setting)
    grown = depth_upscale(ours, (1, 3)).model
    ids = torch.randint(0, 97, (2, 10))
    with torch.no_grad():
        full = grown(ids)
        cache = grown.new_cache()
        steps = [grown(ids[:, :4], cache=cache)]
        steps += [grown(ids[:, k : k + 1], cache=cache) for k in range(4, 10)]
    fp32_setting.close(torch.cat(steps, dim=1), full)
    assert [len(c) for c in cache] == [10] * 6  # one slot per layer, each filled once per token


def test_cached_decoding_of_grown_model_equals_transformers_cached(fp32_setting):
    """The page's cached parity: ours through its KV cache vs transformers' grown model through its
    DynamicCache, same prompt and steps (the gap of each to its own full forward is rounding)."""
    from transformers import DynamicCache

    ours, reference = _pair(fp32_setting)
    grown = depth_upscale(ours, (1, 3)).model
    hf = grown_reference(reference, (1, 3))
    ids = torch.randint(0, 97, (2, 10), device=fp32_setting.device)
    chunks = [ids[:, :4]] + [ids[:, k : k + 1] for k in range(4, 10)]
    with torch.no_grad():
        cache, hf_cache = grown.new_cache(), DynamicCache()
        cached = torch.cat([grown(x, cache=cache) for x in chunks], 1)
        hf_cached = torch.cat([hf(x, past_key_values=hf_cache).logits for x in chunks], 1)
    fp32_setting.close(cached, hf_cached)
    assert len(hf_cache) == 6 and hf_cache.get_seq_length() == 10


def test_blocks_are_renumbered_and_own_their_weights():
    ours, _ = ROWS["yi-like"].pair(num_hidden_layers=4)
    grown = depth_upscale(ours, (1, 3)).model
    assert [b.layer_idx for b in grown.blocks] == list(range(6))
    pointers = [p.data_ptr() for p in grown.parameters()]
    assert len(pointers) == len(set(pointers))  # no tensor shared between copies
    assert not set(pointers) & {p.data_ptr() for p in ours.parameters()}


def test_parameter_counts():
    """Before/after counts equal transformers' models; the difference is (j - i) layers."""
    ours, reference = ROWS["yi-like"].pair(num_hidden_layers=4)
    grown = depth_upscale(ours, (1, 3))
    per_layer = count_parameters(ours.blocks[0])
    assert grown.parameters_before == count_parameters(reference)
    assert grown.parameters_after == count_parameters(grown_reference(reference, (1, 3)))
    assert grown.parameters_after - grown.parameters_before == 2 * per_layer


def test_yi_15_6b_grown_by_12_28_has_yi_15_9b_parameters():
    """Counted on the meta device: Yi-1.5-6B's config grown by (12, 28) builds exactly the
    parameters of Yi-1.5-9B's released config (both from the registry)."""
    from demos.models.llama import LlamaLMConfig

    six = LlamaLMConfig.from_hf(released_config("Yi-1.5-6B"))
    grown = upscaled_config(six, upscaled_layer_map(32, (12, 28)))
    with torch.device("meta"):
        count = count_parameters(LlamaLM(grown))
    assert count == counted_parameters(model_size("Yi-1.5-9B"))
    assert grown.num_hidden_layers == 48


def test_layer_types_follow_their_layer():
    """Qwen2 with layer 0 full and layer 1 sliding: copying layer 1 gives (full, slide, slide),
    and the grown model equals transformers' grown Qwen2 (whose layer_types say the same)."""
    ours, reference = ROWS["qwen2-window-top"].pair()
    grown = depth_upscale(ours, (1, 2))
    assert grown.config.layer_types == ("full_attention", "sliding_attention", "sliding_attention")
    hf_grown = grown_reference(reference, (1, 2))
    assert hf_grown.config.layer_types == list(grown.config.layer_types)
    ids = torch.randint(0, 97, (2, 12))  # longer than the window (3): the window matters
    with torch.no_grad():
        torch.testing.assert_close(grown.model(ids), hf_grown(ids).logits, atol=1e-5, rtol=1e-5)
        copied_all_full = depth_upscale(ours, (0, 1)).model  # (full, full, slide): another model
        assert (copied_all_full(ids) - hf_grown(ids).logits).abs().max() > 1e-2


def test_original_config_left_unchanged():
    ours, reference = ROWS["yi-like"].pair(num_hidden_layers=4)
    depth_upscale(ours, (1, 3))
    upscaled_config(reference.config, (0, 1, 2, 1, 2, 3))
    assert ours.config.num_hidden_layers == reference.config.num_hidden_layers == 4


def test_upscaled_state_dict_keeps_other_keys_and_clones():
    sd = {"model.embed_tokens.weight": torch.ones(2), "model.layers.0.w": torch.zeros(1)}
    sd["model.layers.1.w"] = torch.full((1,), 1.0)
    grown = upscaled_state_dict(sd, (0, 1, 1))
    assert set(grown) == {"model.embed_tokens.weight", *(f"model.layers.{k}.w" for k in range(3))}
    assert grown["model.layers.2.w"].item() == 1.0
    assert grown["model.layers.2.w"].data_ptr() != sd["model.layers.1.w"].data_ptr()


def test_output_shift_zero_for_identical_models_and_positive_after_growth():
    ours, _ = ROWS["yi-like"].pair(num_hidden_layers=4)
    ids = torch.randint(0, 97, (2, 8))
    same = output_shift(ours, ours, ids)
    assert same == {"kl": 0.0, "max_logit_change": 0.0, "top1_agreement": 1.0}
    moved = output_shift(ours, depth_upscale(ours, (1, 3)).model, ids)
    assert moved["kl"] > 0 and moved["max_logit_change"] > 0


def test_layer_cosines_by_hand():
    ours, _ = ROWS["yi-like"].pair(num_hidden_layers=3)
    ids = torch.randint(0, 97, (1, 6))
    cos = layer_cosines(ours, ids)
    with torch.no_grad():  # the input and output of block 1, run by hand
        x = ours.embed(ids)
        cos_sin = ours.position_embeddings(torch.arange(6), x.dtype)
        x0 = ours.blocks[0](x, cos_sin)
        x1 = ours.blocks[1](x0, cos_sin)
    want = nn.functional.cosine_similarity(x0.double(), x1.double(), dim=-1)[:, 1:].mean()
    assert cos.shape == (3,)
    torch.testing.assert_close(cos[1], want)


def test_transformers_refuses_copies_that_keep_their_layer_idx():
    """The mistake the page describes: deep-copied layers keep their layer_idx, so two layers
    write into one cache slot; transformers 5.23's eager attention fails on the mask's shape."""
    _, reference = ROWS["yi-like"].pair(num_hidden_layers=4)
    wrong = copied_without_renumbering(reference, (1, 3))
    ids = torch.randint(0, 97, (1, 6))
    with torch.no_grad():
        wrong(ids, use_cache=False)  # without a cache it runs, and is right
        with pytest.raises(RuntimeError, match="size"):
            wrong(ids, use_cache=True)
