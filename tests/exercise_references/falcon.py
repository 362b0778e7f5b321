"""References and known mistakes for the Falcon chapter's exercises: splitting the fused
``query_key_value`` output, how many sequences a KV-cache budget holds, and fusing separate q/k/v
weights into Falcon's layout (transfer)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, Mistake, check_function
from demos.layers.fused_qkv import split_fused_qkv
from demos.layers.kv_cache import kv_cache_bytes_per_token


def _split_qkv_blocks(fused: torch.Tensor, h: int, g: int, d: int):
    """The classic mistake: read the fused projection as [all queries | all keys | all values]."""
    b, t, _ = fused.shape
    q, k, v = fused.split([h * d, g * d, g * d], dim=-1)
    return (
        q.view(b, t, h, d).transpose(1, 2),  # (b, h, t, d)
        k.view(b, t, g, d).transpose(1, 2),  # (b, g, t, d)
        v.view(b, t, g, d).transpose(1, 2),
    )


def check_split_fused_qkv(fn: Callable[..., tuple]) -> Check:
    """Check a learner's ``split(fused, num_heads, num_kv_heads, head_dim) -> (q, k, v)`` for Falcon's
    fused ``query_key_value`` output: ``q (b, h, t, d)``, ``k`` and ``v`` ``(b, g, t, d)``, exact."""
    gen = torch.Generator().manual_seed(0)
    cases = {
        label: (torch.randn(b, t, (h + 2 * g) * d, generator=gen), h, g, d)
        for label, (b, t, h, g, d) in {
            "multi-query, g = 1": (1, 3, 4, 1, 2),
            "grouped, g = h / 4": (2, 5, 8, 2, 4),
            "multi-head, g = h": (2, 1, 4, 4, 2),
        }.items()
    }
    blocks = Mistake(
        _split_qkv_blocks,
        "the rows were read as [all queries | all keys | all values]. Falcon stores them group "
        "by group: each key/value head's r = h // g queries, then its key, then its value.",
    )
    return check_function(
        fn,
        split_fused_qkv,
        cases,
        ("fused", "num_heads", "num_kv_heads", "head_dim"),
        mistakes=[blocks],
        names=("q", "k", "v"),
    )


# ---------------------------------------------------------------------------- sequences in a budget


def sequences_that_fit_reference(
    budget_bytes: int,
    num_hidden_layers: int,
    num_kv_heads: int,
    head_dim: int,
    seq_len: int,
    bytes_per_value: int,
) -> int:
    """How many whole sequences of ``seq_len`` tokens a KV cache of ``budget_bytes`` holds."""
    per_token = kv_cache_bytes_per_token(num_hidden_layers, num_kv_heads, head_dim, bytes_per_value)
    return budget_bytes // (per_token * seq_len)


def _fit_without(position: int) -> Callable[..., int]:
    """The budget divided by a per-sequence size that forgot one factor."""

    def wrong(budget, *sizes):
        per_sequence = 2 * sizes[0] * sizes[1] * sizes[2] * sizes[3] * sizes[4]
        return budget // (per_sequence // sizes[position])

    return wrong


FIT_MISTAKES = [
    Mistake(
        lambda budget, L, g, d, t, n: budget // (L * g * d * t * n),
        "the 2 for keys and values is missing: the cache holds both.",
    ),
    Mistake(
        lambda budget, L, g, d, t, n: budget / (2 * L * g * d * t * n),
        "that is a fraction of a sequence too: only whole sequences fit (use //).",
    ),
    Mistake(_fit_without(0), "num_hidden_layers is missing: every layer caches its own K and V."),
    Mistake(_fit_without(3), "seq_len is missing: a sequence caches every one of its tokens."),
    Mistake(_fit_without(4), "that counts values, not bytes: multiply by bytes_per_value."),
]


def check_sequences_that_fit(fn: Callable[..., int]) -> Check:
    """Check a learner's ``sequences_that_fit(budget_bytes, num_hidden_layers, num_kv_heads,
    head_dim, seq_len, bytes_per_value)``: an int."""
    cases = {
        "1 MiB, 2 layers, 1 head of 8, 16 tokens, fp32": (2**20, 2, 1, 8, 16, 4),
        "a 7B-like model, 1 GiB, 2048 tokens, fp16": (2**30, 32, 1, 64, 2048, 2),
        "multi-head, 10 GiB, 4096 tokens, fp16": (10 * 2**30, 32, 32, 128, 4096, 2),
        "too small for one sequence": (1000, 4, 2, 16, 64, 2),
    }
    names = ("budget_bytes", "num_hidden_layers", "num_kv_heads", "head_dim", "seq_len")
    return check_function(
        fn,
        sequences_that_fit_reference,
        cases,
        (*names, "bytes_per_value"),
        mistakes=FIT_MISTAKES,
    )


# ---------------------------------------------------------------------------- transfer: fusing


def fuse_qkv_weight_reference(
    q_weight: torch.Tensor,
    k_weight: torch.Tensor,
    v_weight: torch.Tensor,
    num_heads: int,
    num_kv_heads: int,
) -> torch.Tensor:
    """Falcon's ``query_key_value.weight`` from separate ``q_proj`` ``(h d, c)``, ``k_proj`` and
    ``v_proj`` ``(g d, c)`` weights (Llama's): rows group by group, each key/value head's
    ``r = h / g`` query heads, then its key head, then its value head: ``((h + 2 g) d, c)``."""
    c = q_weight.shape[1]
    g, r = num_kv_heads, num_heads // num_kv_heads
    d = q_weight.shape[0] // num_heads
    groups = torch.cat(
        [q_weight.view(g, r, d, c), k_weight.view(g, 1, d, c), v_weight.view(g, 1, d, c)], dim=1
    )  # (g, r + 2, d, c)
    return groups.reshape((num_heads + 2 * g) * d, c)


def _fused_kv_first(q_weight, k_weight, v_weight, num_heads, num_kv_heads):
    c, g = q_weight.shape[1], num_kv_heads
    r, d = num_heads // g, q_weight.shape[0] // num_heads
    groups = torch.cat(
        [k_weight.view(g, 1, d, c), v_weight.view(g, 1, d, c), q_weight.view(g, r, d, c)], dim=1
    )
    return groups.reshape(-1, c)


def _fused_queries_tiled(q_weight, k_weight, v_weight, num_heads, num_kv_heads):
    c, g = q_weight.shape[1], num_kv_heads
    r, d = num_heads // g, q_weight.shape[0] // num_heads
    q = q_weight.view(r, g, d, c).transpose(0, 1)  # query head j put in group j % g
    groups = torch.cat([q, k_weight.view(g, 1, d, c), v_weight.view(g, 1, d, c)], dim=1)
    return groups.reshape(-1, c)


FUSE_MISTAKES = [
    Mistake(
        lambda q, k, v, h, g: torch.cat([q, k, v]),
        "the rows are [all queries | all keys | all values], Phi-3's layout. Falcon's goes group "
        "by group: each key/value head's h / g query heads, then its key, then its value.",
    ),
    Mistake(
        _fused_kv_first,
        "each group starts with its key and value. In Falcon's layout the group's query heads "
        "come first, then the key head, then the value head.",
    ),
    Mistake(
        _fused_queries_tiled,
        "query head j was put in group j % g. Query heads are consecutive per group: head j "
        "belongs to group j // (h / g).",
    ),
]


def check_fuse_qkv_weight(fn: Callable[..., torch.Tensor]) -> Check:
    """Check a learner's ``fuse_qkv_weight(q_weight, k_weight, v_weight, num_heads, num_kv_heads)``:
    Falcon's fused ``((h + 2 g) d, c)`` weight from Llama-style separate ones, exact."""
    gen = torch.Generator().manual_seed(0)
    cases = {
        label: (
            torch.randn(h * d, c, generator=gen),
            torch.randn(g * d, c, generator=gen),
            torch.randn(g * d, c, generator=gen),
            h,
            g,
        )
        for label, (h, g, d, c) in {
            "multi-query, h=4, g=1": (4, 1, 2, 3),
            "grouped, h=8, g=2": (8, 2, 2, 4),
            "multi-head, h=g=3": (3, 3, 2, 5),
        }.items()
    }

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

    return check_function(
        fn,
        fuse_qkv_weight_reference,
        cases,
        ("q_weight", "k_weight", "v_weight", "num_heads", "num_kv_heads"),
        mistakes=FUSE_MISTAKES,
        where=where,
    )
