"""Prompt erasure (Orca 2): the teacher is told how to answer; the student sees only the answer.

Orca 2's training data come from a teacher model (GPT-4) that was given a detailed, task-specific
system instruction: the strategy to use (step by step, recall then generate, answer directly, ...).
The student is trained on the teacher's answer with that instruction *erased*: its input holds a
generic system message instead, so it has to learn from the task itself which strategy to use
[mitra2023orca2]. Orca 1 had introduced the teacher's side, explanation tuning: system messages that
ask the teacher to explain its answer step by step [mukherjee2023orca]. The loss counts only the
tokens the teacher generated [azureml2023orca2card].

This module builds the student's training example as pure functions: the messages
(:func:`erase_prompt`), their ChatML text (:func:`chatml`), the pieces of that text that are trained
on (:func:`chatml_segments`), and token ids with a boolean mask of the trained tokens
(:func:`training_ids`), which ``demos.training.sft.masked_labels`` turns into labels.

Axes:
    t  sequence length (tokens)

References:
    mitra2023orca2         Orca 2: strategies, Prompt Erasing, the generic system message.
    mukherjee2023orca      Orca 1: explanation tuning (system messages that elicit explanations).
    azureml2023orca2card   Orca 2's model description: ChatML tokens <|im_start|>, <|im_end|> and
                           [[PAD]] added to Llama's tokenizer (32,003 tokens); loss only on the
                           teacher's tokens.
    hf_orca2_card          the model card's prompt: <|im_start|>system, user, then <|im_start|>assistant.

Reference implementation:
    transformers==5.23.0, tokenization_utils_base.py::PreTrainedTokenizerBase.apply_chat_template
    with ``return_assistant_tokens_mask=True`` on :data:`CHATML_TEMPLATE` (whose ``{% generation %}``
    block marks the trained text): the same ids and the same mask (tests/training/test_prompt_erasure.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

IM_START, IM_END = "<|im_start|>", "<|im_end|>"  # ChatML's markers, added tokens in Orca 2
PAD = "[PAD]"  # Orca 2's added padding token (tokenizer id 32000 in the release)
ROLES = ("system", "user", "assistant")

# The system message of Orca 2's model card examples [hf_orca2_card]: it says nothing of how to
# solve a task, so a student trained under it must pick the strategy itself.
GENERIC_SYSTEM = (
    "You are Orca, an AI language model created by Microsoft. You are a cautious assistant. You "
    "carefully follow instructions. You are helpful and harmless and you follow ethical guidelines "
    "and promote positive behavior."
)

# The same text as :func:`chatml`, written for transformers' apply_chat_template; the
# {% generation %} block marks what return_assistant_tokens_mask=True reports as trained.
CHATML_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "{{ '<|im_start|>' + m['role'] + '\n' }}"
    "{% if m['role'] == 'assistant' %}"
    "{% generation %}{{ m['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}{{ m['content'] + '<|im_end|>' + '\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _check_text(name: str, text: Any) -> None:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{name} must be a non-empty str, got {text!r}")
    for marker in (IM_START, IM_END):
        if marker in text:
            raise ValueError(f"{name} must not contain the ChatML marker {marker}: {text!r}")


@dataclass(frozen=True)
class TeacherExample:
    """One example as the teacher saw it and answered it.

    Attributes:
        system: the detailed system instruction: the strategy the teacher was told to use.
        user: the task.
        answer: the teacher's answer (what the student is trained to write).

    Raises:
        ValueError: an empty field, or one holding a ChatML marker.
    """

    system: str
    user: str
    answer: str

    def __post_init__(self) -> None:
        for name in ("system", "user", "answer"):
            _check_text(name, getattr(self, name))


def teacher_messages(example: TeacherExample) -> list[dict[str, str]]:
    """The conversation the teacher answered: its detailed instruction, the task, its answer."""
    return [
        {"role": "system", "content": example.system},
        {"role": "user", "content": example.user},
        {"role": "assistant", "content": example.answer},
    ]


def erase_prompt(example: TeacherExample, generic: str = GENERIC_SYSTEM) -> list[dict[str, str]]:
    """The student's conversation: the same task and answer, the system instruction replaced by
    ``generic`` (Prompt Erasing [mitra2023orca2]).

    Raises:
        ValueError: ``generic`` empty or holding a ChatML marker.
    """
    _check_text("generic", generic)
    messages = teacher_messages(example)
    messages[0] = {"role": "system", "content": generic}  # the strategy is erased; the rest is kept
    return messages


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list | tuple) or not messages:
        raise ValueError(f"messages must be a non-empty list of dicts, got {messages!r}")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            raise ValueError(f"messages[{i}] must be a dict with 'role' and 'content', got {m!r}")
        if m["role"] not in ROLES:
            raise ValueError(f"messages[{i}]['role'] must be one of {ROLES}, got {m['role']!r}")
        _check_text(f"messages[{i}]['content']", m["content"])


def chatml_segments(messages: list[dict[str, str]]) -> list[tuple[str, bool]]:
    """The ChatML text of ``messages`` in pieces ``(text, trained)``; joined, they are :func:`chatml`.

    Trained: each assistant message's content and its closing ``<|im_end|>`` (the student must learn
    to stop). Not trained: every header ``<|im_start|>role\\n``, the system and user messages, the
    newline after each message.

    Raises:
        ValueError: a role outside ``ROLES``, an empty content, or a content holding a marker.
    """
    _check_messages(messages)
    pieces: list[tuple[str, bool]] = []
    for m in messages:
        pieces.append((f"{IM_START}{m['role']}\n", False))
        if m["role"] == "assistant":
            pieces += [(m["content"] + IM_END, True), ("\n", False)]
        else:
            pieces.append((m["content"] + IM_END + "\n", False))
    return pieces


def chatml(messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    """``messages`` as ChatML text: ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` each, then, with
    ``add_generation_prompt``, the opening of the assistant's turn ``<|im_start|>assistant\\n``."""
    text = "".join(piece for piece, _ in chatml_segments(messages))
    return text + (f"{IM_START}assistant\n" if add_generation_prompt else "")


def training_ids(
    messages: list[dict[str, str]], tokenizer: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids of ``messages`` in ChatML, and which of them are trained on.

    Each piece of :func:`chatml_segments` is encoded on its own (no special tokens added), after
    the tokenizer's BOS token when it has one, so every token belongs to exactly one piece.

    Args:
        messages: the conversation (``role`` and ``content`` dicts).
        tokenizer: a transformers tokenizer whose vocabulary holds ``<|im_start|>`` and
            ``<|im_end|>`` as single tokens.

    Returns:
        ``(input_ids, trained)``: ``(t,)`` int64 and ``(t,)`` bool (True: an answer token).

    Raises:
        ValueError: bad messages (see :func:`chatml_segments`), no assistant message (nothing to
            train on), or a tokenizer that splits a ChatML marker.
    """
    pieces = chatml_segments(messages)
    if not any(trained for _, trained in pieces):
        raise ValueError("messages hold no assistant message: there is no token to train on")
    for marker in (IM_START, IM_END):
        if len(tokenizer.encode(marker, add_special_tokens=False)) != 1:
            raise ValueError(
                f"the tokenizer splits {marker} into several tokens; add it as a token"
            )
    ids: list[int] = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
    trained: list[bool] = [False] * len(ids)
    for text, train in pieces:
        piece = tokenizer.encode(text, add_special_tokens=False)
        ids += piece
        trained += [train] * len(piece)
    return torch.tensor(ids, dtype=torch.long), torch.tensor(trained)  # (t,), (t,)
