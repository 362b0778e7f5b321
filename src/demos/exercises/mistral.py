"""Checkers for the Mistral chapter's exercises: the sliding-window mask."""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import Check
from demos.layers.masks import sliding_window_mask


def _mask_paper_convention(t: int, s: int, window: int) -> torch.Tensor:
    """Keys ``p - window <= j <= p``: ``window + 1`` keys, as mistral-src's prefill mask."""
    q_pos = torch.arange(s - t, s)[:, None]
    k_pos = torch.arange(s)[None, :]
    return (k_pos <= q_pos) & (k_pos >= q_pos - window)


def _mask_not_causal(t: int, s: int, window: int) -> torch.Tensor:
    q_pos = torch.arange(s - t, s)[:, None]
    k_pos = torch.arange(s)[None, :]
    return (k_pos - q_pos).abs() < window


def check_sliding_window_mask(fn: Callable[[int, int, int], torch.Tensor]) -> Check:
    """Check a learner's ``sliding_window_mask(t, s, window)``: a boolean ``(t, s)`` tensor, True where
    the query (one of the last ``t`` of ``s`` positions) may attend to the key."""
    cases = [(6, 6, 3), (8, 8, 1), (5, 5, 9), (1, 7, 3), (3, 10, 4)]
    hints = [
        (
            _mask_paper_convention,
            "each query sees window + 1 keys. transformers (and this book) let a query see "
            "`window` keys counting itself: key j is visible from position p when p - window < j <= p. "
            "(The paper's wording, 'positions between i - W and i', reads as W + 1.)",
        ),
        (_mask_not_causal, "the mask looks ahead too: a query must not see keys after it."),
    ]
    for t, s, window in cases:
        expected = sliding_window_mask(t, s, window)
        try:
            got = fn(t, s, window)
        except Exception as error:
            return Check(False, f"fn({t}, {s}, {window}) raised {type(error).__name__}: {error}")
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return Check(
                False,
                f"fn({t}, {s}, {window}) gave {shape}, expected shape {tuple(expected.shape)}.",
            )
        got = got.bool()
        if not torch.equal(got, expected):
            i, j = (int(x) for x in (got != expected).nonzero()[0])
            where = (
                f"fn({t}, {s}, {window}): query {i} (position {s - t + i}) and key {j} should be "
                f"{'visible' if expected[i, j] else 'hidden'}."
            )
            for wrong, why in hints:
                if torch.equal(got, wrong(t, s, window)):
                    return Check(False, f"{where} Likely cause: {why}")
            return Check(
                False,
                where
                + " Remember the queries are the *last* t positions: query i sits at s - t + i.",
            )
    return Check(True, f"Matches the reference on {len(cases)} (t, s, window) cases.")
