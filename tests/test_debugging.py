"""first_divergence: no divergence between each catalogue row and its transformers reference; a bug
planted in layer 1's attention (or mixer), MLP or norm of every row is named at exactly that layer and
sub-step; hand-planted mistakes (RoPE, wiring, windows, NaN) too; bad input, and a block that does
not declare its sub-steps or declares a child the reference lacks, are a ValueError."""

from __future__ import annotations

import dataclasses
import math
from unittest import mock

import pytest
import torch
from torch import nn

from demos.catalog import ROWS, T
from demos.debugging import Divergence, NoDivergence, _plan, first_divergence
from demos.models.decoder import sequential_substeps
from demos.models.llama import LlamaLMBlock

MIXING = ("attention", "mixer")  # every block mixes positions with one of these
# the planted parameter: a norm's weight, or the last nn.Linear of the sub-step's module, its
# output projection (checked by name, so a reordered module cannot plant the bug elsewhere)
LAST_LINEAR = {
    "attention": ("o_proj", "dense"),
    "mixer": ("out_proj",),
    # a sparse MoE layer (Qwen2-MoE): the shared expert's sigmoid gate, its last nn.Linear
    "mlp": ("down_proj", "dense_4h_to_h", "fc2", "shared_expert_gate"),
}

# The rows' tolerance: first_divergence's default. Every row's forward agrees with transformers to
# < 2e-6 (the Falcon rows, with sqrt(head_dim) a power of two, to the bit).
ROW_ATOL = 1e-5


def pair(row: str = "llama-gqa", **overrides):
    return ROWS[row].pair(**overrides)


def blocks_of(model: nn.Module) -> nn.ModuleList:
    """Our decoder blocks: the first nn.ModuleList in module order (model.layers, backbone.layers)."""
    return next(m for m in model.modules() if isinstance(m, nn.ModuleList))


def module_name(model: nn.Module, module: nn.Module) -> str:
    return next(n for n, m in model.named_modules() if m is module)


def token_ids(model: nn.Module, t: int = T) -> torch.Tensor:
    return torch.randint(0, model.config.vocab_size, (2, t))


def planted_cases():
    """(row, sub-step) for every row and every attention, mixer, MLP and norm its block 1 declares.
    Built on the meta device: no weights, no random numbers drawn while collecting."""
    for name, row in ROWS.items():
        try:
            with torch.device("meta"):
                ours = row.ours(row.ours.config_class.from_hf(row.hf_config()))
        except Exception:  # not the collection's failure: this row's test fails building it
            yield pytest.param(name, "<block 1 not built>", id=f"{name}: not built")
            continue
        for sub in blocks_of(ours)[1].substeps():
            if sub.kind in (*MIXING, "mlp", "norm"):
                yield pytest.param(name, sub.name, id=f"{name}: {sub.name}")


PLANTED_CASES = list(planted_cases())


@pytest.fixture
def ids():
    return torch.randint(0, 97, (2, 7))


@pytest.mark.parametrize("row", ROWS)
def test_no_divergence_against_the_reference(row):
    ours, reference = pair(row)
    result = first_divergence(ours, reference, token_ids(ours), atol=ROW_ATOL)
    assert isinstance(result, NoDivergence), str(result)
    per_block = sum(len(block.substeps()) for block in blocks_of(ours))
    # the embedding, every declared sub-step, the final norm and the head (tied or not: Gemma,
    # Falcon and a tied Mamba hook lm_head too, it runs)
    assert result.compared == 1 + per_block + 2
    assert result.max_abs_diff <= ROW_ATOL
    assert f"all {result.compared} sub-steps agree" in str(result)


@pytest.mark.parametrize("row", ROWS)
def test_every_block_declares_a_mixing_step_and_a_norm(row):
    ours, _ = pair(row)
    for block in blocks_of(ours):
        kinds = [s.kind for s in block.substeps()]
        assert sum(k in MIXING for k in kinds) == 1 and "norm" in kinds, (row, kinds)
    # the planted cases are block 1's attention or mixer, its MLP if any, and each of its norms
    planted = [p.values[1] for p in PLANTED_CASES if p.values[0] == row]
    expected = [s.name for s in blocks_of(ours)[1].substeps() if s.kind != "residual"]
    assert planted == expected and len(planted) >= 2


@pytest.mark.parametrize(("row", "substep"), PLANTED_CASES)
def test_a_planted_bug_is_named_at_its_layer_and_substep(row, substep):
    ours, reference = pair(row)
    block = blocks_of(ours)[1]
    (sub,) = [s for s in block.substeps() if s.name == substep]
    module = block.get_submodule(sub.module)
    with torch.no_grad():
        if sub.kind == "norm":
            module.weight.add_(0.5)
        else:
            name, linear = [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Linear)][
                -1
            ]
            assert name in LAST_LINEAR[sub.kind], (
                f"{row}: the last nn.Linear of {sub.module}: {name}"
            )
            linear.weight.mul_(1.1)
    result = first_divergence(ours, reference, token_ids(ours), atol=ROW_ATOL)
    assert isinstance(result, Divergence), str(result)
    assert (result.layer, result.substep) == (1, substep), str(result)
    assert result.ours_module == f"{module_name(ours, block)}.{sub.module}"
    assert result.max_abs_diff > result.tolerance > 0 and not result.note


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
    block = block_class(ours.config, i)
    block.load_state_dict(ours.blocks[i].state_dict())
    ours.blocks[i] = block.eval()


