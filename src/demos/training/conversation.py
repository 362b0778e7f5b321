"""Vicuna's conversation format, and which of its tokens a fine-tune trains on.

A conversation is a list of turns, ``{"role": "user" | "assistant", "content": str}``, optionally
after one ``{"role": "system", ...}``, as transformers' chat templates take them. FastChat's
``vicuna_v1.1`` template writes it as one string: the system prompt, a space, then
``USER: <text> `` and ``ASSISTANT: <text></s>`` in turn [fastchat_conversation_0236]. The
fine-tune counts the loss on the assistant's words only [chiang2023vicuna]; here a token is
trained when any character of it lies in an assistant's reply or the ``</s>`` that closes it.

Which tokens those are is decided on the whole string, tokenised once, by the characters each
token covers (a fast tokenizer's ``offset_mapping``): byte-pair merges cross the boundary between a
role tag and a reply (GPT-2-style BPE glues the space to the next word), so tokenising turn by turn
gives other tokens. FastChat also tokenises the whole string, then finds the boundaries by
tokenising each piece again and counting, with a correction hard-coded for Llama's tokenizer
[fastchat_train_0236]; offsets need no correction.

Axes:
    t  tokens of one conversation
    b  conversations in a batch

References:
    fastchat_conversation_0236  fastchat/conversation.py: Conversation.get_prompt (ADD_COLON_TWO),
                                the ``vicuna_v1.1`` template.
    fastchat_train_0236         fastchat/train/train.py: preprocess (the label mask).
    chiang2023vicuna            the loss "solely on the chatbot's output".

Reference implementation: fschat==0.2.36, fastchat/conversation.py::get_conv_template("vicuna_v1.1").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
ROLE_TAGS = {"user": "USER", "assistant": "ASSISTANT"}
SEP, SEP2 = " ", "</s>"  # after a user's turn, after an assistant's turn

# The same format as a transformers chat template (Jinja), written for this book: Vicuna's released
# tokenizers carry no chat template of their own (checked on neither, so: unverified).
VICUNA_CHAT_TEMPLATE = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set system = messages[0]['content'] -%}{%- set turns = messages[1:] -%}"
    "{%- else -%}"
    '{%- set system = "' + VICUNA_SYSTEM + '" -%}{%- set turns = messages -%}'
    "{%- endif -%}"
    "{{- system + ' ' -}}"
    "{%- for m in turns -%}"
    "{%- if m['role'] != ('user' if loop.index0 % 2 == 0 else 'assistant') -%}"
    "{{- raise_exception('turns must alternate user, assistant, user, ...') -}}"
    "{%- endif -%}"
    "{%- if m['role'] == 'user' -%}{{- 'USER: ' + m['content'] + ' ' -}}"
    "{%- else -%}{{- 'ASSISTANT: ' + m['content'] + '</s>' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- 'ASSISTANT:' -}}{%- endif -%}"
)


def check_messages(messages: Any) -> tuple[str, list[tuple[str, str]]]:
    """``(system prompt, [(role, content), ...])`` of a conversation; ``ValueError`` unless it is a
    list of ``{"role", "content"}`` mappings, an optional system turn first, then user and assistant
    turns alternating from the user's, each content a non-empty string."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence) or not messages:
        raise ValueError(f"messages must be a non-empty list of turns, got {messages!r:.80}")
    turns = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or set(m) != {"role", "content"}:
            raise ValueError(
                f"turn {i} must be a dict with keys 'role' and 'content', got {m!r:.80}"
            )
        role, content = m["role"], m["content"]
        if not isinstance(content, str) or (not content and role != "system"):
            raise ValueError(f"turn {i}: content must be a non-empty string, got {content!r:.80}")
        turns.append((role, content))
    system = VICUNA_SYSTEM
    if turns[0][0] == "system":
        system, turns = turns[0][1], turns[1:]
    for i, (role, _) in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        if role != expected:
            raise ValueError(
                f"turn {i} (after the system prompt) has role {role!r}, expected {expected!r}: "
                "Vicuna's turns alternate user, assistant, user, ..."
            )
    return system, turns


