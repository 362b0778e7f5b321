"""The Vicuna chapter's traps: the loss counted on the user's turns too, and an online softmax that
forgets to rescale its running sum.

1. Fine-tuning on conversations, the labels must hide everything but the assistant's replies. Labels
   copied from the input ids (the pre-training habit) train the model to write the user's questions
   and the system prompt as well. Measured on the book's three toy conversations
   (``demos.toys.vicuna``) as the gradient of the loss with respect to the logits, against
   transformers' ``LlamaForCausalLM(ids, labels=...).loss`` with the assistant-only labels, on the
   catalogue row ``llama-mha``: the wrong labels move the gradient onto the user's turns.
2. In the online softmax, a new running maximum must rescale both the accumulated output and the
   running sum. Forgetting the sum leaves every row whose maximum moved with a denominator too large.
   Measured against ``torch.nn.functional.scaled_dot_product_attention``.

Reference implementation: transformers==5.23.0, loss/loss_utils.py::ForCausalLMLoss; torch==2.13.0,
``torch.nn.functional.scaled_dot_product_attention``.
"""

from __future__ import annotations

from unittest import mock

import torch
import torch.nn.functional as F

from demos.traps import Measured, Trap

LOSS_TOLERANCE = 1e-5  # fp32 gradients of the same loss agree to ~1e-9 (entries are ~1 / tokens)
ATTENTION_TOLERANCE = 1e-5  # fp32 attention, blocks vs one softmax: a few ulps


def measure_loss_on_every_turn() -> Measured:
    """Ours with assistant-only labels (right) and with labels on every real token (wrong), against
    transformers' model loss with assistant-only labels: the gradient of the loss with respect to
    the logits, which says which predictions the loss trains and how hard."""
    from demos.catalog import ROWS
    from demos.toys.vicuna import CONVERSATIONS, tokenizer
    from demos.training.conversation import tokenize_conversations, vicuna_prompt
    from demos.training.sft import causal_lm_loss, masked_labels

    torch.manual_seed(0)
    tok = tokenizer()
    ids, trained = tokenize_conversations(tok, CONVERSATIONS)
    real = torch.zeros_like(trained)
    for row, messages in enumerate(CONVERSATIONS):  # every token that is not padding
        real[row, : len(tok(vicuna_prompt(messages))["input_ids"])] = True
    ours, reference = ROWS["llama-mha"].pair(vocab_size=len(tok))
    out = reference(ids, labels=masked_labels(ids, trained))
    expected = torch.autograd.grad(out.loss, out.logits)[0]  # (b, t, v)
    logits = ours(ids).detach().requires_grad_()
    right = torch.autograd.grad(causal_lm_loss(logits, masked_labels(ids, trained)), logits)[0]
    wrong = torch.autograd.grad(causal_lm_loss(logits, masked_labels(ids, real)), logits)[0]
    quantity = (
        "gradient of the loss w.r.t. the logits, 3 toy conversations, LlamaForCausalLM row "
        "llama-mha, fp32"
    )
    return Measured.of(right, wrong, expected, LOSS_TOLERANCE, quantity)


def update_without_rescaling_the_sum(m, ell, acc, scores, v):
    """The wrong update: the old running sum is not multiplied by exp(m_old - m_new)."""
    m_new = torch.maximum(m, scores.amax(dim=-1, keepdim=True))
    p = torch.exp(scores - m_new)
    alpha = torch.exp(m - m_new)
    return m_new, ell + p.sum(dim=-1, keepdim=True), alpha * acc + p @ v  # the wrong line: ell


def measure_online_softmax_without_rescaling() -> Measured:
    """tiled_attention (right) and the same with the wrong update (wrong) against SDPA, causal,
    b = 1, h = 4, g = 2, t = s = 48, d = 16, block_size = 8, fp32."""
    from demos.layers import tiled_attention as module

    gen = torch.Generator().manual_seed(0)
    q = torch.randn(1, 4, 48, 16, generator=gen)
    k, v = (torch.randn(1, 2, 48, 16, generator=gen) for _ in range(2))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    right = module.tiled_attention(q, k, v, block_size=8)
    with mock.patch.object(module, "online_softmax_update", update_without_rescaling_the_sum):
        wrong = module.tiled_attention(q, k, v, block_size=8)
    quantity = "outputs of causal attention, t = s = 48, blocks of 8, h = 4, g = 2, fp32"
    return Measured.of(right, wrong, expected, ATTENTION_TOLERANCE, quantity)


TRAPS = [
    Trap(
        chapter="vicuna",
        title="The loss counted on the user's turns too",
        wrong="labels = input_ids.masked_fill(padding, -100)  # every real token",
        right="labels = input_ids.masked_fill(~trained, -100)  # the replies only",
        shows="the loss, and so every gradient: the model is trained to write the user's questions",
        measure=measure_loss_on_every_turn,
    ),
    Trap(
        chapter="vicuna",
        title="An online softmax that forgets to rescale its running sum",
        wrong="ell = ell + p.sum(-1, keepdim=True)",
        right="ell = alpha * ell + p.sum(-1, keepdim=True)  # alpha = exp(m_old - m_new)",
        shows="every query whose running maximum moved after its first key block; one block "
        "(block_size >= s) hides it",
        measure=measure_online_softmax_without_rescaling,
    ),
]