def window(attn, w: int) -> None:
    attn.config = dataclasses.replace(attn.config, sliding_window=w)


PLANTED = {  # name -> (row, plant(ours), layer, sub-step)
    "llama: RoPE turned the other way in block 0": (
        "llama-gqa",
        lambda m: m.blocks[0].self_attn.register_forward_pre_hook(negate_sin, with_kwargs=True),
        0,
        "attention",
    ),
    "llama: RoPE halves swapped for adjacent pairs in block 1": (
        "llama-gqa",
        lambda m: adjacent_rope_in(m.blocks[1].self_attn),
        1,
        "attention",
    ),
    "llama: MLP's norm wired to the block input": (
        "llama-gqa",
        lambda m: swap_block(m, 1, ParallelWiredBlock),
        1,
        "post-attention norm",
    ),
    "llama: residual after the MLP forgotten": (
        "llama-gqa",
        lambda m: swap_block(m, 0, NoMLPResidualBlock),
        0,
        "residual after MLP",
    ),
    "llama: embedding": ("llama-gqa", lambda m: perturb(m.embed.weight), None, "embedding"),
    "llama: final norm": ("llama-gqa", lambda m: perturb(m.norm_f.weight), None, "final norm"),
    "llama: untied head": ("llama-gqa", lambda m: perturb(m.lm_head.weight), None, "lm_head"),
    "mistral: window off by one": (
        "mistral-W3",
        lambda m: window(m.blocks[1].self_attn, 4),
        1,
        "attention",
    ),
    "qwen2: layer 1's window lost": (
        "qwen2-window-top",
        lambda m: window(m.blocks[1].self_attn, None),
        1,
        "attention",
    ),
    "falcon-7b: input LayerNorm bias": (
        "falcon-7b",
        lambda m: perturb(m.blocks[1].input_layernorm.bias, 2.0),
        1,
        "input norm",
    ),
    "falcon-7b: tied head": ("falcon-7b", lambda m: perturb(m.lm_head.weight), None, "embedding"),
    "falcon-40b: fused QKV": (
        "falcon-40b",
        lambda m: perturb(m.blocks[0].self_attention.query_key_value.weight),
        0,
        "attention",
    ),
    "pythia: fused QKV in layer 1": (
        "pythia-parallel",
        lambda m: perturb(m.blocks[1].attention.query_key_value.weight),
        1,
        "attention",
    ),
    "phi: q_proj in layer 1": (
        "phi",
        lambda m: perturb(m.blocks[1].self_attn.q_proj.weight),
        1,
        "attention",
    ),
    "mamba: D": ("mamba", lambda m: perturb(m.backbone.layers[1].mixer.D, 1.5), 1, "mixer"),
    "mamba: untied head": ("mamba", lambda m: perturb(m.lm_head.weight), None, "lm_head"),
}


@pytest.mark.parametrize("case", PLANTED)
def test_a_planted_mistake_is_named_at_its_layer_and_substep(case, ids):
    row, plant, layer, substep = PLANTED[case]
    ours, reference = pair(row)
    plant(ours)
    result = first_divergence(ours, reference, ids)
    assert isinstance(result, Divergence), str(result)
    assert (result.layer, result.substep) == (layer, substep), str(result)
    assert result.max_abs_diff > result.tolerance > 0
    assert len(result.where) == 3 and not result.note
    where = "" if layer is None else f"layer {layer}, "
    assert f"First divergence at {where}{substep}" in str(result)


def test_a_tied_head_is_the_embedding(ids):
    ours, reference = pair("mamba", tie_word_embeddings=True)
    assert ours.lm_head.weight is ours.backbone.embeddings.weight
    perturb(ours.lm_head.weight)
    result = first_divergence(ours, reference, ids)
    assert (result.layer, result.substep, result.compared) == (None, "embedding", 1), str(result)


def test_the_size_and_place_of_the_difference(ids):
    ours, reference = pair()
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
    ours, reference = pair()
    perturb(ours.blocks[0].mlp.down_proj.weight, 1 + 1e-7)
    assert isinstance(first_divergence(ours, reference, ids), NoDivergence)
    result = first_divergence(ours, reference, ids, atol=0.0, rtol=0.0)  # exact comparison
    assert isinstance(result, Divergence) and result.substep == "MLP", str(result)


def test_nan_is_a_divergence_never_agreement(ids):
    ours, reference = pair()
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

    ours, reference = pair()
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
    ours, reference = pair()
    llama = ROWS["llama-gqa"]
    with pytest.raises(ValueError, match="vocabularies differ"):
        first_divergence(ours, llama.reference(vocab_size=50), ids)
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
        first_divergence(ours, llama.reference(num_hidden_layers=3), ids)


