"""References and known mistakes for the Winogrande chapter: partial scores from per-token log-probabilities, and where
full-sentence and partial scoring part ways."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check, Mistake, check_function


def partial_scores_reference(token_logprobs: torch.Tensor, n_shared: int) -> torch.Tensor:
    """``(k, t)`` per-token log-probabilities of k filled-in sentences (aligned at the end) ->
    ``(k,)`` sums over the last ``n_shared`` tokens, the part after the blank."""
    return token_logprobs[:, -n_shared:].sum(dim=-1)


PARTIAL_MISTAKES = [
    Mistake(
        lambda lp, n: lp.sum(dim=-1),
        "this sums every token: the whole-sentence score. Partial scoring keeps only the "
        "n_shared tokens after the blank.",
    ),
    Mistake(
        lambda lp, n: lp[:, :n].sum(dim=-1),
        "this takes the first n_shared tokens; the shared continuation is at the end.",
    ),
    Mistake(
        lambda lp, n: lp[:, -n:].mean(dim=-1),
        "this is the mean; the harness sums the continuation's log-probabilities.",
    ),
]


def check_partial_scores(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> Check:
    """Check ``fn(token_logprobs (k, t), n_shared) -> (k,)``."""
    gen = torch.Generator().manual_seed(0)
    cases = {
        "two options, 4 shared of 9": (-torch.rand(2, 9, generator=gen, dtype=torch.float64), 4),
        "three candidates (transfer)": (-torch.rand(3, 7, generator=gen, dtype=torch.float64), 2),
        "all shared": (-torch.rand(2, 5, generator=gen, dtype=torch.float64), 5),
    }
    return check_function(
        fn,
        partial_scores_reference,
        cases,
        ("token_logprobs", "n_shared"),
        mistakes=PARTIAL_MISTAKES,
        atol=1e-12,
        rtol=1e-12,
    )


def picks_reference(token_logprobs: torch.Tensor, n_shared: int) -> tuple[int, int]:
    """``(full pick, partial pick)``: the option whose whole sentence is likelier, and the option
    after which the shared rest is likelier (first on a tie)."""
    full = int(torch.argmax(token_logprobs.sum(dim=-1)))
    partial = int(torch.argmax(token_logprobs[:, -n_shared:].sum(dim=-1)))
    return full, partial


PICKS_MISTAKES = [
    Mistake(
        lambda lp, n: picks_reference(lp, n)[::-1],
        "the two picks are swapped: (full-sentence pick, partial pick).",
    ),
]


def check_picks(fn: Callable[[torch.Tensor, int], tuple[int, int]]) -> Check:
    """Check ``fn(token_logprobs (2, t), n_shared) -> (full pick, partial pick)``."""
    agree = torch.tensor([[-1.0, -2.0, -0.5, -0.5], [-1.5, -2.0, -1.0, -1.0]], dtype=torch.float64)
    differ = torch.tensor([[-0.2, -0.3, -2.0, -2.0], [-3.0, -3.0, -1.0, -1.0]], dtype=torch.float64)
    cases = {"they agree": (agree, 2), "a rare option word": (differ, 2)}
    return check_function(
        fn,
        picks_reference,
        cases,
        ("token_logprobs", "n_shared"),
        mistakes=PICKS_MISTAKES,
        names=("full pick", "partial pick"),
    )
