"""Parity with a reference, written once: the tolerance policy, the measured error, the verdict.

Every comparison of ours with a reference (the tests' ``Setting.close``, the pages' parity cells)
measures the same error, takes its tolerance from the same table, and passes only with a margin:

* **Error**: ``max |ours - ref|``, divided by ``max(1, max |ref|)`` (:func:`scaled_error`): absolute
  where values are at most 1, relative to the tensor's largest magnitude where they are larger (a
  gradient entry of 140 sits where float32's spacing is 1.5e-5: no absolute 1e-5 can hold it).
* **Tolerance** (:func:`tolerance_for`): from the dtype's unit roundoff ``u`` and the computation:
  elementwise (one or two roundings apart), or with reductions (matmuls, softmax, norms: the two
  sides sum in different orders, and each sum of ``n`` terms may move by up to ``n u`` of its scale).
* **Margin** (:data:`MARGIN`): a comparison passes only when its error is at most half its tolerance,
  so that a verdict measured on one CPU does not flip on another (another BLAS kernel, another
  thread count: book/mistral.ipynb's rolling cache measured 7.0e-6 on one machine, 1.013e-5 on
  another, against an absolute 1e-5).

The gradient primitive the tests, the pages and the scripts share is here too:
:func:`random_linear_backward` (one random linear loss of the outputs, backward on each side).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

MARGIN = 0.5  # a comparison passes when its error is at most this fraction of its tolerance

# unit roundoff u = 2**-(mantissa bits + 1): the largest relative error of one rounding
UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}


@dataclass(frozen=True)
class Tolerance:
    """A bound on :func:`scaled_error` (or on the absolute error, where a page says so), and why."""

    bound: float  # the tolerance; a comparison passes at error <= MARGIN * bound
    why: str  # the dtype, the computation and the arithmetic behind the number

    def __post_init__(self) -> None:
        if isinstance(self.bound, bool) or not isinstance(self.bound, Real):
            raise ValueError(f"tolerance ({self.bound!r}) must be a number")
        if not (math.isfinite(self.bound) and self.bound >= 0):
            raise ValueError(f"tolerance ({self.bound!r}) must be a finite number >= 0")

    def passes(self, error: float) -> bool:
        """``error <= MARGIN * bound`` (NaN never passes)."""
        return error <= MARGIN * self.bound


# (dtype, computation) -> (bound, why). The bound in units of u is stated, so that it can be checked.
_POLICY = {
    ("float64", "elementwise"): (
        1e-14,
        "float64 elementwise: one or two roundings apart, u = 1.1e-16; 1e-14 is ~90 u",
    ),
    ("float64", "reductions"): (
        1e-12,
        "float64 with reductions: another summation order moves a sum of n terms by up to n u "
        "of its scale, u = 1.1e-16; 1e-12 is ~9000 u",
    ),
    ("float32", "elementwise"): (
        1e-6,
        "float32 elementwise (tables, masks, activations): one or two roundings apart, u = "
        "6.0e-8; 1e-6 is ~17 u",
    ),
    ("float32", "reductions"): (
        1e-5,
        "float32 with reductions (matmuls, softmax, norms over tens to hundreds of terms, "
        "through a few layers): another summation order moves a sum of n terms by up to n u of "
        "its scale, u = 6.0e-8; 1e-5 is ~170 u",
    ),
    ("float16", "elementwise"): (
        2e-3,
        "float16 elementwise: one or two roundings apart, u = 4.9e-4; 2e-3 is ~4 u",
    ),
    ("float16", "reductions"): (
        1e-2,
        "float16 with reductions: one rounding in another place moves a value by an ulp "
        "(~1e-3), a few stack through the layers; 1e-2 is ~20 u",
    ),
    ("bfloat16", "elementwise"): (
        1e-2,
        "bfloat16 elementwise: one or two roundings apart, u = 3.9e-3; 1e-2 is ~2.6 u",
    ),
    ("bfloat16", "reductions"): (
        2e-2,
        "bfloat16 with reductions: one rounding of an intermediate in another place moves a "
        "value by an ulp (~4e-3 relative), and a couple stack through two layers; 2e-2 is ~5 u",
    ),
    ("bfloat16", "gradients"): (
        5e-2,
        "bfloat16 gradients: they run back through every layer in bfloat16, each adding its "
        "roundings; 5e-2 is ~13 u",
    ),
}
COMPUTATIONS = ("elementwise", "reductions", "gradients")


def tolerance_for(dtype: Any, computation: str = "reductions") -> Tolerance:
    """The tolerance of a comparison in ``dtype`` (a ``torch.dtype`` or its name) of ``computation``:
    ``"elementwise"``, ``"reductions"`` or ``"gradients"`` (backward through the whole model: for
    bfloat16 looser, for the other dtypes the same as ``"reductions"``).

    Raises:
        ValueError: a dtype without a policy (integers, float8) or an unknown computation.
    """
    name = str(dtype).removeprefix("torch.")
    if computation not in COMPUTATIONS:
        raise ValueError(f"computation ({computation!r}) must be one of {COMPUTATIONS}")
    if name not in UNIT_ROUNDOFF:
        raise ValueError(
            f"dtype ({dtype!r}) must be one of {tuple(UNIT_ROUNDOFF)}: a floating type with a policy"
        )
    key = (name, computation)
    if key not in _POLICY:  # gradients are reductions, except in bfloat16
        key = (name, "reductions")
    return Tolerance(*_POLICY[key])


def _is_exact_name(name: str) -> bool:
    """An integer or boolean dtype's name: values that compare by equality, not within a tolerance."""
    return name == "bool" or name.startswith(("int", "uint"))


