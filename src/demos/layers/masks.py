"""Attention masks: which keys each query may see. Boolean, True where a query may attend.

Queries are the *last* ``t`` of the ``s`` key positions, so one mask serves a whole prompt (``t == s``)
and one decoding step with a KV cache (``t == 1``).

Axes:
    t  query length (new tokens)
    s  key length (cached + new tokens), s >= t

References:
    vaswani2017attention  causal (masked) self-attention, Section 3.2.3.
    jiang2023mistral      sliding window attention, Section 2.

Reference implementation:
    transformers==5.23.0, masking_utils.py::causal_mask_function, ::sliding_window_overlay
"""

from __future__ import annotations

import torch

from demos.validation import check_positive_int


def causal_mask(t: int, s: int, device: torch.device | None = None) -> torch.Tensor:
    """Boolean ``(t, s)`` mask, True where a query may attend to a key.

    Query ``i`` sits at absolute position ``s - t + i`` and sees every key at or before it.
    """
    check_positive_int("t", t)
    check_positive_int("s", s)
    if s < t:
        raise ValueError(f"key length s ({s}) must be at least the query length t ({t})")
    q_pos = torch.arange(s - t, s, device=device)[:, None]  # (t, 1): absolute query positions
    k_pos = torch.arange(s, device=device)[None, :]  # (1, s)
    return k_pos <= q_pos  # (t, s)


def sliding_window_mask(
    t: int, s: int, window: int, device: torch.device | None = None
) -> torch.Tensor:
    """Causal mask that also hides keys more than ``window - 1`` positions back.

    Each query sees at most the ``window`` most recent keys, itself included: key ``j`` is
    visible to the query at position ``p`` when ``p - window < j <= p`` (transformers' Mistral
    convention).
    """
    check_positive_int("window", window)  # None is no window: use causal_mask for that
    q_pos = torch.arange(s - t, s, device=device)[:, None]  # (t, 1)
    k_pos = torch.arange(s, device=device)[None, :]  # (1, s)
    return causal_mask(t, s, device) & (k_pos > q_pos - window)  # (t, s)
