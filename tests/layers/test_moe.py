"""Mixture of experts: the sparse layer (router, experts, shared expert) and the balancing loss equal to
transformers' Qwen2-MoE and Mixtral, in outputs, router logits and gradients; total and active parameters,
checked against what one token's backward pass touches and against published figures.

bf16 and top-k ties: both sides compute the router logits with the same ``F.linear`` on the same input,
so they are equal bit for bit, and ``torch.topk`` on equal inputs picks the same experts even where two
probabilities tie. The whole-model rows rely on the same: tests/models/test_qwen2_moe.py checks that
every layer's router logits are equal bit for bit in bf16, so no tie can route a token differently.
"""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, MixtralConfig, MixtralForCausalLM, Qwen2MoeConfig
from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock
from transformers.models.qwen2_moe.modeling_qwen2_moe import (
    Qwen2MoeSparseMoeBlock,
    load_balancing_loss_func,
)

from demos.layers.moe import SparseMoE, load_balancing_loss, moe_parameter_counts, route_top_k
from helpers import assert_same_grads, cast_parameters, randomize_, tiny_mixtral_config


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


# ---- the sparse MoE layer against transformers' Qwen2MoeSparseMoeBlock and MixtralSparseMoeBlock ----

C, E, K, F_EXPERT, F_SHARED = 32, 8, 2, 16, 24


def qwen_block(setting, norm_topk_prob=False, experts_implementation="eager", **overrides):
    """transformers' Qwen2MoeSparseMoeBlock with visible random weights, and ours with them."""
    config = Qwen2MoeConfig(
        hidden_size=C,
        num_experts=E,
        num_experts_per_tok=K,
        moe_intermediate_size=F_EXPERT,
        shared_expert_intermediate_size=F_SHARED,
        norm_topk_prob=norm_topk_prob,
        experts_implementation=experts_implementation,
        **overrides,
    )
    hf = cast_parameters(randomize_(Qwen2MoeSparseMoeBlock(config)), setting.device, setting.dtype)
    ours = SparseMoE(C, E, K, F_EXPERT, F_SHARED, norm_topk_prob)
    ours.load_state_dict(hf.state_dict())
    return ours.to(setting.device, setting.dtype), hf


def run_both(ours, hf, setting, shape=(2, 9, C)):
    x = torch.randn(*shape, device=setting.device, dtype=setting.dtype)
    x_ours, x_ref = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    return ours(x_ours), hf(x_ref), x_ours, x_ref


@pytest.mark.parametrize("experts_implementation", ["eager", "grouped_mm"])
@pytest.mark.parametrize("norm_topk_prob", [False, True])
def test_sparse_moe_equals_qwen2_moe_block(setting, norm_topk_prob, experts_implementation):
    """Outputs, the input's and every parameter's gradient, against the eager loop of
    modeling_qwen2_moe.py and against transformers' default experts kernel (grouped_mm)."""
    ours, hf = qwen_block(setting, norm_topk_prob, experts_implementation)
    out, ref, x_ours, x_ref = run_both(ours, hf, setting)
    setting.close(out, ref)
    w = torch.randn_like(out)
    (out * w).sum().backward()
    (ref * w).sum().backward()
    setting.close(x_ours.grad, x_ref.grad, grad=True, msg="d/dx")
    assert_same_grads(ours, hf, setting)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ours.parameters())


@pytest.mark.parametrize("norm_topk_prob", [False, True])
def test_router_logits_weights_and_experts_equal_transformers(setting, norm_topk_prob):
    """The router: logits, top-k weights (summing to 1 only when renormalised) and the chosen
    experts. Both sides compute the logits with the same F.linear, so they are equal bit for bit in
    every dtype, and top-k on equal inputs picks the same experts even at a tie."""
    ours, hf = qwen_block(setting, norm_topk_prob)
    x = torch.randn(18, C, device=setting.device, dtype=setting.dtype)
    logits, weights, experts = ours.route(x)
    ref_logits, ref_weights, ref_experts = hf.gate(x)
    assert torch.equal(logits, ref_logits) and torch.equal(experts, ref_experts)
    setting.close(weights, ref_weights)
    assert weights.dtype == x.dtype
    sums = weights.float().sum(-1)
    if norm_topk_prob:
        setting.close(sums, torch.ones_like(sums))
    else:
        assert (sums < 1 - 1e-3).all()  # K of E probabilities: less than one


def test_route_top_k_ties_and_float64():
    """Equal logits tie; top-k then picks as torch.topk does (the lowest index on the CPU), and
    float64 stays float64."""
    logits = torch.zeros(3, 4, dtype=torch.float64)
    weights, experts = route_top_k(logits, 2, False)
    assert weights.dtype == torch.float64
    torch.testing.assert_close(weights, torch.full((3, 2), 0.25, dtype=torch.float64))
    assert torch.equal(experts, torch.topk(logits.softmax(-1), 2).indices)
    with pytest.raises(
        ValueError, match=r"top_k \(5\) must be an integer in \[1, num_experts = 4\]"
    ):
        route_top_k(logits, 5, False)