def render_vicuna(
    messages: Sequence[Mapping[str, str]], add_generation_prompt: bool = False
) -> tuple[str, list[tuple[int, int]]]:
    """The ``vicuna_v1.1`` prompt of ``messages`` and the character spans the fine-tune trains on.

    Args:
        messages: the conversation (see :func:`check_messages`).
        add_generation_prompt: end with ``"ASSISTANT:"``, where the model's reply starts (FastChat
            appends a message ``None`` for this).

    Returns:
        ``(text, spans)``: the string FastChat's ``get_prompt()`` returns, and one ``(start, end)``
        per assistant turn (``text[start:end]`` is the reply and its closing ``</s>``).

    Raises:
        ValueError: a malformed conversation (:func:`check_messages`).
    """
    system, turns = check_messages(messages)
    text, spans = system + SEP, []
    for role, content in turns:
        text += ROLE_TAGS[role] + ": "
        if role == "assistant":
            spans.append((len(text), len(text) + len(content) + len(SEP2)))
        text += content + (SEP if role == "user" else SEP2)
    if add_generation_prompt:
        text += ROLE_TAGS["assistant"] + ":"
    return text, spans


def vicuna_prompt(
    messages: Sequence[Mapping[str, str]], add_generation_prompt: bool = False
) -> str:
    """The ``vicuna_v1.1`` prompt string of ``messages`` (see :func:`render_vicuna`)."""
    return render_vicuna(messages, add_generation_prompt)[0]


def trained_tokens(offsets: torch.Tensor, spans: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Which tokens are trained: those whose characters overlap a trained span.

    Args:
        offsets: ``(t, 2)`` integers, each token's ``[start, end)`` in the text (a fast tokenizer's
            ``offset_mapping``; an added BOS has ``(0, 0)`` and overlaps nothing).
        spans: ``[start, end)`` character spans to train on (:func:`render_vicuna`).

    Returns:
        ``(t,)`` booleans, True where the token overlaps a span: ``start < span_end`` and
        ``end > span_start``. A token that straddles a boundary (``" Hi"`` after ``"ASSISTANT:"``)
        is trained, as FastChat trains it.

    Raises:
        ValueError: ``offsets`` not an integer ``(t, 2)`` tensor.
    """
    if (
        not isinstance(offsets, torch.Tensor)
        or offsets.dim() != 2
        or offsets.shape[-1] != 2
        or offsets.dtype.is_floating_point
        or offsets.dtype == torch.bool
    ):
        got = tuple(offsets.shape) if isinstance(offsets, torch.Tensor) else type(offsets).__name__
        raise ValueError(f"offsets must be an integer tensor of shape (t, 2), got {got}")
    start, end = offsets[:, 0], offsets[:, 1]  # (t,), (t,)
    trained = torch.zeros(offsets.shape[0], dtype=torch.bool, device=offsets.device)
    for s, e in spans:
        trained |= (start < e) & (end > s)  # (t,): any character of the token inside [s, e)
    return trained


def tokenize_conversations(
    tokenizer: Any, conversations: Sequence[Sequence[Mapping[str, str]]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render, tokenise (each whole string at once) and right-pad a batch of conversations.

    Args:
        tokenizer: a transformers fast tokenizer (``return_offsets_mapping`` support).
        conversations: ``b`` conversations (see :func:`check_messages`).

    Returns:
        ``(input_ids, trained)``, both ``(b, t)``: the ids, right-padded with the tokenizer's pad
        id (its EOS id when it has none), and True where a token is trained (never on padding).
        ``demos.training.sft.masked_labels(input_ids, trained)`` turns them into labels.

    Raises:
        ValueError: a malformed conversation, or a tokenizer without offsets.
    """
    rows = []
    for messages in conversations:
        text, spans = render_vicuna(messages)
        enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=True)
        offsets = torch.tensor(enc["offset_mapping"], dtype=torch.long).reshape(-1, 2)  # (t, 2)
        rows.append((torch.tensor(enc["input_ids"]), trained_tokens(offsets, spans)))
    if not rows:
        raise ValueError("conversations must hold at least one conversation")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    t = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), t), pad, dtype=torch.long)  # (b, t)
    trained = torch.zeros(len(rows), t, dtype=torch.bool)  # (b, t)
    for i, (ids, mask) in enumerate(rows):
        input_ids[i, : len(ids)], trained[i, : len(ids)] = ids, mask
    return input_ids, trained
