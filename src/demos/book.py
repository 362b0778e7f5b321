"""Small helpers the chapters share: show a function's source, report a parity comparison.

The parity comparison itself (``max_abs_diff``, ``compare_lm``, ``parity_report`` and the tolerance
policy) lives in :mod:`demos.parity` and is re-exported here, where the pages import it from.

Kept here so that every chapter shows code the same way, and the code itself lives in one
place (the module it comes from) rather than being copied into the notebook.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from demos.parity import (  # noqa: F401  (re-exported: the pages and tests import them from here)
    MARGIN,
    ParityReport,
    Tolerance,
    compare_lm,
    max_abs_diff,
    parity_report,
    scaled_error,
    string_parity,
    tolerance_for,
)


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
    # the fraction the tests' margin bounds (tests/conftest.py: atol and rtol, element by element);
    # records without it: the error over atol alone
    return f"{shown} / {tolerance:.0e}", row.get(f"max_{kind}_used", error / tolerance)


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
            f"{'outputs' if label == 'out' else 'gradients'} at {ratio:.2g} of it ({shown}); "
            f"a comparison passes at no more than {MARGIN:g} of its tolerance (demos.parity)."
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
