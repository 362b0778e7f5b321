"""first_divergence: no divergence between each model and its transformers reference; a planted
mistake is named at exactly its layer and sub-step; bad input is a ValueError."""

from __future__ import annotations

import dataclasses
import math
from unittest import mock

import pytest
import torch

from demos.debugging import Divergence, NoDivergence, first_divergence
from demos.models.falcon import FalconLM
from demos.models.llama import LlamaLM, LlamaLMBlock
from demos.models.mamba import MambaLM
from demos.models.mistral import MistralLM
from helpers import tiny_model

# name -> (transformers model_type, our class, config overrides, sub-steps per block)
FAMILIES = {
    "llama": ("llama", LlamaLM, {}, 6),
    "mistral": ("mistral", MistralLM, {}, 6),  # sliding_window 4 < the 7 tokens
    "falcon-7b": ("falcon", FalconLM, {}, 4),  # one LayerNorm feeds both branches
    "falcon-40b": ("falcon", FalconLM, {"new_decoder_architecture": True}, 5),  # ln_attn, ln_mlp
    "mamba": ("mamba", MambaLM, {}, 3),
}


def pair(family: str):
    model_type, cls, overrides, _ = FAMILIES[family]
    reference = tiny_model(model_type, **overrides)
    return cls.from_hf(reference).eval(), reference


@pytest.fixture
def ids():
    return torch.randint(0, 97, (2, 7))


@pytest.mark.parametrize("family", FAMILIES)
def test_no_divergence_against_the_reference(family, ids):
    ours, reference = pair(family)
    result = first_divergence(ours, reference, ids)
    assert isinstance(result, NoDivergence), str(result)
    per_block = FAMILIES[family][3]
    layers = reference.config.num_hidden_layers
    assert result.compared == 1 + per_block * layers + 2  # embedding, blocks, final norm, head
    assert result.max_abs_diff <= 1e-5
    assert f"all {result.compared} sub-steps agree" in str(result)


def perturb(param: torch.nn.Parameter, scale: float = 1.1) -> None:
    with torch.no_grad():
        param.mul_(scale)


def negate_sin(module, args, kwargs):
    """A forward pre-hook on our attention: RoPE turns the other way (rotate_half's sign flipped)."""
    x, (cos, sin), *rest = args
    return (x, (cos, -sin), *rest), kwargs


class ParallelWiredBlock(LlamaLMBlock):
    """Llama's block with Falcon's wiring by mistake: the MLP's norm reads the block input."""

    def forward(self, x, position_embeddings, cache=None, attention_mask=None):
        h = x + self.self_attn(self.input_layernorm(x), position_embeddings, cache, attention_mask)
        return h + self.mlp(self.post_attention_layernorm(x))


class NoMLPResidualBlock(LlamaLMBlock):
    """Forgets the residual after the MLP: returns the MLP's output alone."""

    def forward(self, x, position_embeddings, cache=None, attention_mask=None):
        x = x + self.self_attn(self.input_layernorm(x), position_embeddings, cache, attention_mask)
        return self.mlp(self.post_attention_layernorm(x))


def adjacent_rope_in(attn):
    """Monkeypatch one attention layer: RoPE on pairs (2i, 2i + 1) instead of halves, there only."""
    from demos.layers import attention
    from demos.traps.llama2 import rope_adjacent_pairs

    original = attn.forward

    def forward(*args, **kwargs):
        with mock.patch.object(attention, "apply_rope", rope_adjacent_pairs):
            return original(*args, **kwargs)

    attn.forward = forward  # nn.Module.__call__ calls it, so the hooks still fire


def swap_block(ours, i, block_class):
    block = block_class(ours.config)
    block.load_state_dict(ours.blocks[i].state_dict())
    ours.blocks[i] = block.eval()


