"""The Qwen chapter's toy head: entropy by definition, and what LogN and a window do to it."""

from __future__ import annotations

import math

import torch

from demos.toys.qwen import attention_entropy, needle_entropy


def test_entropy_of_uniform_and_one_hot():
    uniform = torch.full((3, 8), 1 / 8)
    torch.testing.assert_close(attention_entropy(uniform), torch.full((3,), math.log(8)))
    assert attention_entropy(torch.tensor([0.0, 1.0, 0.0])).item() == 0.0


def test_with_no_margin_the_weights_are_uniform():
    got = needle_entropy([4, 32], train_len=8, margin=0.0)
    torch.testing.assert_close(torch.tensor(got), torch.tensor([math.log(4), math.log(32)]))


def test_logn_and_a_window_hold_the_entropy_that_plain_attention_lets_grow():
    lengths, L = [64, 1024], 64
    plain = needle_entropy(lengths, L, margin=6.0)
    logn = needle_entropy(lengths, L, margin=6.0, logn=True)
    window = needle_entropy(lengths, L, margin=6.0, window=L)
    assert plain[0] == logn[0] == window[0]  # at the training length nothing changes
    assert plain[1] > plain[0] + 2  # 16 times more keys: far flatter
    assert logn[1] < plain[1] - 2 and window[1] < plain[1] - 2
    assert window[1] <= math.log(L)  # W keys at most
