"""Small helpers the chapters share: show a function's source, report a parity comparison.

Kept here so that every chapter shows code the same way, and the code itself lives in one
place (the module it comes from) rather than being copied into the notebook.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def show_source(obj: Callable[..., Any] | type, docstring: bool = False) -> Any:
    """Display the source of a function, method or class from ``demos`` as a highlighted code block.

    The docstring is left out unless ``docstring=True``: the chapter's prose explains what it says.
    Returns an IPython ``Markdown`` object (rendered by Jupyter, Colab and Jupyter Book alike).
    """
    from IPython.display import Markdown

    source = textwrap.dedent(inspect.getsource(obj))
    if not docstring:
        source = _strip_docstring(source)
    return Markdown(f"```python\n{source.rstrip()}\n```")


def _strip_docstring(source: str) -> str:
    """Remove the docstring of the (single) function or class defined in ``source``."""
    node = ast.parse(source).body[0]
    first = node.body[0] if getattr(node, "body", None) else None
    is_doc = isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant)
    if not (is_doc and isinstance(first.value.value, str)) or len(node.body) == 1:
        return source
    lines = source.splitlines()
    del lines[first.lineno - 1 : first.end_lineno]
    return "\n".join(lines)


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


def module_of_test(test_file: str) -> str:
    """The module a test file mirrors: ``tests/layers/test_attention.py`` -> ``"layers.attention"``."""
    parts = Path(test_file).with_suffix("").parts
    parts = parts[parts.index("tests") + 1 :] if "tests" in parts else parts
    return ".".join([*parts[:-1], parts[-1].removeprefix("test_")])


def reference_of(module: str) -> str:
    """The "Reference implementation:" entry of ``demos.<module>``'s docstring, on one line ("" if none)."""
    import importlib

    try:
        doc = importlib.import_module(f"demos.{module}").__doc__ or ""
    except ImportError:
        return ""
    _, found, rest = doc.partition("Reference implementation:")
    return " ".join(rest.strip().split("\n\n")[0].split()) if found else ""


def _error_over_tolerance(row: dict, kind: str) -> tuple[str, float | None]:
    """``"2.5e-06 / 1e-05"`` for outputs (``kind="out"``) or gradients (``"grad"``), and the ratio."""
    if f"max_{kind}_abs" not in row:
        return "", None
    tolerance = row.get("tolerance", {}).get("atol" if kind == "out" else "grad_atol")
    error = row.get(f"max_{kind}_scaled", row[f"max_{kind}_abs"])
    shown = "0" if error == 0 else f"{error:.1e}"
    if tolerance is None:  # a comparison outside the settings (its test states its own bound)
        return f"{shown} / –", None
    return f"{shown} / {tolerance:.0e}", error / tolerance


STALE_MARK = (
    "test no longer exists under this name"  # a recorded row whose test was renamed or removed
)


def parity_results_markdown(
    results: dict, fold: bool = False, stale: frozenset[str] | set[str] = frozenset()
) -> str:
    """Render a parity results file (written by the tests with ``PARITY_RESULTS`` set) as Markdown.

    Summary first: the machine, the tests passed, and the row closest to its tolerance. Then one row
    per parity test and setting: the component and the test (``tests/layers/test_rope.py::test_x`` ->
    "layers.rope: x", words that wrap), the tests passed, and one "error / tolerance" column that shows
    how the row passes: the largest error of the outputs and of the gradients, each over its
    tolerance. The error is ``max |ours - reference|`` over ``max(1, max |reference|)``, the quantity
    ``atol`` bounds (tests/conftest.py). With ``fold=True`` the table sits in a closed dropdown under
    the summary. The reference of each component is read from the docstring of the module its test
    file mirrors (``tests/layers/test_rope.py`` -> ``demos.layers.rope``). Rows whose test is in
    ``stale`` (node ids without parameters, see :func:`demos.parity_record.stale_tests`) are marked
    :data:`STALE_MARK`, and their module, if no current row names it, is listed as gone.
    """
    env, counts = results["environment"], results["counts"]
    where = env.get("gpu", "CPU only")
    rows, references, closest = [], {}, None
    for row in results["rows"]:
        if "max_out_abs" not in row:  # not a parity comparison (a property or bad-input test)
            continue
        test_file, _, test = row["test"].partition("::")
        module = module_of_test(test_file)
        gone = row["test"] in stale
        references.setdefault(module, [reference_of(module), True])[1] &= gone
        name = f"{module}: {test.removeprefix('test_').replace('_', ' ')}"
        name += f" (*{STALE_MARK}*)" if gone else ""
        cells = []
        for kind, label in (("out", "out"), ("grad", "grad")):
            shown, ratio = _error_over_tolerance(row, kind)
            if shown:
                cells.append(f"{label} {shown}")
            if ratio is not None and (closest is None or ratio > closest[0]):
                closest = (ratio, name, row["setting"], label, shown)
        total = row["passed"] + row["failed"]
        rows.append(f"| {name} | {row['setting']} | {row['passed']}/{total} | {'; '.join(cells)} |")
    summary = [
        f"**Machine:** {where}"
        + (f", driver {env['driver']}, CUDA {env['cuda_runtime']}" if "driver" in env else "")
        + f"; Python {env['python']}, torch {env['torch']}, transformers {env['transformers']}.",
        "",
        f"**Tests:** {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped.",
    ]
    if closest is not None:
        ratio, name, setting, label, shown = closest
        summary[-1] += (
            f" **Closest to its tolerance:** {name} ({setting}), "
            f"{'outputs' if label == 'out' else 'gradients'} at {ratio:.2g} of it ({shown})."
        )
    table = [
        "| component: test | setting | passed | error / tolerance |",
        "|---|---|---:|---|",
        *rows,
    ]
    if fold:
        table = [
            f":::{{dropdown}} The {len(rows)} rows: each test, its error and its tolerance",
            *table,
            ":::",
        ]
    lines = [
        *summary,
        "",
        *table,
        "",
        "**References compared against** (from each module's docstring):",
        "",
    ]
    lines += [
        f"- `demos.{m}`: {ref or ('its test file no longer exists' if gone else 'see the test file')}"
        for m, (ref, gone) in sorted(references.items())
    ]
    return "\n".join(lines)


