"""The Qwen chapter's tiny models: a dynamic-NTK pair for the parity cell, and one attention head that
looks for a needle among more and more keys, for LogN-Scaling's experiment.

Reference implementation: transformers==5.23.0, models/qwen2/modeling_qwen2.py::Qwen2ForCausalLM with
``rope_parameters = {"rope_type": "dynamic", "factor": 2.0}`` (modeling_rope_utils.py).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from demos.layers.attention import attention_weights
from demos.layers.long_context import apply_logn
from demos.validation import check_positive_int

DYNAMIC_FACTOR = 2.0  # transformers' dynamic RoPE equals Qwen's chunks at this factor (see below)


def dynamic_ntk_pair(train_len: int = 16, **overrides) -> tuple[nn.Module, nn.Module]:
    """``(ours, reference)``: a random ``Qwen2ForCausalLM`` whose RoPE is transformers' dynamic NTK
    (factor 2, ``max_position_embeddings = train_len``), and our ``Qwen2LM`` with its weights and
    first-generation Qwen's ``use_dynamic_ntk`` (``seq_length = train_len``); both in eval mode.

    transformers' scale is ``2 r - 1`` for ``r = seq_len / train_len >= 1``, Qwen's is
    ``2 ** (ceil(log2 r) + 1) - 1``: the same number whenever ``r`` is a power of two (or ``r <= 1``),
    so the two models agree at ``seq_len = train_len * 2 ** k``. Draws from torch's global seed.
    ``overrides`` go to the tiny config (row ``qwen1.5-like``'s, width 64: head_dim 16).
    """
    from demos.catalog import ROWS
    from demos.models.qwen2 import Qwen2LM

    row = ROWS["qwen1.5-like"]
    fields = {"hidden_size": 64, "max_position_embeddings": train_len, **overrides}
    plain = row.reference(**fields)  # default RoPE: what our from_hf reads
    rope = {"rope_type": "dynamic", "factor": DYNAMIC_FACTOR, "rope_theta": 10000.0}
    reference = row.reference(**fields, rope_parameters=rope)
    reference.load_state_dict(plain.state_dict())  # the same weights; inv_freq is not saved
    config = dataclasses.replace(
        Qwen2LM.from_hf(plain).config, use_dynamic_ntk=True, seq_length=train_len
    )
    ours = Qwen2LM(config)
    ours.load_state_dict(plain.state_dict())
    return ours.eval(), reference.eval()


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of attention weights ``(..., s)`` over the last axis: ``-sum p log p``
    (``0 log 0 = 0``). ``(...)``."""
    logs = torch.where(weights > 0, weights.log(), torch.zeros_like(weights))
    return -(weights * logs).sum(-1)


def needle_entropy(
    lengths: list[int],
    train_len: int,
    margin: float = 3.0,
    logn: bool = False,
    window: int | None = None,
    head_dim: int = 32,
    trials: int = 32,
    seed: int = 0,
) -> list[float]:
    """Mean attention entropy (nats) of the last query among ``n`` keys, for each ``n`` of ``lengths``.

    One head, ``trials`` sequences, float32: keys are random vectors of norm ``sqrt(head_dim)``; the
    query points along one of them (the needle, at a random position) with norm ``margin``, so with
    the scale ``1 / sqrt(d)`` the needle scores ``margin`` and any other key about
    ``margin / sqrt(d)`` times a standard normal. More keys
    spread the weights and raise the entropy; LogN-Scaling (``logn``, training length
    ``train_len``) multiplies the query at position ``n - 1`` by ``log_L(n)``; a ``window`` keeps
    only the last ``window`` keys (the needle then lies inside the window, at a random place).

    Returns:
        One float per length, the entropy averaged over the trials.
    """
    check_positive_int("head_dim", head_dim)
    check_positive_int("trials", trials)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for n in lengths:
        check_positive_int("length", n)
        k = torch.randn(trials, 1, n, head_dim, generator=gen)
        k = k / k.norm(dim=-1, keepdim=True) * math.sqrt(head_dim)  # (trials, 1, n, d)
        span = n if window is None else min(window, n)  # where the needle may lie
        needle = n - 1 - torch.randint(0, span, (trials,), generator=gen)  # (trials,)
        q = k[torch.arange(trials), 0, needle][:, None, None, :]  # (trials, 1, 1, d)
        q = q / q.norm(dim=-1, keepdim=True) * margin  # needle score = margin (scale 1/sqrt(d))
        if logn:
            q = apply_logn(q, torch.tensor([n - 1]), train_len)
        weights = attention_weights(q, k, window=window)  # (trials, 1, 1, n)
        out.append(attention_entropy(weights).mean().item())
    return out