def test_nothing_matched_is_a_value_error_not_agreement(ids):
    ours, _ = pair()
    with pytest.raises(ValueError, match="no decoder blocks match"):
        first_divergence(ours, ROWS["mamba"].reference(), ids)


class UndeclaredBlock(nn.Module):
    """A learner's Llama block that does not say what its sub-steps are."""

    def __init__(self, block: LlamaLMBlock) -> None:
        super().__init__()
        for name, child in block.named_children():
            self.add_module(name, child)

    forward = LlamaLMBlock.forward


class FeedForwardBlock(LlamaLMBlock):
    """Names its MLP feed_forward, which transformers' LlamaDecoderLayer does not have."""

    def __init__(self, config, layer_idx):
        super().__init__(config, layer_idx)
        self.feed_forward = self.mlp
        del self.mlp

    def substeps(self):
        return sequential_substeps(
            "input_layernorm", "self_attn", "post_attention_layernorm", "feed_forward"
        )

    def forward(self, x, position_embeddings, cache=None, attention_mask=None):
        x = x + self.self_attn(self.input_layernorm(x), position_embeddings, cache, attention_mask)
        return x + self.feed_forward(self.post_attention_layernorm(x))


class MisspeltBlock(LlamaLMBlock):
    """Declares a norm by a name it does not have (post_attn_norm)."""

    def substeps(self):
        return sequential_substeps("input_layernorm", "self_attn", "post_attn_norm", "mlp")


def test_a_block_without_substeps_is_a_value_error(ids):
    ours, reference = pair()
    ours.blocks[1] = UndeclaredBlock(ours.blocks[1])
    with pytest.raises(
        ValueError, match=r"UndeclaredBlock \(block 1 of ours\) must declare its sub"
    ):
        first_divergence(ours, reference, ids)


def test_a_block_that_declares_nothing_is_a_value_error(ids):
    class Silent(LlamaLMBlock):
        def substeps(self):
            return ()

    ours, reference = pair()
    ours.blocks[0] = Silent(ours.config, 0)
    with pytest.raises(ValueError, match=r"Silent.substeps\(\) \(block 0 of ours\) declares no"):
        first_divergence(ours, reference, ids)


@pytest.mark.parametrize(
    ("block_class", "missing", "owner"),
    [
        (FeedForwardBlock, "feed_forward", "the reference's LlamaDecoderLayer (block 0)"),
        (MisspeltBlock, "post_attn_norm", "MisspeltBlock (block 0 of ours)"),
    ],
)
def test_a_declared_module_one_side_lacks_is_a_value_error(block_class, missing, owner, ids):
    ours, reference = pair()
    ours.blocks[0] = block_class(ours.config, 0)  # refused before anything runs
    with pytest.raises(ValueError) as error:
        first_divergence(ours, reference, ids)
    message = str(error.value)
    assert f"module {missing!r}" in message and f"but {owner} has no such child" in message
    assert block_class.__name__ in message and "LlamaDecoderLayer" in message, message


def test_a_rebuilt_residual_names_what_it_adds(ids):
    class DoubledAttention(LlamaLMBlock):  # attention's output enters the residual twice
        def forward(self, x, position_embeddings, cache=None, attention_mask=None):
            a = self.self_attn(self.input_layernorm(x), position_embeddings, cache, attention_mask)
            x = x + 2 * a
            return x + self.mlp(self.post_attention_layernorm(x))

    ours, reference = pair()
    swap_block(ours, 0, DoubledAttention)
    result = first_divergence(ours, reference, ids)
    # the residual after attention is rebuilt as block input + attention output, which agree:
    # the first output computed from the doubled sum is the post-attention norm's
    assert (result.layer, result.substep) == (0, "post-attention norm"), str(result)


PLANS = {  # row -> block 0's plan: (sub-step, hooked module, or the rebuilt sum's parts)
    "llama-gqa": [
        ("input norm", "model.layers.0.input_layernorm"),
        ("attention", "model.layers.0.self_attn"),
        ("residual after attention", "model.layers.0 input + model.layers.0.self_attn"),
        ("post-attention norm", "model.layers.0.post_attention_layernorm"),
        ("MLP", "model.layers.0.mlp"),
        ("residual after MLP", "model.layers.0"),
    ],
    "pythia-parallel": [  # the attention too: the name-guessing plan skipped it
        ("input norm", "gpt_neox.layers.0.input_layernorm"),
        ("attention", "gpt_neox.layers.0.attention"),
        ("MLP norm", "gpt_neox.layers.0.post_attention_layernorm"),
        ("MLP", "gpt_neox.layers.0.mlp"),
        ("residual after attention + MLP", "gpt_neox.layers.0"),
    ],
    "phi": [
        ("input norm", "model.layers.0.input_layernorm"),
        ("attention", "model.layers.0.self_attn"),
        ("MLP", "model.layers.0.mlp"),
        ("residual after attention + MLP", "model.layers.0"),
    ],
}


@pytest.mark.parametrize("row", PLANS)
def test_the_plan_of_a_block(row):
    steps = [(s.substep, s.name) for s in _plan(*pair(row)) if s.layer == 0]
    assert steps == PLANS[row]
