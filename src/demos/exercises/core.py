"""Checkers for the chapters' exercises: compare a learner's answer with the reference, explain a mismatch.

A checker never raises on a wrong answer: it returns a :class:`Check` whose message says what
was expected, what came back, where they first differ and, when the mistake is a common one,
its likely cause. Chapters display the result; tests assert on ``Check.ok``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Check:
    ok: bool
    message: str

    def __str__(self) -> str:
        return ("✅ Correct. " if self.ok else "❌ Not yet. ") + self.message

    def _repr_markdown_(self) -> str:
        return str(self)

    def __repr__(self) -> str:
        return str(self)


def first_mismatch(
    got: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float
) -> str | None:
    """Describe the first element where ``got`` and ``expected`` differ, or None if they agree."""
    bad = ~torch.isclose(got, expected, atol=atol, rtol=rtol)
    if not bad.any():
        return None
    index = tuple(int(i) for i in bad.nonzero()[0])
    return (
        f"{int(bad.sum())} of {bad.numel()} elements differ; the first is at index {index}: "
        f"expected {expected[index].item():.6g}, got {got[index].item():.6g}."
    )


def check_tensor_function(
    fn: Callable[..., torch.Tensor],
    reference: Callable[..., torch.Tensor],
    cases: Iterable[tuple],
    atol: float = 1e-6,
    rtol: float = 1e-6,
    hints: Iterable[tuple[Callable[..., torch.Tensor], str]] = (),
) -> Check:
    """Run ``fn`` and ``reference`` on each argument tuple in ``cases`` and compare.

    ``hints`` pairs a known wrong implementation with the explanation to give when the learner's
    output matches it: a wrong answer that matches a common mistake gets that mistake named.
    """
    cases, hints = list(cases), list(hints)
    for args in cases:
        expected = reference(*args)
        shapes = ", ".join(
            str(tuple(a.shape)) if isinstance(a, torch.Tensor) else repr(a) for a in args
        )
        try:
            got = fn(*args)
        except Exception as error:  # the learner's code: report, don't crash the notebook
            return Check(
                False,
                f"Calling it with arguments of shape {shapes} raised {type(error).__name__}: {error}",
            )
        if not isinstance(got, torch.Tensor):
            return Check(
                False,
                f"With inputs {shapes} it returned {type(got).__name__}, "
                f"expected a tensor of shape {tuple(expected.shape)}.",
            )
        if got.shape != expected.shape:
            return Check(
                False,
                f"With inputs {shapes} the result has shape {tuple(got.shape)}, expected {tuple(expected.shape)}.",
            )
        mismatch = first_mismatch(got.to(expected.dtype), expected, atol, rtol)
        if mismatch:
            for wrong, why in hints:
                if torch.allclose(got.to(expected.dtype), wrong(*args), atol=atol, rtol=rtol):
                    return Check(False, f"With inputs {shapes}: {mismatch} Likely cause: {why}")
            return Check(False, f"With inputs {shapes}: {mismatch}")
    return Check(True, f"Matches the reference on {len(cases)} random inputs.")
