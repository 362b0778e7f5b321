"""demos.generation.same_greedy_tokens: the parity cells' generation check says yes and no rightly."""

from __future__ import annotations

import torch

from demos.catalog import ROWS
from demos.generation import same_greedy_tokens


def test_same_greedy_tokens_agrees_with_its_reference_and_not_with_another():
    row = ROWS["llama-gqa"]
    ours, reference = row.pair()
    prompt = torch.randint(0, reference.config.vocab_size, (2, 5))
    assert same_greedy_tokens(ours, reference, prompt, 6)
    mask = torch.tensor([[1] * 5, [0, 0] + [1] * 3])  # a left-padded batch
    assert same_greedy_tokens(ours, reference, prompt * mask, 6, attention_mask=mask)
    _, other = row.pair()  # another random model of the same row: other tokens
    assert not same_greedy_tokens(ours, other, prompt, 6)
