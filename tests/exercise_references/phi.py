"""References and known mistakes for the Phi chapter's exercises: the one-norm parallel block, and choosing documents by
a quality score under a token budget, a greedy fill that goes on past a document that does not fit (a variant
of the page's rule)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from demos.exercises.core import Check, Mistake, check_function
from demos.training.data_selection import keep_within_budget  # the page's rule: a known mistake


def _norm(x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:])


def _attn(h: torch.Tensor, w_attn: torch.Tensor) -> torch.Tensor:
    return h @ w_attn  # a linear stand-in for attention


def _mlp(h: torch.Tensor, w_mlp: torch.Tensor) -> torch.Tensor:
    return F.gelu(h @ w_mlp, approximate="tanh")


def parallel_block(x: torch.Tensor, w_attn: torch.Tensor, w_mlp: torch.Tensor) -> torch.Tensor:
    """The reference: ``x + attn(ln(x)) + mlp(ln(x))`` with the stand-ins of the exercise."""
    normed = _norm(x)
    return x + _attn(normed, w_attn) + _mlp(normed, w_mlp)


def _sequential(x: torch.Tensor, w_attn: torch.Tensor, w_mlp: torch.Tensor) -> torch.Tensor:
    h = x + _attn(_norm(x), w_attn)
    return h + _mlp(_norm(h), w_mlp)


def _no_residual(x: torch.Tensor, w_attn: torch.Tensor, w_mlp: torch.Tensor) -> torch.Tensor:
    return parallel_block(x, w_attn, w_mlp) - x


def _mlp_reads_x(x: torch.Tensor, w_attn: torch.Tensor, w_mlp: torch.Tensor) -> torch.Tensor:
    return x + _attn(_norm(x), w_attn) + _mlp(x, w_mlp)


def check_parallel_block(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``block(x, w_attn, w_mlp)``: ``x (b, t, c)``, ``w_attn (c, c)``, ``w_mlp (c, c)``."""
    gen = torch.Generator().manual_seed(0)
    cases = {
        f"b={b}, t={t}, c={c}": (
            torch.randn(b, t, c, generator=gen),
            0.3 * torch.randn(c, c, generator=gen),
            0.3 * torch.randn(c, c, generator=gen),
        )
        for b, t, c in [(1, 3, 4), (2, 5, 8)]
    }
    mistakes = [
        Mistake(
            _sequential,
            "the MLP read the attention's output (Llama's order). In Phi both branches read the "
            "same ln(x), computed once, and both outputs are added to x.",
        ),
        Mistake(_mlp_reads_x, "the MLP read x itself; it reads the normalised ln(x)."),
        Mistake(_no_residual, "x itself was not added back: the block returns x + attn + mlp."),
    ]
    return check_function(
        fn, parallel_block, cases, ("x", "w_attn", "w_mlp"), mistakes=mistakes, atol=1e-5
    )


def greedy_fill(scores: torch.Tensor, lengths: torch.Tensor, budget: int) -> torch.Tensor:
    """The reference: best score first (ties: the earlier document first), keep each document
    whose length still fits what is left of ``budget``, skip the others and go on. A bool mask
    ``(n,)`` in the input order."""
    if scores.dim() != 1 or lengths.shape != scores.shape:
        raise ValueError(
            f"scores and lengths must both be (n,), got {tuple(scores.shape)} and "
            f"{tuple(lengths.shape)}"
        )
    if budget < 0 or bool((lengths < 0).any()):
        raise ValueError(f"budget ({budget}) and every length must be >= 0")
    keep, left = torch.zeros(scores.shape, dtype=torch.bool), int(budget)
    for i in torch.sort(scores, descending=True, stable=True).indices.tolist():
        if int(lengths[i]) <= left:
            keep[i], left = True, left - int(lengths[i])
    return keep


def _stop_at_first(scores: torch.Tensor, lengths: torch.Tensor, budget: int) -> torch.Tensor:
    return keep_within_budget(scores, lengths, budget)  # the page's rule


def _worst_first(scores: torch.Tensor, lengths: torch.Tensor, budget: int) -> torch.Tensor:
    return greedy_fill(-scores, lengths, budget)


def _later_first_on_ties(scores: torch.Tensor, lengths: torch.Tensor, budget: int) -> torch.Tensor:
    flipped = greedy_fill(scores.flip(0), lengths.flip(0), budget)  # ties: the later one first
    return flipped.flip(0)


def _strictly_below(scores: torch.Tensor, lengths: torch.Tensor, budget: int) -> torch.Tensor:
    return greedy_fill(
        scores, lengths + 1, budget
    )  # used + length < budget: an exact fit is skipped


def _count_documents(scores: torch.Tensor, lengths: torch.Tensor, budget: int) -> torch.Tensor:
    k = min(budget // max(1, int(lengths.float().mean())), len(scores))
    keep = torch.zeros_like(scores, dtype=torch.bool)
    keep[torch.sort(scores, descending=True, stable=True).indices[:k]] = True
    return keep


def check_greedy_fill(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``greedy_fill(scores, lengths, budget) -> bool mask (n,)``: best score first (ties:
    the earlier document first), keep each document that still fits the tokens left, skip the
    others and go on."""
    gen = torch.Generator().manual_seed(0)
    cases = {}
    for label, (n, budget) in {
        "8 documents, budget 900": (8, 900),
        "20 documents, budget 3000": (20, 3000),
    }.items():
        scores = torch.rand(n, generator=gen)
        lengths = torch.randint(50, 500, (n,), generator=gen)
        cases[label] = (scores, lengths, budget)
    cases["the best document alone is too long"] = (
        torch.tensor([0.9, 0.5, 0.1]),
        torch.tensor([1000, 100, 100]),
        500,
    )
    cases["a tie at the edge: only one of the two fits"] = (
        torch.tensor([0.9, 0.5, 0.5]),
        torch.tensor([300, 250, 200]),
        600,
    )
    cases["the last document fills the budget exactly"] = (
        torch.tensor([0.8, 0.6, 0.4]),
        torch.tensor([300, 500, 200]),
        500,
    )
    cases["nothing fits"] = (torch.tensor([0.3, 0.7]), torch.tensor([400, 500]), 100)
    mistakes = [
        Mistake(
            _stop_at_first,
            "it stopped at the first document that did not fit (the rule the page's "
            "keep_within_budget uses); a greedy fill skips that document and goes on: a shorter "
            "one further down may still fit what is left.",
            "the best document alone is too long",
        ),
        Mistake(_worst_first, "the lowest scores were kept first; sort best first."),
        Mistake(
            _later_first_on_ties,
            "of two documents with the same score the later one was tried first; ties keep the "
            "earlier document first (torch.sort(..., descending=True, stable=True)).",
            "a tie at the edge: only one of the two fits",
        ),
        Mistake(
            _strictly_below,
            "a document that fills the budget exactly was skipped: it fits when used + length "
            "<= budget, not only when it is < budget.",
            "the last document fills the budget exactly",
        ),
        Mistake(
            _count_documents,
            "a number of documents was kept, not a number of tokens: sum their lengths.",
        ),
    ]
    return check_function(
        fn,
        greedy_fill,
        cases,
        ("scores", "lengths", "budget"),
        mistakes=mistakes,
        exact_dtype=True,
    )
