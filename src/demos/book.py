"""Helpers the chapters share: parity comparison, and (re-exported) the notebook display helpers.

The display helpers live in :mod:`demos.display`; the book's tooling (table of contents, the parity
results page) lives outside the installed package, in ``book/booktools.py``. Their names stay
importable from here for the chapters written before the split.
"""

from __future__ import annotations

from numbers import Real
from typing import TYPE_CHECKING, Any

from demos.display import (  # noqa: F401  (re-exported: chapters import them from demos.book)
    BUDGET_MIME,
    missing_file_note,
    report_budget,
    show_recorded,
    show_source,
)

if TYPE_CHECKING:
    import torch


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max |a - b|`` as a Python float, computed in float64.

    NaN when either side holds a NaN, inf when either side holds an inf (even at the same place on
    both sides: ``inf - inf`` is no evidence of agreement), so that no comparison against a tolerance
    can pass on a non-finite tensor.

    Raises:
        ValueError: ``a`` or ``b`` is not a tensor, the shapes differ, or the tensors are empty.
    """
    import torch

    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a tensor, got {type(x).__name__}")
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.numel() == 0:
        raise ValueError(f"nothing to compare: the tensors are empty, shape {tuple(a.shape)}")
    a, b = a.detach().double(), b.detach().double()
    if torch.isnan(a).any() or torch.isnan(b).any():
        return float("nan")
    if torch.isinf(a).any() or torch.isinf(b).any():
        return float("inf")
    return (a - b).abs().max().item()


class ParityReport(str):
    """A parity verdict: plain text (``print``, ``in``) that Jupyter, Colab and the book show as HTML.

    The text and the HTML say the same, verdict first: the verdict line, the largest error against the
    tolerance, why the difference is what it is; then one line per compared tensor, which the HTML
    folds into a closed ``<details>``. Built by :func:`parity_report`.
    """

    def __new__(cls, text: str, html: str) -> ParityReport:
        report = super().__new__(cls, text)
        report.html = html
        return report

    @property
    def verdict(self) -> str:
        """The first line: ``PARITY OK: ...`` or ``PARITY FAILED: ...``."""
        return self.splitlines()[0]

    def _repr_html_(self) -> str:
        return self.html

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython's text/plain
        printer.text(str(self))

    def __repr__(self) -> str:
        return str(self)


def _versions(reference: str) -> tuple[str, str]:
    """(torch's version, the reference package's version)."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    try:
        return torch.__version__, version(reference)
    except PackageNotFoundError:
        raise ValueError(
            f"reference ({reference!r}) must name an installed package, e.g. 'transformers' or 'trl'"
        ) from None


def _what(names: list[str]) -> str:
    """ "the logits and 26 gradients" from the pairs' names (compare_lm's "grad <parameter>")."""
    grads = sum(1 for n in names if n.startswith("grad ") or ": grad " in n)
    others = len(names) - grads
    if not grads:
        return f"{others} tensor{'s' * (others != 1)}"
    outputs = "the logits" if names.count("logits") == others == 1 else f"{others} outputs"
    return f"{outputs} and {grads} gradient{'s' * (grads != 1)}"


def parity_report(
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]],
    tolerance: float = 1e-5,
    reference: str = "transformers",
    *,
    against: str | None = None,
    why: str | None = None,
) -> ParityReport:
    """The verdict of a parity comparison, first; then ``max |ours - reference|`` for each pair.

    Args:
        pairs: name -> (ours, the reference's), at least one (:func:`compare_lm` makes them).
        tolerance: the bar every difference must stay under (a finite number >= 0).
        reference: the installed package the reference comes from, named in the verdict with its
            version: ``"transformers"`` (default), ``"trl"``, ``"bitsandbytes"``, ...
        against: what of that package the pairs compare with, when it is not the obvious model
            (``"scaled_dot_product_attention"``, ``"FlopCounterMode"``): the verdict names it
            after the versions.
        why: the reason for the differences, when the page knows it (a float32 scale inside the
            reference, a formula checked against a counter); it replaces the generic third line.

    Returns:
        A :class:`ParityReport` (a ``str``). Its first line reads ``PARITY OK: ours = transformers
        5.23.0 (torch 2.13.0) on the logits and 26 gradients``, with ``PARITY FAILED: ours !=`` when a
        difference exceeds ``tolerance`` or is not finite (a NaN or inf on either side; see
        :func:`max_abs_diff`). The second gives the largest difference and the tolerance, the third
        why a difference of exactly 0 (or a small one) is what to expect; one line per pair follows.

    Raises:
        ValueError: no pairs, a negative, NaN or infinite tolerance, a ``reference`` that is not an
            installed package, or a pair :func:`max_abs_diff` refuses.
    """
    import html
    import math

    if not pairs:
        raise ValueError("pairs is empty: a parity verdict needs at least one comparison")
    if isinstance(tolerance, bool) or not isinstance(tolerance, Real):
        raise ValueError(f"tolerance ({tolerance!r}) must be a number")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance ({tolerance!r}) must be a finite number >= 0")
    for name, text in (("against", against), ("why", why)):
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise ValueError(f"{name} ({text!r}) must be a non-empty string or None")
    torch_version, ref_version = _versions(reference)
    of = "" if against is None else f" {against}"
    diffs = {name: max_abs_diff(ours, ref) for name, (ours, ref) in pairs.items()}
    failed = [n for n, d in diffs.items() if not d <= tolerance]  # NaN is not <= anything: it fails
    worst = next((d for d in diffs.values() if math.isnan(d)), max(diffs.values()))
    dtypes = sorted({str(t.dtype).removeprefix("torch.") for pair in pairs.values() for t in pair})
    names = list(pairs)
    if failed:
        verdict = (
            f"PARITY FAILED: ours != {reference} {ref_version} (torch {torch_version}){of} "
            f"on {len(failed)} of {len(pairs)} tensors"
        )
        why = "The tensors over the tolerance are marked in the list below."
    else:
        verdict = (
            f"PARITY OK: ours = {reference} {ref_version} (torch {torch_version}){of} "
            f"on {_what(names)}"
        )
        if why is not None:
            pass  # the page's own reason
        elif worst == 0:
            why = (
                f"An exact 0 is not a model compared with itself: both sides run the same operations "
                f"in the same order on the same {' and '.join(dtypes)} numbers, so every rounding "
                f"is identical."
            )
        else:
            why = (
                "A difference this small is rounding: the two sides order some sums differently, "
                "which moves a result by a few units in its last place."
            )
    largest = (
        f"largest |ours - {reference}| = {worst:.3e} over {len(pairs)} comparisons "
        f"(tolerance {tolerance:.0e})"
    )
    rows = [
        f"{d:>10.3e}  {name}{'  <- over the tolerance' if name in failed else ''}"
        for name, d in diffs.items()
    ]
    header = f"The {len(pairs)} comparisons one by one, max |ours - {reference}| each:"
    text = "\n".join([verdict, largest, why, "", header, *rows])
    e = html.escape
    page = (
        f'<div class="parity-report"><p class="parity-verdict"><strong>{e(verdict)}</strong></p>'
        f"<p>{e(largest)}</p><p>{e(why)}</p>"
        f'<details class="parity-tensors"><summary>{e(header[:-1])}</summary>\n'
        f'<pre style="white-space: pre-wrap">{e(chr(10).join(rows))}</pre></details></div>'
    )  # the newline after the summary: its text and the first row stay two lines when copied
    return ParityReport(text, page)


