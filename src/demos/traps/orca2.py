"""The Orca 2 chapter's traps: the loss counted on the prompt too, and labels shifted twice.

Orca 2 computes the loss only on the tokens the teacher generated [azureml2023orca2card]. Two
mistakes run without an error and train on something else: labels that copy every input id (the
system message and the task become targets, so the student learns to write prompts), and labels
shifted by hand before a loss that shifts them again (every position is trained to predict the
token two ahead). Both are measured on one erased training example of the toy task, against the
loss transformers' ``LlamaForCausalLM`` computes from ``labels=`` with -100 on the prompt
(transformers==5.23.0, loss/loss_utils.py::ForCausalLMLoss).
"""

from __future__ import annotations

import torch

from demos.catalog import ROWS
from demos.training.prompt_erasure import erase_prompt, training_ids
from demos.training.sft import IGNORE_INDEX, causal_lm_loss, masked_labels
from demos.traps import Measured, Trap
from demos.traps.tiny import seeded

QUANTITY = "|loss - LlamaForCausalLM(labels=...).loss|, one erased toy example, fp32 (nats)"
TOLERANCE = 1e-5  # float32 cross-entropy over about 60 tokens: rounding near 1e-7


def example() -> tuple[torch.nn.Module, torch.nn.Module, torch.Tensor, torch.Tensor]:
    """``(ours, reference, input_ids (1, t), labels (1, t))``: the catalogue row ``llama-mha`` at
    the toy tokenizer's vocabulary (random weights, seeded), and one erased example with the
    teacher's answer as the only target."""
    from demos.toys.orca2 import teacher_example, toy_tokenizer

    tokenizer = toy_tokenizer()
    ids, trained = training_ids(erase_prompt(teacher_example([3, 5, 2])), tokenizer)
    with seeded(0):
        ours, reference = ROWS["llama-mha"].pair(vocab_size=len(tokenizer))
    return ours, reference, ids[None], masked_labels(ids[None], trained[None])


def _measure(wrong_labels) -> Measured:
    ours, reference, ids, labels = example()
    with torch.no_grad():
        expected = reference(ids, labels=labels).loss
        logits = ours(ids)
        right = causal_lm_loss(logits, labels)
        wrong = causal_lm_loss(logits, wrong_labels(ids, labels))
    return Measured.of(right, wrong, expected, TOLERANCE, QUANTITY)


def every_token(ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The wrong labels: every input id, the system message and the task included."""
    return ids.clone()


def shifted_by_hand(ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The wrong labels: shifted one to the left before a loss that shifts them again."""
    return torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], IGNORE_INDEX)], dim=1)


TRAPS = [
    Trap(
        chapter="orca2",
        title="The loss counted on the system message and the task",
        wrong="labels = input_ids.clone()  # every token a target",
        right="labels = masked_labels(input_ids, trained)  # the answer only",
        shows="the loss and its gradient: the student learns to write prompts",
        measure=lambda: _measure(every_token),
    ),
    Trap(
        chapter="orca2",
        title="Labels shifted by hand, then again by the loss",
        wrong="labels = labels[:, 1:]  # then the loss shifts once more",
        right="labels = masked_labels(input_ids, trained)  # unshifted",
        shows="every target: each position learns the token two ahead",
        measure=lambda: _measure(shifted_by_hand),
    ),
]
