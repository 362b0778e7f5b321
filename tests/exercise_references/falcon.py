"""References and known mistakes for the Falcon chapter's exercises: which row of the fused
``query_key_value`` output holds a given head's channel, how many sequences a KV-cache budget
holds, and fusing separate q/k/v weights into Falcon's layout (transfer)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, Mistake, check_function
from demos.layers.kv_cache import kv_cache_bytes_per_token

QKV_KINDS = ("q", "k", "v")


def _slot(kind: str, head: int, r: int) -> tuple[int, int]:
    """(group, place of the head within its group) in Falcon's layout."""
    return divmod(head, r) if kind == "q" else (head, r + QKV_KINDS.index(kind) - 1)


def qkv_row_reference(
    kind: str, head: int, channel: int, num_heads: int, num_kv_heads: int, head_dim: int
) -> int:
    """The row of ``query_key_value``'s output (an index into its last axis) that holds channel
    ``channel`` of query head ``head`` (``kind="q"``), key head or value head ``head`` (``"k"``,
    ``"v"``), in Falcon's layout: group by group, each of the ``g`` key/value heads' ``r = h / g``
    query heads, then its key head, then its value head, ``head_dim`` rows each."""
    sizes = (("num_heads", num_heads), ("num_kv_heads", num_kv_heads), ("head_dim", head_dim))
    for name, value in sizes:
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if num_heads % num_kv_heads:
        raise ValueError(
            f"num_kv_heads = {num_kv_heads} must divide num_heads = {num_heads}: each key/value "
            "head serves a whole group of query heads"
        )
    if kind not in QKV_KINDS:
        raise ValueError(f"kind must be 'q', 'k' or 'v', got {kind!r}")
    heads = num_heads if kind == "q" else num_kv_heads
    if not isinstance(head, int) or not 0 <= head < heads:
        raise ValueError(f"head must be an int in [0, {heads}) for kind {kind!r}, got {head!r}")
    if not isinstance(channel, int) or not 0 <= channel < head_dim:
        raise ValueError(f"channel must be an int in [0, {head_dim}), got {channel!r}")
    r = num_heads // num_kv_heads  # query heads per group
    group, slot = _slot(kind, head, r)  # each group: r query heads, its key head, its value head
    return (group * (r + 2) + slot) * head_dim + channel


def _row_blocks(kind, head, channel, h, g, d):
    """[all queries | all keys | all values] (Phi-3's layout)."""
    start = {"q": 0, "k": h, "v": h + g}[kind]
    return (start + head) * d + channel


def _row_queries_tiled(kind, head, channel, h, g, d):
    """Query head j put in group j % g (head-major instead of group-major)."""
    r = h // g
    group, slot = (head % g, head // g) if kind == "q" else _slot(kind, head, r)
    return (group * (r + 2) + slot) * d + channel


def _row_stride_r_plus_1(kind, head, channel, h, g, d):
    """Groups r + 1 heads apart: one of the key and value heads forgotten in the stride."""
    r = h // g
    group, slot = _slot(kind, head, r)
    return (group * (r + 1) + slot) * d + channel


def _row_kv_first(kind, head, channel, h, g, d):
    """Each group as key, value, then its queries."""
    r = h // g
    kv = QKV_KINDS.index(kind) - 1
    group, slot = (head // r, head % r + 2) if kind == "q" else (head, kv)
    return (group * (r + 2) + slot) * d + channel


def _row_heads_not_rows(kind, head, channel, h, g, d):
    """The head's place counted in heads, not rows: head_dim forgotten."""
    r = h // g
    group, slot = _slot(kind, head, r)
    return group * (r + 2) + slot + channel


QKV_ROW_MISTAKES = [
    Mistake(
        _row_blocks,
        "this is the [all queries | all keys | all values] layout (Phi-3's, or multi-query "
        "Falcon-7B's, where g = 1 makes the two the same). Falcon-40B/180B store the rows group "
        "by group: each key/value head's r = h / g query heads, then its key, then its value.",
    ),
    Mistake(
        _row_queries_tiled,
        "query head j was put in group j % g. Query heads are consecutive per group: head j "
        "belongs to group j // r (r = h / g) and is the (j % r)-th head in it.",
    ),
    Mistake(
        _row_stride_r_plus_1,
        "the groups are r + 1 heads apart. Each group holds r + 2 heads (its r queries, a key "
        "and a value), so group n starts at row n (r + 2) head_dim.",
    ),
    Mistake(
        _row_kv_first,
        "each group was read as key, value, then queries. In Falcon's layout the group's r query "
        "heads come first, then the key head, then the value head.",
    ),
    Mistake(
        _row_heads_not_rows,
        "that counts heads, not rows: each head spans head_dim rows, so multiply the head's "
        "place by head_dim before adding the channel.",
    ),
]


def check_qkv_row(fn: Callable[..., int]) -> Check:
    """Check a learner's ``qkv_row(kind, head, channel, num_heads, num_kv_heads, head_dim)``: the
    row of Falcon's fused ``query_key_value`` output holding that channel of that head, an int."""
    cases = {
        "multi-query (g = 1), query head 2": ("q", 2, 1, 4, 1, 3),
        "multi-query (g = 1), the value head": ("v", 0, 2, 4, 1, 3),
        "grouped (h = 8, g = 2), query head 5": ("q", 5, 0, 8, 2, 4),
        "grouped (h = 8, g = 2), query head 2": ("q", 2, 3, 8, 2, 4),
        "grouped (h = 8, g = 2), key head 1": ("k", 1, 3, 8, 2, 4),
        "grouped (h = 8, g = 2), value head 0": ("v", 0, 1, 8, 2, 4),
        "multi-head (h = g = 3), key head 2": ("k", 2, 0, 3, 3, 2),
        "h = 6, g = 3, query head 3, last channel": ("q", 3, 4, 6, 3, 5),
    }
    return check_function(
        fn,
        qkv_row_reference,
        cases,
        ("kind", "head", "channel", "num_heads", "num_kv_heads", "head_dim"),
        mistakes=QKV_ROW_MISTAKES,
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
