"""What is particular to Qwen1.5-MoE (``Qwen2MoeLM``); the conformance table runs the shared checks
on its rows. Which layers are sparse, each layer's router logits, the whole model's balancing loss,
a window, ``qkv_bias`` and bad configurations.

bf16 policy for top-k ties: every router's logits are compared bit for bit, in fp32 and bf16. Our
forward rounds where transformers' does, so each router sees the same input and ``torch.topk`` picks
the same experts even at an exact tie; a test that found a difference in the logits would fail here
before a tie could route a token differently.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from demos.catalog import ROWS, T
from demos.layers.moe import SparseMoE, load_balancing_loss
from demos.models.qwen2_moe import Qwen2MoeLM, Qwen2MoeLMConfig, forward_with_router_logits
from helpers import tiny_config, tiny_model

MOE_ROWS = [name for name, row in ROWS.items() if row.model_type == "qwen2_moe"]


def router_logits(model, ids, **kwargs):
    return forward_with_router_logits(model, ids, **kwargs)[1]


@pytest.mark.parametrize("name", MOE_ROWS)
def test_each_layers_mlp_is_the_one_transformers_builds(name):
    ours, reference = ROWS[name].pair()
    theirs = [type(layer.mlp).__name__ for layer in reference.model.layers]
    kinds = {"Qwen2MoeSparseMoeBlock": "sparse", "Qwen2MoeMLP": "dense"}
    assert ours.config.mlp_types == tuple(kinds[t] for t in theirs)
    assert [isinstance(b.mlp, SparseMoE) for b in ours.blocks] == [
        t == "sparse" for t in ours.config.mlp_types
    ]
    assert len(set(ours.config.mlp_types)) == (1 if name == "qwen1.5-moe-like" else 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("name", MOE_ROWS)
def test_every_router_sees_what_transformers_router_sees(name, dtype):
    """The router logits of every sparse layer equal transformers' (output_router_logits) bit for
    bit, and so do the chosen experts: no tie in the top-k can route a token differently."""
    ours, reference = ROWS[name].pair(dtype=dtype)
    ids = torch.randint(0, 97, (2, T))
    with torch.no_grad():
        mine = router_logits(ours, ids)
        theirs = reference(ids, output_router_logits=True).router_logits
    assert len(mine) == len(theirs) == ours.config.mlp_types.count("sparse") >= 1
    k = ours.config.num_experts_per_tok
    for a, b in zip(mine, theirs, strict=True):
        assert a.dtype == dtype and torch.equal(a, b)
        assert torch.equal(
            a.float().softmax(-1).topk(k).indices, b.float().softmax(-1).topk(k).indices
        )


@pytest.mark.parametrize("name", MOE_ROWS)
def test_the_balancing_loss_of_a_padded_batch_equals_transformers_aux_loss(name, fp32_setting):
    ours, reference = ROWS[name].pair()
    mask = torch.ones(2, T, dtype=torch.long)
    mask[1, :3] = 0
    ids = torch.randint(0, 97, (2, T)) * mask
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    aux = reference(ids, attention_mask=mask, position_ids=position_ids, output_router_logits=True)
    loss = load_balancing_loss(router_logits(ours, ids, attention_mask=mask), 2, mask)
    fp32_setting.close(loss, aux.aux_loss)


def test_a_window_some_layers_use_matches_transformers(fp32_setting):
    """use_sliding_window: Qwen2-MoE slides in the even layers below max_window_layers (its own
    rule, not Qwen2's), read from layer_types; W = 3 < T."""
    hf = tiny_model("qwen2_moe", use_sliding_window=True, sliding_window=3, max_window_layers=2)
    ours = Qwen2MoeLM.from_hf(hf)
    assert [b.self_attn.config.sliding_window for b in ours.blocks] == [3, None]
    ids = torch.randint(0, 97, (2, T))
    with torch.no_grad():
        fp32_setting.close(ours(ids), hf(ids).logits)
    unused = Qwen2MoeLMConfig.from_hf(tiny_config("qwen2_moe", sliding_window=3))
    assert unused.sliding_window is None  # use_sliding_window False: Qwen2MoeConfig stores 0


def test_qkv_bias_false_drops_the_qkv_bias(fp32_setting):
    hf = tiny_model("qwen2_moe", qkv_bias=False)
    ours = Qwen2MoeLM.from_hf(hf)
    assert ours.blocks[0].self_attn.q_proj.bias is None
    ids = torch.randint(0, 97, (2, T))
    with torch.no_grad():
        fp32_setting.close(ours(ids), hf(ids).logits)


def test_no_experts_is_a_dense_model():
    config = Qwen2MoeLMConfig.from_hf(tiny_config("qwen2_moe", num_experts=0))
    assert config.mlp_types == ("dense", "dense")


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"mlp_only_layers": (2,)},
            r"mlp_only_layers \(\[2\]\) must hold layer indices in \[0, num_hidden_layers = 2\)",
        ),
        (
            {"num_experts_per_tok": 5},
            r"num_experts_per_tok \(5\) must lie in \[1, num_experts = 4\]",
        ),
        ({"decoder_sparse_step": 0}, r"decoder_sparse_step \(0\) must be a positive integer"),
        ({"num_experts": -1}, r"num_experts \(-1\) must be an integer >= 0"),
    ],
)
def test_bad_configurations_raise(change, message):
    config = Qwen2MoeLMConfig.from_hf(tiny_config("qwen2_moe"))
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(config, **change)