PLANTED = {  # name -> (family, plant(ours), layer, sub-step)
    "llama: post-attention norm weight": (
        "llama",
        lambda m: perturb(m.blocks[1].post_attention_layernorm.weight),
        1,
        "post-attention norm",
    ),
    "llama: RoPE turned the other way in block 0": (
        "llama",
        lambda m: m.blocks[0].self_attn.register_forward_pre_hook(negate_sin, with_kwargs=True),
        0,
        "attention",
    ),
    "llama: RoPE halves swapped for adjacent pairs in block 1": (
        "llama",
        lambda m: adjacent_rope_in(m.blocks[1].self_attn),
        1,
        "attention",
    ),
    "llama: MLP's norm wired to the block input": (
        "llama",
        lambda m: swap_block(m, 1, ParallelWiredBlock),
        1,
        "post-attention norm",
    ),
    "llama: residual after the MLP forgotten": (
        "llama",
        lambda m: swap_block(m, 0, NoMLPResidualBlock),
        0,
        "residual after MLP",
    ),
    "llama: embedding": ("llama", lambda m: perturb(m.embed.weight), None, "embedding"),
    "llama: final norm": ("llama", lambda m: perturb(m.norm_f.weight), None, "final norm"),
    "mistral: down_proj scaled": (
        "mistral",
        lambda m: perturb(m.blocks[1].mlp.down_proj.weight, 1.01),
        1,
        "MLP",
    ),
    "mistral: window off by one": (
        "mistral",
        lambda m: setattr(
            m.blocks[1].self_attn,
            "config",
            dataclasses.replace(m.blocks[1].self_attn.config, sliding_window=5),
        ),
        1,
        "attention",
    ),
    "falcon-7b: input LayerNorm bias": (
        "falcon-7b",
        lambda m: perturb(m.blocks[1].input_layernorm.bias, 2.0),
        1,
        "input norm",
    ),
    "falcon-7b: MLP": (
        "falcon-7b",
        lambda m: perturb(m.blocks[0].mlp.dense_4h_to_h.weight),
        0,
        "MLP",
    ),
    "falcon-40b: MLP norm": (
        "falcon-40b",
        lambda m: perturb(m.blocks[1].ln_mlp.weight),
        1,
        "MLP norm",
    ),
    "falcon-40b: fused QKV": (
        "falcon-40b",
        lambda m: perturb(m.blocks[0].self_attention.query_key_value.weight),
        0,
        "attention",
    ),
    "mamba: D": ("mamba", lambda m: perturb(m.backbone.layers[1].mixer.D, 1.5), 1, "mixer"),
    "mamba: norm": ("mamba", lambda m: perturb(m.backbone.layers[0].norm.weight), 0, "input norm"),
    "mamba: head": ("mamba", lambda m: perturb(m.lm_head.weight), None, "embedding"),  # tied
}


@pytest.mark.parametrize("case", PLANTED)
def test_a_planted_mistake_is_named_at_its_layer_and_substep(case, ids):
    family, plant, layer, substep = PLANTED[case]
    ours, reference = pair(family)
    plant(ours)
    result = first_divergence(ours, reference, ids)
    assert isinstance(result, Divergence), str(result)
    assert (result.layer, result.substep) == (layer, substep), str(result)
    assert result.max_abs_diff > result.tolerance > 0
    assert len(result.where) == 3 and not result.note
    where = "" if layer is None else f"layer {layer}, "
    assert f"First divergence at {where}{substep}" in str(result)


def test_the_size_and_place_of_the_difference(ids):
    ours, reference = pair("llama")
    delta = torch.zeros_like(ours.embed.weight)
    token = int(ids[1, 4])
    delta[token, 5] = 0.25  # one entry of one token's embedding
    with torch.no_grad():
        ours.embed.weight.add_(delta)
    result = first_divergence(ours, reference, ids)
    assert result.substep == "embedding"
    assert result.max_abs_diff == pytest.approx(0.25, rel=1e-6)
    first = [(b, t) for b in range(2) for t in range(7) if int(ids[b, t]) == token][0]
    assert result.where == (*first, 5)
    assert result.ours_module == result.reference_module == "model.embed_tokens"
    expected = 1e-5 + 1e-4 * abs(reference.model.embed_tokens.weight[token, 5].item())
    assert result.tolerance == pytest.approx(expected)


