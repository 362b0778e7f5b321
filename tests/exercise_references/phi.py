"""References and known mistakes for the Phi chapter's exercises: the one-norm parallel block, and choosing documents by
a quality score under a token budget (transfer: the data idea as code)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from demos.exercises.core import Check, Mistake, check_function
from demos.training.data_selection import keep_within_budget  # the reference: the page uses it


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


def _worst_first(scores: torch.Tensor, lengths: torch.Tensor, budget: int) -> torch.Tensor:
    return keep_within_budget(-scores, lengths, budget)


def _skip_and_continue(scores: torch.Tensor, lengths: torch.Tensor, budget: int) -> torch.Tensor:
    order = torch.sort(scores, descending=True, stable=True).indices
    keep, used = torch.zeros_like(scores, dtype=torch.bool), 0
    for i in order.tolist():
        if used + int(lengths[i]) <= budget:
            keep[i], used = True, used + int(lengths[i])
    return keep


def _count_documents(scores: torch.Tensor, lengths: torch.Tensor, budget: int) -> torch.Tensor:
    k = min(budget // max(1, int(lengths.float().mean())), len(scores))
    keep = torch.zeros_like(scores, dtype=torch.bool)
    keep[torch.sort(scores, descending=True, stable=True).indices[:k]] = True
    return keep


def check_keep_within_budget(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``keep(scores, lengths, budget) -> bool mask``: the best documents by score, best
    first, while the total of their lengths stays within ``budget`` tokens (stop at the first
    that does not fit)."""
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
    mistakes = [
        Mistake(_worst_first, "the lowest scores were kept first; sort best first."),
        Mistake(
            _skip_and_continue,
            "a document that did not fit was skipped and shorter ones after it were kept; this "
            "exercise stops at the first document that does not fit.",
        ),
        Mistake(
            _count_documents,
            "a number of documents was kept, not a number of tokens: sum their lengths.",
        ),
    ]
    return check_function(
        fn, keep_within_budget, cases, ("scores", "lengths", "budget"), mistakes=mistakes
    )
