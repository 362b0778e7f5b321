"""What a recorded parity run (``results/gpu_parity.json``) covers of the tests that exist now.

A GPU run is recorded once and read for months while tests move and chapters arrive. This module
compares the record with the test suite as it is, so the appendix can say which rows name a test
that no longer exists under that name, which parity tests have no row, and when the run was made.

A test is named by its pytest node id without parameters (``tests/layers/test_rope.py::test_x``),
as the record's rows name it; a *parity test* is one that takes the ``setting`` or
``fp32_device_setting`` fixture (tests/conftest.py), the tests a CUDA run repeats on the GPU.
"""

from __future__ import annotations

import ast
import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from booktools import STALE_MARK, module_of_test, parity_results_markdown

DEVICE_FIXTURES = ("setting", "fp32_device_setting")  # fixtures that add the cuda-* settings
__all__ = ["STALE_MARK", "collected_tests", "gpu_record_markdown", "run_provenance"]


def _git(root: str | Path, *args: str) -> str:
    """``git args`` run in ``root``, its output stripped; "" when git or the repository is missing."""
    try:
        run = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return run.stdout.strip() if run.returncode == 0 else ""


def run_provenance(root: str | Path) -> dict:
    """Where and when a run is made: ``{"commit", "dirty", "date"}`` for the results file.

    ``commit`` is ``git rev-parse HEAD``; in a copy without ``.git`` (a GPU machine sent only the
    working tree) it is ``$PARITY_COMMIT`` if set, else "". ``dirty`` says whether tracked files
    differ from the commit (the run then tested a tree that no commit holds), ``date`` is the time
    now in ISO 8601, UTC.
    """
    commit = _git(root, "rev-parse", "HEAD") or os.environ.get("PARITY_COMMIT", "")
    dirty = bool(commit) and bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {"commit": commit, "dirty": dirty, "date": date}


def _parametrized(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Argument names a ``@pytest.mark.parametrize("a, b", ...)`` fills, which no fixture then
    supplies (a parameter may be called ``setting`` without being the device fixture)."""
    names: set[str] = set()
    for deco in fn.decorator_list:
        if isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "parametrize":
            first = deco.args[0] if deco.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names |= {n.strip() for n in first.value.split(",")}
            elif isinstance(first, ast.List | ast.Tuple):
                names |= {e.value for e in first.elts if isinstance(e, ast.Constant)}
    return names


def collected_tests(root: str | Path) -> dict[str, bool]:
    """Every test under ``root/tests`` by node id, read from the source (nothing is imported),
    mapped to whether it is a parity test (takes a fixture of :data:`DEVICE_FIXTURES`)."""
    root = Path(root)
    tests: dict[str, bool] = {}
    for path in sorted((root / "tests").rglob("test_*.py")):
        file = path.relative_to(root).as_posix()
        for node in ast.parse(path.read_text()).body:
            scopes = [("", node)]
            if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                scopes = [(f"{node.name}::", item) for item in node.body]
            for prefix, fn in scopes:
                if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) and fn.name.startswith(
                    "test"
                ):
                    args = {a.arg for a in fn.args.args + fn.args.kwonlyargs} - _parametrized(fn)
                    tests[f"{file}::{prefix}{fn.name}"] = bool(args & set(DEVICE_FIXTURES))
    return tests


def stale_tests(record: dict, tests: dict[str, bool]) -> list[str]:
    """The tests the record has rows for that no longer exist under that name, sorted."""
    return sorted({row["test"] for row in record["rows"]} - set(tests))


def uncovered_tests(record: dict, tests: dict[str, bool]) -> dict[str, list[str]]:
    """Parity tests that exist now and have no row in the record, by the module they test."""
    recorded = {row["test"] for row in record["rows"]}
    missing: dict[str, list[str]] = {}
    for test, parity in sorted(tests.items()):
        if parity and test not in recorded:
            missing.setdefault(module_of_test(test.partition("::")[0]), []).append(test)
    return missing


def _short(commit: str) -> str:
    return f"`{commit[:7]}`" if commit else "an unknown commit"


def _when(record: dict, path: Path, root: Path) -> str:
    """The run's commit and date as the record states them, or, for a record without them, the
    commit that last changed the file, labelled as such."""
    run = record.get("run", {})
    if run.get("commit") or run.get("date"):
        dirty = " with uncommitted changes" if run.get("dirty") else ""
        return f"**Run at:** commit {_short(run.get('commit', ''))}{dirty}, {run.get('date', 'date not recorded')}."
    name = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    last = _git(root, "log", "-1", "--format=%H,%cI", "--", name)
    text = "**Run at:** not recorded (this record predates the commit and date fields)."
    if last:
        commit, date = last.split(",")
        text += (
            f" **Committed at:** {_short(commit)}, {date}: the commit that last changed "
            f"`{name}`; the run was made before it, on a tree the record does not name."
        )
    return text


def gpu_record_markdown(path: str | Path, root: str | Path) -> str:
    """The appendix's section for a recorded run: whether it matches the tests that exist now
    (verdict first), when it was made, the parity tests it has no row for (by module), then the
    record's own report with each row whose test no longer exists marked :data:`STALE_MARK`."""
    import json

    path, root = Path(path), Path(root)
    record = json.loads(path.read_text())
    tests = collected_tests(root)
    stale = stale_tests(record, tests)
    missing = uncovered_tests(record, tests)
    n_parity = sum(tests.values())
    n_missing = sum(len(v) for v in missing.values())
    n_stale_rows = sum(row["test"] in stale for row in record["rows"])
    if stale or missing:
        verdict = (
            f"**This record does not describe the current tests.** {n_stale_rows} of its "
            f"{len(record['rows'])} rows name a test that no longer exists under that name, and "
            f"{n_parity - n_missing} of the {n_parity} parity tests that exist now have a row in it. "
            "Its numbers describe the code as it was then; rerun `bash scripts/gpu_parity.sh` "
            "on a CUDA machine to replace it."
        )
    else:
        verdict = (
            f"**This record has a row for each of the {n_parity} parity tests that exist now**, "
            "and every row names a test that exists (the code under test may have changed since)."
        )
    lines = [verdict, "", _when(record, path, root), ""]
    if missing:
        lines += ["**Not covered by this record**, by the module the tests exercise:", ""]
        per_module: dict[str, int] = {}
        for test, parity in tests.items():
            module = module_of_test(test.partition("::")[0])
            per_module[module] = per_module.get(module, 0) + parity
        lines += [
            f"- `{module}`: {len(names)} of its {per_module[module]} parity "
            f"test{'s' * (per_module[module] > 1)} with no row"
            for module, names in sorted(missing.items())
        ]
        lines.append("")
    if stale:
        lines += [
            f":::{{dropdown}} The {len(stale)} tests this record names that no longer exist "
            "under that name",
            *[f"- `{test}`" for test in stale],
            ":::",
            "",
        ]
    lines.append(parity_results_markdown(record, fold=True, stale=set(stale)))
    return "\n".join(lines)