def test_a_difference_within_tolerance_is_agreement(ids):
    ours, reference = pair("llama")
    perturb(ours.blocks[0].mlp.down_proj.weight, 1 + 1e-7)
    assert isinstance(first_divergence(ours, reference, ids), NoDivergence)
    result = first_divergence(ours, reference, ids, atol=0.0, rtol=0.0)  # exact comparison
    assert isinstance(result, Divergence) and result.substep == "MLP", str(result)


def test_nan_is_a_divergence_never_agreement(ids):
    ours, reference = pair("llama")
    with torch.no_grad():
        ours.blocks[1].mlp.up_proj.weight[0, 0] = float("nan")
    result = first_divergence(ours, reference, ids)
    assert (result.layer, result.substep) == (1, "MLP")
    assert math.isnan(result.max_abs_diff) and "NaN" in str(result)


def test_a_module_ours_never_runs_is_a_divergence(ids):
    class SkipsNorm(LlamaLMBlock):
        def forward(self, x, position_embeddings, cache=None, attention_mask=None):
            x = x + self.self_attn(
                self.input_layernorm(x), position_embeddings, cache, attention_mask
            )
            return x + self.mlp(x)

    ours, reference = pair("llama")
    swap_block(ours, 1, SkipsNorm)
    result = first_divergence(ours, reference, ids)
    assert (result.layer, result.substep) == (1, "post-attention norm")
    assert "ours never ran it" in str(result)


def test_hooks_are_removed(ids):
    ours, reference = pair("falcon-7b")
    first_divergence(ours, reference, ids)
    for model in (ours, reference):
        for module in model.modules():
            assert not module._forward_hooks and not module._forward_pre_hooks


def test_bad_input_is_a_value_error(ids):
    ours, reference = pair("llama")
    with pytest.raises(ValueError, match="vocabularies differ"):
        first_divergence(ours, tiny_model("llama", vocab_size=50), ids)
    with pytest.raises(ValueError, match="token ids must lie in"):
        first_divergence(ours, reference, ids + 97)
    with pytest.raises(ValueError, match="integer tensor"):
        first_divergence(ours, reference, ids.float())
    with pytest.raises(ValueError, match="atol"):
        first_divergence(ours, reference, ids, atol=-1.0)
    with pytest.raises(ValueError, match="rtol"):
        first_divergence(ours, reference, ids, rtol=float("nan"))
    with pytest.raises(ValueError, match="nn.Module"):
        first_divergence("llama", reference, ids)
    with pytest.raises(ValueError, match="same number of layers"):
        first_divergence(ours, tiny_model("llama", num_hidden_layers=3), ids)


def test_nothing_matched_is_a_value_error_not_agreement(ids):
    ours, _ = pair("llama")
    with pytest.raises(ValueError, match="no decoder blocks match"):
        first_divergence(ours, tiny_model("mamba"), ids)


def test_a_rebuilt_residual_names_what_it_adds(ids):
    class DoubledAttention(LlamaLMBlock):  # attention's output enters the residual twice
        def forward(self, x, position_embeddings, cache=None, attention_mask=None):
            a = self.self_attn(self.input_layernorm(x), position_embeddings, cache, attention_mask)
            x = x + 2 * a
            return x + self.mlp(self.post_attention_layernorm(x))

    ours, reference = pair("llama")
    swap_block(ours, 0, DoubledAttention)
    result = first_divergence(ours, reference, ids)
    # the residual after attention is rebuilt as block input + attention output, which agree:
    # the first output computed from the doubled sum is the post-attention norm's
    assert (result.layer, result.substep) == (0, "post-attention norm"), str(result)


def test_the_plan_of_a_llama_block():
    from demos.debugging import _plan

    steps = [(s.layer, s.substep, s.name) for s in _plan(*pair("llama")) if s.layer == 0]
    assert steps == [
        (0, "input norm", "model.layers.0.input_layernorm"),
        (0, "attention", "model.layers.0.self_attn"),
        (0, "residual after attention", "model.layers.0 input + model.layers.0.self_attn"),
        (0, "post-attention norm", "model.layers.0.post_attention_layernorm"),
        (0, "MLP", "model.layers.0.mlp"),
        (0, "residual after MLP", "model.layers.0"),
    ]
