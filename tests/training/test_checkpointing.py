"""Gradient checkpointing changes memory, not results: the checkpointed forward gives the plain forward's
logits and gradients, equal to transformers' LlamaForCausalLM with gradient_checkpointing_enable(); it keeps
fewer activations; a bad `every` is a ValueError."""

from __future__ import annotations

import pytest
import torch

from demos.catalog import ROWS
from demos.training.checkpointing import (
    activation_bytes,
    checkpointed_forward,
    saved_activation_bytes,
)


def grads_of(model, logits, w):
    model.zero_grad(set_to_none=True)
    (logits * w).sum().backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("every", [1, 2, 3, 5])
def test_same_logits_and_gradients_with_and_without(every):
    ours, _ = ROWS["llama-mha"].pair(num_hidden_layers=4)
    ids = torch.randint(0, 97, (2, 11))
    plain = ours(ids)
    w = torch.randn_like(plain)
    expected = grads_of(ours, plain, w)
    logits = checkpointed_forward(ours, ids, every)
    torch.testing.assert_close(logits, plain, atol=0, rtol=0)  # same ops, same order
    got = grads_of(ours, logits, w)
    for name, g in expected.items():
        assert torch.isfinite(g).all() and g.abs().sum() > 0, name
        torch.testing.assert_close(got[name], g, atol=0, rtol=0, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("every", [1, 2])
def test_equals_transformers_with_its_checkpointing(every):
    """transformers checkpoints decoder layer i when i % every_n_layers == 0 (in train mode); so do we."""
    ours, reference = ROWS["llama-mha"].pair(num_hidden_layers=3)
    reference.activation_checkpointing_enable(every_n_layers=every)
    reference.train()  # transformers checkpoints only while training (dropout is 0 here)
    ours.train()
    flags = [layer.gradient_checkpointing for layer in reference.model.layers]
    assert flags == [i % every == 0 for i in range(3)]  # what the reference is set to do
    ids = torch.randint(0, 97, (2, 9))
    ref_logits = reference(ids).logits
    logits = checkpointed_forward(ours, ids, every)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-5)
    w = torch.randn_like(logits)
    (ref_logits * w).sum().backward()
    got = grads_of(ours, logits, w)
    ref_params = dict(reference.named_parameters())
    for name, g in got.items():
        expected = ref_params[name].grad
        scale = max(1.0, expected.abs().max().item())
        torch.testing.assert_close(g, expected, atol=1e-5 * scale, rtol=1e-5)


def test_float64_stays_float64():
    ours, _ = ROWS["llama-mha"].pair(dtype=torch.float64)
    logits = checkpointed_forward(ours, torch.randint(0, 97, (1, 5)), 1)
    assert logits.dtype == torch.float64


def test_checkpointing_keeps_fewer_activations():
    ours, _ = ROWS["llama-mha"].pair(num_hidden_layers=4)
    ids = torch.randint(0, 97, (2, 32))
    kept_plain, recomputed_plain = activation_bytes(ours, ids, None)
    kept_all, recomputed_all = activation_bytes(ours, ids, 1)
    kept_half, recomputed_half = activation_bytes(ours, ids, 2)
    assert recomputed_plain == 0
    assert kept_all < kept_plain / 4  # only the blocks' inputs are kept
    assert kept_all < kept_half < kept_plain  # blocks 1 and 3 keep theirs
    assert 0 < recomputed_all == recomputed_half < kept_plain / 2  # one block at a time


def test_saved_activation_bytes_counts_a_known_graph():
    x = torch.randn(8, 16, requires_grad=True)  # 512 bytes
    w = torch.randn(16, 4, requires_grad=True)  # 256 bytes, excluded like a parameter
    count = saved_activation_bytes(lambda: (x @ w).exp().sum(), exclude=[w])
    # matmul keeps x (and w, excluded); exp keeps its output (8 x 4 floats = 128 bytes)
    assert count == 512 + 128


@pytest.mark.parametrize("every", [0, -1, 1.5, True, "2"])
def test_every_must_be_a_positive_integer(every):
    ours, _ = ROWS["llama-mha"].pair()
    with pytest.raises(ValueError, match="every"):
        checkpointed_forward(ours, torch.randint(0, 97, (1, 4)), every)


def test_bad_token_ids_are_a_value_error():
    ours, _ = ROWS["llama-mha"].pair()
    with pytest.raises(ValueError, match="token ids must lie in"):
        checkpointed_forward(ours, torch.full((1, 4), 97), 1)
