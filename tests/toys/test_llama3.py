"""The Llama 3 chapter's corpus and tokenizer helpers."""

from __future__ import annotations

import pytest

from demos.toys.llama3 import (
    CORPUS,
    paragraphs,
    split_corpus,
    tokens_per_character,
    train_byte_level_bpe,
)


def test_corpus_has_seven_languages_and_code_each_with_a_held_out_paragraph():
    assert len(CORPUS) == 8 and "Python" in CORPUS
    train, held_out = split_corpus()
    for language, text in CORPUS.items():
        parts = paragraphs(text)
        assert len(parts) >= 3, language
        assert held_out[language] == parts[-1] and held_out[language] not in train[language]


def test_bytes_alone_cost_one_token_per_utf8_byte():
    """With no merges (256 tokens), byte-level BPE spends one token per byte: Chinese costs 3 per
    character, Latin script 1 (a property, no reference needed)."""
    train, held_out = split_corpus()
    tokenizer = train_byte_level_bpe(list(train.values()), 256)
    for text in held_out.values():
        assert tokens_per_character(tokenizer, text) == len(text.encode()) / len(text)


def test_more_tokens_never_cost_more_tokens_per_character_on_the_training_text():
    train, _ = split_corpus()
    texts = list(train.values())
    ratios = [
        sum(tokens_per_character(train_byte_level_bpe(texts, v), t) for t in texts)
        for v in (256, 512, 1024)
    ]
    assert ratios[0] > ratios[1] > ratios[2]


def test_bad_input_raises():
    with pytest.raises(ValueError, match=r"vocab_size \(100\) must be >= 256"):
        train_byte_level_bpe(["abc"], 100)
    with pytest.raises(ValueError, match="vocab_size"):
        train_byte_level_bpe(["abc"], 0)
    tokenizer = train_byte_level_bpe(["abc abc"], 256)
    with pytest.raises(ValueError, match="text is empty"):
        tokens_per_character(tokenizer, "")
