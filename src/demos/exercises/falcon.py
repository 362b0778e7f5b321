"""Checkers for the Falcon chapter's exercises: which row of the fused ``query_key_value`` output holds a
given head's channel, how many sequences a KV-cache budget holds, and fusing separate q/k/v weights into
Falcon's layout (transfer)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded


def check_qkv_row(fn: Callable[..., int]) -> Check:
    """Check a learner's ``qkv_row(kind, head, channel, num_heads, num_kv_heads, head_dim)``: the
    row of Falcon's fused ``query_key_value`` output holding that channel of that head, an int."""
    return check_recorded(
        fn,
        recorded(__name__, "check_qkv_row"),
        ("kind", "head", "channel", "num_heads", "num_kv_heads", "head_dim"),
    )


# ---------------------------------------------------------------------------- sequences in a budget


def check_sequences_that_fit(fn: Callable[..., int]) -> Check:
    """Check a learner's ``sequences_that_fit(budget_bytes, num_hidden_layers, num_kv_heads,
    head_dim, seq_len, bytes_per_value)``: an int."""
    names = ("budget_bytes", "num_hidden_layers", "num_kv_heads", "head_dim", "seq_len")
    return check_recorded(
        fn, recorded(__name__, "check_sequences_that_fit"), (*names, "bytes_per_value")
    )


# ---------------------------------------------------------------------------- transfer: fusing


def check_fuse_qkv_weight(fn: Callable[..., torch.Tensor]) -> Check:
    """Check a learner's ``fuse_qkv_weight(q_weight, k_weight, v_weight, num_heads, num_kv_heads)``:
    Falcon's fused ``((h + 2 g) d, c)`` weight from Llama-style separate ones, exact."""

    def where(index: tuple, args: tuple) -> str:
        row, col = index
        h, g = args[3], args[4]
        d = args[0].shape[0] // h
        group, within = divmod(row // d, h // g + 2)
        r = h // g
        part = (
            f"query head {group * r + within}"
            if within < r
            else ("the key head" if within == r else "the value head")
        )
        return f"row {row} (group {group}, {part}, channel {row % d}), column {col}"

    return check_recorded(
        fn,
        recorded(__name__, "check_fuse_qkv_weight"),
        ("q_weight", "k_weight", "v_weight", "num_heads", "num_kv_heads"),
        where=where,
    )
