"""The masked next-token loss equals transformers' causal-LM loss with -100 labels: values and
gradients, float32 and float64; bad labels are a ValueError."""

from __future__ import annotations

import pytest
import torch
from transformers.loss.loss_utils import ForCausalLMLoss

from demos.catalog import ROWS
from demos.training.sft import IGNORE_INDEX, causal_lm_loss, masked_labels


def batch(b: int = 3, t: int = 10, v: int = 97):
    ids = torch.randint(0, v, (b, t))
    trained = torch.rand(b, t) < 0.5
    trained[:, -1] = True  # at least one counted position per row
    return ids, trained


def test_masked_labels_keep_only_the_trained_tokens():
    ids, trained = batch()
    labels = masked_labels(ids, trained)
    assert torch.equal(labels[trained], ids[trained])
    assert (labels[~trained] == IGNORE_INDEX).all()
    assert trained.any() and (~trained).any()  # both kinds were there to check


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_loss_and_gradients_equal_transformers_loss(dtype):
    ids, trained = batch()
    labels = masked_labels(ids, trained)
    logits = torch.randn(*ids.shape, 97, dtype=dtype) * 3
    ours_in, ref_in = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    ours = causal_lm_loss(ours_in, labels)
    ref = ForCausalLMLoss(ref_in, labels, vocab_size=97)
    assert ours.dtype == dtype  # float64 kept (transformers' upcast is to float32 only)
    torch.testing.assert_close(ours.float(), ref, rtol=1e-6, atol=0)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours_in.grad.float(), ref_in.grad.float(), rtol=1e-6, atol=1e-9)
    assert ours_in.grad[:, -1].abs().sum() == 0  # the last position predicts nothing


def test_the_loss_of_a_model_called_with_labels():
    torch.manual_seed(0)
    ours, reference = ROWS["llama-gqa"].pair()
    ids, trained = batch(2, 9)
    labels = masked_labels(ids, trained)
    expected = reference(ids, labels=labels).loss
    torch.testing.assert_close(causal_lm_loss(ours(ids), labels), expected, rtol=1e-6, atol=1e-6)


def test_masked_positions_do_not_count():
    """Changing the logits that predict an ignored label changes nothing."""
    ids, trained = batch()
    labels = masked_labels(ids, trained)
    logits = torch.randn(*ids.shape, 97)
    moved = logits.clone()
    ignored = torch.zeros_like(trained)
    ignored[:, :-1] = labels[:, 1:] == IGNORE_INDEX  # positions whose next label is ignored
    assert ignored.any()
    moved[ignored] += 10.0
    assert torch.equal(causal_lm_loss(logits, labels), causal_lm_loss(moved, labels))


def test_bad_input_is_a_value_error():
    ids, trained = batch()
    logits = torch.randn(*ids.shape, 97)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 97\) or be -100, got 97"):
        causal_lm_loss(logits, ids.clamp(max=96).index_fill(1, torch.tensor([3]), 97))
    with pytest.raises(ValueError, match="no label to predict"):
        causal_lm_loss(logits, torch.full_like(ids, IGNORE_INDEX))
    with pytest.raises(ValueError, match=r"must be \(b, t, v\)"):
        causal_lm_loss(logits[:, :-1], ids)
    with pytest.raises(ValueError, match="integer tensor"):
        causal_lm_loss(logits, ids.float())
    with pytest.raises(ValueError, match="boolean tensor"):
        masked_labels(ids, trained.long())
    with pytest.raises(ValueError, match="must have input_ids' shape"):
        masked_labels(ids, trained[:, :-1])