def string_parity(pairs: dict[str, tuple[str, str]], reference: str) -> str:
    """The verdict of comparing strings (a prompt, a template's output) with a reference's, in one line.

    Args:
        pairs: name -> (ours, the reference's), at least one; both strings.
        reference: what the reference strings come from, named in the verdict
            (``"FastChat 0.2.36 Conversation.get_prompt()"``).

    Returns:
        ``PARITY OK: ours = <reference> on N prompts, equal character for character``, or
        ``PARITY FAILED: ours != <reference> on K of N prompts (<name>: from character i; ...)``
        naming where each differing pair first differs.

    Raises:
        ValueError: no pairs, or a pair that is not two strings.
    """
    if not pairs:
        raise ValueError("pairs is empty: a verdict needs at least one comparison")
    for name, pair in pairs.items():
        if not (
            isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
        ):
            raise ValueError(
                f"pairs[{name!r}] must be (ours, theirs), two strings, got {pair!r:.80}"
            )
    first_diff = {
        name: next(
            (i for i, (a, b) in enumerate(zip(x, y, strict=False)) if a != b), min(len(x), len(y))
        )
        for name, (x, y) in pairs.items()
        if x != y
    }
    if not first_diff:
        return (
            f"PARITY OK: ours = {reference} on {len(pairs)} prompts, equal character for character"
        )
    where = "; ".join(f"{name}: from character {i}" for name, i in first_diff.items())
    return (
        f"PARITY FAILED: ours != {reference} on {len(first_diff)} of {len(pairs)} prompts ({where})"
    )


def compare_lm(
    ours: torch.nn.Module,
    reference: torch.nn.Module,
    input_ids: torch.Tensor,
    **forward_kwargs: Any,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Run our language model and its transformers reference on ``input_ids`` and pair what must agree.

    Both logits go through one random linear loss (so every gradient is non-trivial) and back.
    Returns ``{"logits": (ours, ref), "grad <name>": (ours, ref), ...}`` with every parameter's
    gradient, ready for :func:`parity_report` (whose verdict names the reference's package: pass
    ``reference=`` when it is not transformers). ``forward_kwargs`` go to ``ours`` only.

    Raises:
        ValueError: the two models' parameter names differ, or a parameter got no gradient.
    """
    import torch

    ours.zero_grad(set_to_none=True)
    reference.zero_grad(set_to_none=True)
    ref_params, our_params = dict(reference.named_parameters()), dict(ours.named_parameters())
    if set(ref_params) != set(our_params):
        raise ValueError(
            f"parameter names differ: only ours {sorted(set(our_params) - set(ref_params))}, "
            f"only the reference's {sorted(set(ref_params) - set(our_params))}"
        )
    ref_logits, our_logits = reference(input_ids).logits, ours(input_ids, **forward_kwargs)
    w = torch.randn_like(ref_logits)  # a random linear loss: every gradient is non-trivial
    (ref_logits * w).sum().backward()
    (our_logits * w).sum().backward()
    pairs = {"logits": (our_logits, ref_logits)}
    for name, p in our_params.items():
        if p.grad is None or ref_params[name].grad is None:
            raise ValueError(f"parameter {name!r} got no gradient")
        pairs[f"grad {name}"] = (p.grad, ref_params[name].grad)
    return pairs