def test_sparse_moe_without_a_shared_expert_is_mixtrals_layer(fp32_setting):
    """Transfer: no shared expert and renormalised top-k weights give MixtralSparseMoeBlock (eval)."""
    config = tiny_mixtral_config(hidden_size=C, intermediate_size=F_EXPERT, num_local_experts=E)
    config._experts_implementation = "eager"
    hf = randomize_(MixtralSparseMoeBlock(config)).eval()
    ours = SparseMoE(C, E, config.num_experts_per_tok, F_EXPERT, None, norm_topk_prob=True)
    ours.load_state_dict(hf.state_dict())
    out, ref, x_ours, x_ref = run_both(ours, hf, fp32_setting)
    fp32_setting.close(out, ref)
    (out.sum() + ref.sum()).backward()
    fp32_setting.close(x_ours.grad, x_ref.grad, grad=True)
    assert_same_grads(ours, hf, fp32_setting)


def test_every_part_changes_the_output():
    """The shared expert, its gate and renormalisation each matter: a check that could not fail
    with one of them missing would prove nothing."""
    torch.manual_seed(0)
    ours = randomize_(SparseMoE(C, E, K, F_EXPERT, F_SHARED))
    x = torch.randn(18, C)
    with torch.no_grad():
        right = ours(x)
        renormalised = SparseMoE(C, E, K, F_EXPERT, F_SHARED, norm_topk_prob=True)
        renormalised.load_state_dict(ours.state_dict())
        assert (renormalised(x) - right).abs().max() > 0.05
        ours.shared_expert_gate.weight.zero_()  # sigmoid(0) = 1/2: half the shared expert
        assert (ours(x) - right).abs().max() > 0.05


def test_bad_sizes_raise():
    with pytest.raises(
        ValueError, match=r"top_k \(9\) must be an integer in \[1, num_experts = 8\]"
    ):
        SparseMoE(C, E, 9, F_EXPERT)
    with pytest.raises(ValueError, match=r"expert_size \(0\) must be a positive integer"):
        SparseMoE(C, E, K, 0)
    with pytest.raises(ValueError, match="hidden_act"):
        SparseMoE(C, E, K, F_EXPERT, hidden_act="relu")
    with pytest.raises(ValueError, match="floating-point"):
        SparseMoE(C, E, K, F_EXPERT)(torch.ones(2, C, dtype=torch.long))


# ---- the balancing loss against transformers' load_balancing_loss_func ----


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("top_k", [1, 2, 4])
def test_load_balancing_loss_equals_transformers(fp32_setting, top_k, masked):
    """The value and the gradient for every layer's router logits, three layers, a padded batch."""
    logits = [torch.randn(2 * 9, E, requires_grad=True) for _ in range(3)]
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[0, :4] = 0  # left padding
    mask = mask if masked else None
    ours = load_balancing_loss(logits, top_k, mask)
    ref = load_balancing_loss_func(tuple(logits), E, top_k, mask)
    fp32_setting.close(ours, ref)
    grads = torch.autograd.grad(ours, logits)
    ref_grads = torch.autograd.grad(ref, logits)
    for a, b in zip(grads, ref_grads, strict=True):
        assert b.abs().max() > 0
        fp32_setting.close(a, b, grad=True)


def test_an_even_router_scores_top_k_and_a_collapsed_one_scores_e():
    """Properties without a reference: all tokens on the same K experts with all the probability
    gives E; every expert equally likely and chosen equally often gives K."""
    even = torch.zeros(E, E)
    even[torch.arange(E), torch.arange(E)] = 1e-3  # each token's top-1 a different expert
    assert load_balancing_loss([even], 1).item() == pytest.approx(1.0, rel=1e-3)
    collapsed = torch.zeros(16, E)
    collapsed[:, 0] = 50.0
    assert load_balancing_loss([collapsed], 1).item() == pytest.approx(E, rel=1e-6)


def test_load_balancing_loss_keeps_float64_and_refuses_bad_input():
    logits = torch.randn(6, E, dtype=torch.float64)
    assert load_balancing_loss([logits], 2).dtype == torch.float64
    with pytest.raises(ValueError, match="got none"):
        load_balancing_loss([], 2)
    with pytest.raises(ValueError, match="one shape"):
        load_balancing_loss([logits, logits[:3]], 2)
    with pytest.raises(ValueError, match="attention_mask has 4 tokens, the routers 6"):
        load_balancing_loss([logits], 2, torch.ones(2, 2))


def test_qwen15_moe_a27b_counts_14_3b_total_and_2_7b_active():
    """Qwen1.5-MoE-A2.7B's released configuration, as the registry records it: 14.3B total and 2.7B
    active (the model card)."""
    from demos.registry import released_config

    config = released_config("Qwen1.5-MoE-A2.7B")
    counts = moe_parameter_counts(config)
    assert round(counts.total / 1e8) == 143 and round(counts.active / 1e8) == 27
    assert counts.per_expert == 3 * 2048 * 1408 and counts.layers == 24
    assert counts.shared == 24 * (3 * 2048 * 5632 + 2048)  # shared expert and its gate, every layer
    # every other layer sparse: half the routed experts, the dense layers fully active
    half = moe_parameter_counts(Qwen2MoeConfig(**{**config.to_dict(), "decoder_sparse_step": 2}))
    assert half.layers == 12 and half.per_expert == counts.per_expert
