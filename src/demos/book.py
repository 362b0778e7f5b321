"""Small helpers the chapters share: show a function's source, report a parity comparison.

Kept here so that every chapter shows code the same way, and the code itself lives in one
place (the module it comes from) rather than being copied into the notebook.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
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


def parity_report(
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]], tolerance: float = 1e-5
) -> str:
    """One line per compared quantity with ``max |ours - transformers|``, then a verdict.

    Args:
        pairs: name -> (ours, reference); at least one.
        tolerance: the bar every difference must stay under (a finite number >= 0).

    Returns:
        The report as text (chapters print it). Its last line reads
        ``PARITY OK: max |ours - transformers| = <largest> over <n> comparisons (tolerance <tol>)``,
        with ``PARITY FAILED`` instead when any difference exceeds ``tolerance`` or is not finite
        (a NaN or inf on either side; see :func:`max_abs_diff`).

    Raises:
        ValueError: no pairs, a negative, NaN or infinite tolerance, or a pair :func:`max_abs_diff` refuses.
    """
    import math

    if not pairs:
        raise ValueError("pairs is empty: a parity verdict needs at least one comparison")
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
        raise ValueError(f"tolerance ({tolerance!r}) must be a number")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance ({tolerance!r}) must be a finite number >= 0")
    lines, diffs = ["max |ours - transformers|   compared"], []
    for name, (ours, ref) in pairs.items():
        diff = max_abs_diff(ours, ref)
        diffs.append(diff)
        lines.append(f"{diff:>25.3e}   {name}")
    failed = [d for d in diffs if not d <= tolerance]  # NaN is not <= anything: it fails
    worst = next((d for d in diffs if math.isnan(d)), max(diffs))
    verdict = "PARITY FAILED" if failed else "PARITY OK"
    lines.append(
        f"{verdict}: max |ours - transformers| = {worst:.3e} over {len(pairs)} comparisons "
        f"(tolerance {tolerance:.0e})"
    )
    return "\n".join(lines)


def compare_lm(
    ours: torch.nn.Module,
    reference: torch.nn.Module,
    input_ids: torch.Tensor,
    **forward_kwargs: Any,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Run our language model and its transformers reference on ``input_ids`` and pair what must agree.

    Both logits go through one random linear loss (so every gradient is non-trivial) and back.
    Returns ``{"logits": (ours, ref), "grad <name>": (ours, ref), ...}`` with every parameter's
    gradient, ready for :func:`parity_report`. ``forward_kwargs`` go to ``ours`` only.

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


def parity_results_markdown(results: dict) -> str:
    """Render a parity results file (written by the tests with ``PARITY_RESULTS`` set) as Markdown.

    One row per parity test and setting: tests passed, and the largest errors measured:
    ``max |ours - reference|`` ("abs"), the same over ``max |reference|`` ("rel"), and over
    ``max(1, max |reference|)`` ("scaled"), the quantity the tolerance bounds. The reference is read
    from the docstring of the module the test file mirrors (``tests/layers/test_rope.py`` -> ``demos.layers.rope``).
    """
    env, counts = results["environment"], results["counts"]
    where = env.get("gpu", "CPU only")
    lines = [
        f"**Machine:** {where}"
        + (f", driver {env['driver']}, CUDA {env['cuda_runtime']}" if "driver" in env else "")
        + f"; Python {env['python']}, torch {env['torch']}, transformers {env['transformers']}.",
        "",
        f"**Tests:** {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped.",
        "",
        "| component: test | setting | passed | outputs abs / rel | gradients abs / rel |",
        "|---|---|---:|---:|---:|",
    ]

    def fmt(row: dict, kind: str) -> str:
        if f"max_{kind}_abs" not in row:
            return "–"
        return f"{row[f'max_{kind}_abs']:.1e} / {row.get(f'max_{kind}_rel', float('nan')):.1e}"

    references: dict[str, str] = {}
    for row in results["rows"]:
        if "max_out_abs" not in row:  # not a parity comparison (a property or bad-input test)
            continue
        test_file, _, test = row["test"].partition("::")
        module = module_of_test(test_file)
        references.setdefault(module, reference_of(module))
        total = row["passed"] + row["failed"]
        lines.append(
            f"| {module}: `{test.removeprefix('test_')}` | {row['setting']} | {row['passed']}/{total} "
            f"| {fmt(row, 'out')} | {fmt(row, 'grad')} |"
        )
    lines += ["", "**References compared against** (from each module's docstring):", ""]
    lines += [
        f"- `demos.{m}`: {ref or 'see the test file'}" for m, ref in sorted(references.items())
    ]
    return "\n".join(lines)


def report_budget() -> Any:
    """Show this notebook's CPU time and peak memory so far, measured by its own kernel process.

    Every chapter ends with this cell; the book build runs it, so each page shows what it cost to
    execute on the machine that built it (``tests/book/test_notebooks.py`` holds each notebook to a budget).
    """
    import resource
    import time

    from IPython.display import Markdown

    cpu_s = time.process_time()  # user + system CPU seconds of this kernel, all threads
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    return Markdown(
        f"*Cost of this page when the book was built: {cpu_s:.1f} s of CPU time, "
        f"peak memory {peak_mib:,.0f} MiB.*"
    )


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