BUDGET_MIME = "application/vnd.field-guide.budget+json"  # no renderer shows it: the build reads it


def report_budget() -> None:
    """Record this notebook's CPU time and peak memory so far, measured by its own kernel process.

    Every notebook ends with this cell (scripts/sync_setup_cells.py writes it). The numbers are build
    data, not reading: they are published under the MIME type ``BUDGET_MIME`` alone, which no page
    renderer shows (Jupyter Book, JupyterLab and Colab display nothing), and stay in the executed
    notebook, where ``scripts/build_book.py`` prints them in the build log and
    ``tests/book/test_notebooks.py`` holds each notebook to its ceiling.
    """
    import resource
    import time

    from IPython.display import display

    cpu_s = time.process_time()  # user + system CPU seconds of this kernel, all threads
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    display({BUDGET_MIME: {"cpu_s": round(cpu_s, 2), "peak_mib": round(peak_mib, 1)}}, raw=True)


NOT_CHAPTERS = ("Overview", "Back matter")  # parts of _toc.yml whose pages are not chapters


def toc_files(
    root: str | Path,
    *,
    part: str | None = None,
    chapters_only: bool = False,
    with_root: bool = False,
) -> list[str]:
    """The pages listed in ``root/_toc.yml``, in its order, as paths without a suffix
    (``"book/llama2"``): the one reading of the table of contents that the build, the student
    edition and the book's tests share.

    Args:
        root: the book's root folder (where ``_toc.yml`` is).
        part: only the pages of the part with this caption (``"Model families"``).
        chapters_only: leave out the parts in :data:`NOT_CHAPTERS`.
        with_root: put the root page (``book/intro``) first.

    Raises:
        ValueError: ``part`` names no part of the table of contents.
    """
    import yaml

    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    parts = toc.get("parts", [])
    if part is not None:
        parts = [p for p in parts if p["caption"] == part]
        if not parts:
            raise ValueError(f"part {part!r} is not a caption of {Path(root) / '_toc.yml'}")
    if chapters_only:
        parts = [p for p in parts if p["caption"] not in NOT_CHAPTERS]
    files = [entry["file"] for p in parts for entry in p["chapters"]]
    return [toc["root"], *files] if with_root else files


def show_recorded(path: str | Path, command: str) -> Any:
    """Show a results file a script wrote (a benchmark, a long run) as a text block, with its command.

    Chapters quote such results this way rather than retyping them, so the page always shows what the
    committed file says; rerun ``command`` to refresh the file.
    """
    from IPython.display import Markdown

    path = Path(path)
    if not path.exists():  # e.g. in Colab: the notebook runs without a clone of the repository
        return Markdown(missing_file_note(path, command))
    text = path.read_text().rstrip()
    return Markdown(f"Recorded with `{command}` (file `{path.name}`):\n\n```text\n{text}\n```")


def missing_file_note(path: str | Path, command: str) -> str:
    """What a chapter says instead of failing when a committed results file is not next to it (Colab)."""
    return (
        f"*The file `{Path(path).name}` is not here: this notebook is running outside a clone of the "
        f"book's repository (in Colab, for example). The book's web page shows its contents; to measure "
        f"them yourself, clone the repository and run `{command}`.*"
    )