def _is_exact(t: torch.Tensor) -> bool:
    return _is_exact_name(str(t.dtype).removeprefix("torch."))


def least_precise(dtypes: Any) -> str:
    """The name of the dtype with the largest unit roundoff among ``dtypes`` (what a pair must meet)."""
    names = {str(d).removeprefix("torch.") for d in dtypes}
    unknown = names - set(UNIT_ROUNDOFF)
    if unknown:
        raise ValueError(
            f"dtypes {sorted(unknown)} have no tolerance policy: compare floating tensors of {tuple(UNIT_ROUNDOFF)}"
        )
    return max(names, key=UNIT_ROUNDOFF.__getitem__)


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


def scaled_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max |a - b| / max(1, max |b|)``: absolute where ``b``'s values are at most 1, relative to its
    largest magnitude where they are larger (``b`` is the reference). NaN and inf as
    :func:`max_abs_diff`; ``ValueError`` where it refuses."""
    err = max_abs_diff(a, b)
    if not math.isfinite(err):
        return err
    return err / max(1.0, b.detach().double().abs().max().item())


def random_linear_backward(*outputs: torch.Tensor) -> None:
    """Backward of one random linear loss ``sum(w * out)`` for each of ``outputs`` (same shape, one
    ``w`` drawn from torch's global generator): every gradient is non-trivial, and two models that
    agree get the same gradients. The tests, the pages' :func:`compare_lm` and the scripts use it.

    Raises:
        ValueError: no outputs, or outputs of different shapes.
    """
    import torch

    if not outputs:
        raise ValueError("outputs is empty: give each side's output")
    shapes = {tuple(o.shape) for o in outputs}
    if len(shapes) != 1:
        raise ValueError(f"outputs must have one shape, got {sorted(shapes)}")
    w = torch.randn_like(outputs[0])  # a random linear loss: every gradient is non-trivial
    for out in outputs:
        (out * w.to(out.dtype)).sum().backward()


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
    tolerance: float | Tolerance | None = None,
    reference: str = "transformers",
    *,
    against: str | None = None,
    why: str | None = None,
    relative: bool | None = None,
) -> ParityReport:
    """The verdict of a parity comparison, first; then the error of each pair.

    Args:
        pairs: name -> (ours, the reference's), at least one (:func:`compare_lm` makes them).
        tolerance: ``None`` (default): the policy's (:func:`tolerance_for`) for the least precise
            dtype among the pairs, with reductions. A :class:`Tolerance`, or a number (a bound the
            page states, e.g. 0 for bit-for-bit equality or 0.5 for integer counts). Pairs of
            integer or boolean tensors (token ids, masks) pass only when equal, whatever the
            tolerance; when every pair is one, the default tolerance is 0.
        reference: the installed package the reference comes from, named in the verdict with its
            version: ``"transformers"`` (default), ``"trl"``, ``"bitsandbytes"``, ...
        against: what of that package the pairs compare with, when it is not the obvious model
            (``"scaled_dot_product_attention"``, ``"FlopCounterMode"``): the verdict names it
            after the versions.
        why: the reason for the differences, when the page knows it (a float32 scale inside the
            reference, a formula checked against a counter); it replaces the generic third line.
        relative: measure :func:`scaled_error` (relative where values exceed 1) instead of
            :func:`max_abs_diff`. Default: relative with the policy's tolerance or a
            :class:`Tolerance`, absolute with a plain number.

    Returns:
        A :class:`ParityReport` (a ``str``). Its first line reads ``PARITY OK: ours = transformers
        5.23.0 (torch 2.13.0) on the logits and 26 gradients``, with ``PARITY FAILED: ours !=`` when
        an error exceeds half its tolerance (:data:`MARGIN`) or is not finite (a NaN or inf on
        either side; see :func:`max_abs_diff`). The second gives the largest error, what it
        measures, the tolerance and the fraction of it; the third why a difference of exactly 0
        (or a small one) is what to expect; the fourth why the tolerance is what it is; one line
        per pair follows.

    Raises:
        ValueError: no pairs, a negative, NaN or infinite tolerance, a ``reference`` that is not an
            installed package, or a pair :func:`max_abs_diff` refuses.
    """
    import html

    if not pairs:
        raise ValueError("pairs is empty: a parity verdict needs at least one comparison")
    for name, text in (("against", against), ("why", why)):
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise ValueError(f"{name} ({text!r}) must be a non-empty string or None")
    dtypes = sorted({str(t.dtype).removeprefix("torch.") for pair in pairs.values() for t in pair})
    # token ids and masks are exact: an integer pair passes only when equal, whatever the tolerance
    exact = {n for n, pair in pairs.items() if all(_is_exact(t) for t in pair)}
    floating = [d for d in dtypes if not _is_exact_name(d)]  # least_precise refuses unknown ones
    if tolerance is None:
        tolerance = (
            tolerance_for(least_precise(floating), "reductions")
            if floating
            else Tolerance(0.0, "integer tensors (token ids, masks) are equal or not: no rounding")
        )
    elif not isinstance(tolerance, Tolerance):
        tolerance = Tolerance(
            tolerance, "the bound the caller states, not the dtype policy of tolerance_for"
        )
        relative = bool(relative)
    relative = True if relative is None else relative
    torch_version, ref_version = _versions(reference)
    of = "" if against is None else f" {against}"
    error = scaled_error if relative else max_abs_diff
    diffs = {name: error(ours, ref) for name, (ours, ref) in pairs.items()}
    failed = [  # NaN fails
        n for n, d in diffs.items() if not (d == 0 if n in exact else tolerance.passes(d))
    ]
    worst = next((d for d in diffs.values() if math.isnan(d)), max(diffs.values()))
    names = list(pairs)
    if failed:
        verdict = (
            f"PARITY FAILED: ours != {reference} {ref_version} (torch {torch_version}){of} "
            f"on {len(failed)} of {len(pairs)} tensors"
        )
        why = "The tensors over half the tolerance are marked in the list below."
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
    measure = f"|ours - {reference}|" + (f" / max(1, max |{reference}|)" if relative else "")
    bound = tolerance.bound
    fraction = "exact" if bound == 0 else f"{worst / bound:.2g} of it"
    largest = (
        f"largest {measure} = {worst:.3e} over {len(pairs)} comparisons "
        f"(tolerance {bound:.0e}: {fraction}; a pass needs at most {MARGIN:g} of it)"
    )
    policy = f"Tolerance: {tolerance.why}."
    rows = [
        f"{d:>10.3e}  {name}{'  <- over half the tolerance' if name in failed else ''}"
        for name, d in diffs.items()
    ]
    header = f"The {len(pairs)} comparisons one by one, {measure} each:"
    text = "\n".join([verdict, largest, why, policy, "", header, *rows])
    e = html.escape
    page = (
        f'<div class="parity-report"><p class="parity-verdict"><strong>{e(verdict)}</strong></p>'
        f"<p>{e(largest)}</p><p>{e(why)}</p><p>{e(policy)}</p>"
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
    ours.zero_grad(set_to_none=True)
    reference.zero_grad(set_to_none=True)
    ref_params, our_params = dict(reference.named_parameters()), dict(ours.named_parameters())
    if set(ref_params) != set(our_params):
        raise ValueError(
            f"parameter names differ: only ours {sorted(set(our_params) - set(ref_params))}, "
            f"only the reference's {sorted(set(ref_params) - set(our_params))}"
        )
    ref_logits, our_logits = reference(input_ids).logits, ours(input_ids, **forward_kwargs)
    random_linear_backward(our_logits, ref_logits)
    pairs = {"logits": (our_logits, ref_logits)}
    for name, p in our_params.items():
        if p.grad is None or ref_params[name].grad is None:
            raise ValueError(f"parameter {name!r} got no gradient")
        pairs[f"grad {name}"] = (p.grad, ref_params[name].grad)
    return pairs
