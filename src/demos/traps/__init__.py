"""Nearly right: the mistakes a careful reader makes when porting a model, each measured.

A trap is a one-line wrong version of something a chapter derives, run next to the right version
against the reference (transformers, TRL, bitsandbytes or lm-evaluation-harness) on the same tiny
input. The right version must agree with the reference; the wrong one must not, and the size of its
divergence is the lesson. Each chapter keeps its traps in ``demos/traps/<chapter>.py`` as a
module-level list ``TRAPS``; :func:`all_traps` gathers them for the "Nearly right" appendix, and the
tests run every one, so no number on that page is retyped.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Measured:
    """What a trap's ``measure`` returns: both versions against the reference, same input."""

    right_error: float  # max |right - reference|: at rounding level
    wrong_error: float  # max |wrong - reference|: the divergence the mistake causes
    tolerance: float  # the bound the right version meets (and the wrong one must exceed)
    quantity: str  # what was compared, e.g. "logits of a 2-layer GemmaForCausalLM, fp32"
    # True where the comparison is an exact match (integer counts, verdicts): the tolerance only
    # absorbs float storage there, so "N times the tolerance" would say nothing (see exact_match)
    exact: bool = False

    @property
    def exact_match(self) -> bool:
        """An exact-match comparison: flagged ``exact``, or a tolerance under 1e-6, far below any
        fp32 rounding (accuracies and scores the right version must reproduce to the last bit)."""
        return self.exact or self.tolerance < 1e-6

    @classmethod
    def of(
        cls, right, wrong, reference, tolerance: float, quantity: str, exact: bool = False
    ) -> Measured:
        """``max |right - reference|`` and ``max |wrong - reference|``, each a tensor or a
        sequence of floats of one shape, computed in float64 by :func:`demos.book.max_abs_diff`
        (NaN or inf on either side gives a non-finite error, never a pass)."""
        import torch

        from demos.book import max_abs_diff

        def tensor(x):
            return x if isinstance(x, torch.Tensor) else torch.tensor(x, dtype=torch.float64)

        reference = tensor(reference)
        right_error = max_abs_diff(tensor(right), reference)
        wrong_error = max_abs_diff(tensor(wrong), reference)
        return cls(right_error, wrong_error, tolerance, quantity, exact)


@dataclass(frozen=True)
class Trap:
    """One measured mistake.

    Attributes:
        chapter: the chapter's notebook name in book/ (``"llama2"``), where the trap is explained.
        title: a short name, e.g. ``"RoPE on adjacent pairs instead of halves"``.
        wrong: the one-line wrong version, as code.
        right: the line it replaces, as code.
        shows: where the divergence shows, in words (``"every score past position 0"``).
        measure: runs both versions against the reference; no arguments, seeded inside.
    """

    chapter: str
    title: str
    wrong: str
    right: str
    shows: str
    measure: Callable[[], Measured]


def all_traps() -> list[Trap]:
    """Every ``TRAPS`` list of the modules in this package, in module-name order."""
    traps: list[Trap] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        traps.extend(getattr(module, "TRAPS", []))
    return traps


def show(traps: list[Trap], width: int = 76) -> None:
    """Measure each trap now and print it as the chapters show it: the title, the right and the wrong
    line, what was compared and where the mistake shows, then both errors and the tolerance.

    Each ``measure`` is seeded inside, so the page prints the numbers the tests measure.
    """
    import textwrap

    wrap = textwrap.TextWrapper(width - 2, initial_indent="  ", subsequent_indent="    ").fill
    for i, trap in enumerate(traps):
        m = trap.measure()
        print(("\n" if i else "") + trap.title)
        print(f"  right:\n    {trap.right}\n  wrong:\n    {trap.wrong}")
        print(wrap(f"compared: {m.quantity}"))
        print(wrap(f"where it shows: {trap.shows}"))
        print(f"  max |right - reference| = {m.right_error:.2g}")
        print(f"  max |wrong - reference| = {m.wrong_error:.2g}")
        print(f"  tolerance                 {m.tolerance:.2g}")
