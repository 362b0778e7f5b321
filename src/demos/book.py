"""Small helpers the chapters share: show a function's source, report a parity comparison.

Kept here so that every chapter shows code the same way, and the code itself lives in one
place (the module it comes from) rather than being copied into the notebook.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

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


def randomize_weights_(module: torch.nn.Module, std: float = 0.2) -> torch.nn.Module:
    """Give every weight a visible random value, in place; returns ``module``.

    transformers initialises weights with std 0.02, which makes every output tiny and any
    comparison too easy to pass. Norm weights stay near one, as after training.
    """
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.normal_(0.0, std)
    return module


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max |a - b|`` as a Python float, computed in float64."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return (a.detach().double() - b.detach().double()).abs().max().item()


def parity_report(
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]], tolerance: float = 1e-5
) -> str:
    """One line per compared quantity with ``max |ours - transformers|``, then a verdict.

    Args:
        pairs: name -> (ours, reference).
        tolerance: the bar every difference must stay under.

    Returns:
        The report as text (chapters print it). Its last line reads
        ``PARITY OK: max |ours - transformers| = <largest> over <n> comparisons (tolerance <tol>)``,
        with ``PARITY FAILED`` instead when the largest difference exceeds ``tolerance``.
    """
    lines, worst = ["max |ours - transformers|   compared"], 0.0
    for name, (ours, ref) in pairs.items():
        diff = max_abs_diff(ours, ref)
        worst = max(worst, diff)
        lines.append(f"{diff:>25.3e}   {name}")
    verdict = "PARITY OK" if worst <= tolerance else "PARITY FAILED"
    lines.append(
        f"{verdict}: max |ours - transformers| = {worst:.3e} over {len(pairs)} comparisons "
        f"(tolerance {tolerance:.0e})"
    )
    return "\n".join(lines)


def parity_results_markdown(results: dict) -> str:
    """Render a parity results file (written by the tests with ``PARITY_RESULTS`` set) as Markdown.

    One row per parity test and setting: tests passed, and the largest errors measured, both as
    ``max |ours - reference|`` and scaled by ``max(1, max |reference|)``, next to the tolerance.
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
        "| test | setting | passed | outputs: max abs | outputs: scaled | gradients: max abs | gradients: scaled "
        "| tolerance (out / grad) |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]

    def fmt(row: dict, key: str) -> str:
        return f"{row[key]:.1e}" if key in row else "–"

    for row in results["rows"]:
        if "max_out_abs" not in row:  # not a parity comparison (a property or bad-input test)
            continue
        tol = row.get("tolerance", {})
        tol_text = f"{tol['atol']:.0e} / {tol['grad_atol']:.0e}" if tol else "–"
        total = row["passed"] + row["failed"]
        lines.append(
            f"| `{row['test'].split('::')[-1]}` | {row['setting']} | {row['passed']}/{total} "
            f"| {fmt(row, 'max_out_abs')} | {fmt(row, 'max_out_scaled')} "
            f"| {fmt(row, 'max_grad_abs')} | {fmt(row, 'max_grad_scaled')} | {tol_text} |"
        )
    return "\n".join(lines)
