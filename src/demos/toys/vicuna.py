"""The Vicuna chapter's toy conversations and an offline tokenizer for them.

Three short multi-turn conversations, written for this book in the shape of ShareGPT's (a user's
question, the assistant's answer, a follow-up), and a byte-level BPE tokenizer trained on their
``vicuna_v1.1`` renderings on the spot (``demos.eval.harness_reference.train_tokenizer``: GPT-2-style,
a space glued to the next word, ``<s>`` prepended, ``</s>`` a special token). Nothing is downloaded;
the tokenizer stands in for Vicuna's own (Llama's 32,000-token SentencePiece), which this book cannot
fetch at run time.
"""

from __future__ import annotations

from typing import Any

from demos.training.conversation import vicuna_prompt

CONVERSATIONS = [
    [
        {"role": "user", "content": "Where do vicunas live?"},
        {"role": "assistant", "content": "In the high Andes, above 3,200 metres."},
        {"role": "user", "content": "What do they eat?"},
        {"role": "assistant", "content": "Mostly grasses that grow near the ground."},
    ],
    [
        {"role": "system", "content": "You answer in one short sentence."},
        {"role": "user", "content": "Is a vicuna a kind of llama?"},
        {"role": "assistant", "content": "It is a wild relative of the llama and the alpaca."},
    ],
    [
        {"role": "user", "content": "Name a fibre finer than wool."},
        {"role": "assistant", "content": "Vicuna fibre: a few microns thick."},
        {"role": "user", "content": "How thick exactly?"},
        {"role": "assistant", "content": "About 12 to 14 microns."},
        {"role": "user", "content": "Thanks!"},
        {"role": "assistant", "content": "You are welcome."},
    ],
]
VOCAB_SIZE = 320  # the 256 bytes, <s> and </s>, and 62 merges


def tokenizer() -> Any:
    """A transformers ``PreTrainedTokenizerFast`` trained on the rendered :data:`CONVERSATIONS`
    (deterministic; trained once per process)."""
    from demos.eval.harness_reference import train_tokenizer

    return train_tokenizer([vicuna_prompt(c) for c in CONVERSATIONS], vocab_size=VOCAB_SIZE)
