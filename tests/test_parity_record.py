"""The appendix never passes a stale GPU record off as a current one (book/parity_record.py).

The checks here do not trust the page's own reading of the test suite: which tests exist is read
from the test files with a plain text search, and which are parity tests from pytest's collection.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from booktools import STALE_MARK, module_of_test, parity_results_markdown
from parity_record import collected_tests, gpu_record_markdown, run_provenance

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "results" / "gpu_parity.json"
NOTEBOOK = ROOT / "book" / "parity_report.ipynb"


def exists(test: str) -> bool:
    """``tests/x.py::test_f`` (or ``::Class::test_f``) is defined: the file is there and defines it."""
    file, _, name = test.partition("::")
    path = ROOT / file
    func = name.split("::")[-1]
    return path.is_file() and re.search(rf"^\s*(async\s+)?def {func}\(", path.read_text(), re.M)


@pytest.fixture(scope="module")
def parity_tests() -> set[str]:
    """Tests pytest collects with a ``cpu-fp32`` or ``cuda-*`` parameter: those a GPU run repeats."""
    files = [
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "tests").rglob("test_*.py"))
        if "setting" in p.read_text() and "book" not in p.parts and p.name != "test_book.py"
    ]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    ids = [line for line in run.stdout.splitlines() if "::" in line]
    return {i.partition("[")[0] for i in ids if re.search(r"[\[-](cpu-fp32|cuda-\w+)\b", i)}


def problems(record: dict, page: str, parity_tests: set[str]) -> list[str]:
    """What the page gets wrong about ``record``: a row naming a test that does not exist, left
    out of the page's stale list; a test in that list that does exist; a module with a parity test
    the record has no row for, not named under "Not covered"."""
    found = []
    block = re.search(r"that no longer exist under that name\n(.*?)\n:::", page, re.S)
    listed = set(re.findall(r"^- `([^`]+)`$", block.group(1), re.M)) if block else set()
    for test in sorted({row["test"] for row in record["rows"]}):
        if not exists(test) and test not in listed:
            found.append(f"{test} does not exist and the page does not say so")
        if exists(test) and test in listed:
            found.append(f"{test} exists but the page calls it gone")
    recorded = {row["test"] for row in record["rows"]}
    head, _, rest = page.partition("**Not covered by this record**")
    named = set(re.findall(r"^- `([^`]+)`: \d+ of its", rest.split("\n\n:::")[0], re.M))
    for test in sorted(parity_tests - recorded):
        module = module_of_test(test.partition("::")[0])
        if module not in named:
            found.append(f"{test} has no row and the page does not name {module} as not covered")
    return found


def test_the_appendix_marks_every_stale_row_and_names_every_uncovered_module(parity_tests):
    record = json.loads(RECORD.read_text())
    page = gpu_record_markdown(RECORD, ROOT)
    assert problems(record, page, parity_tests) == []
    # the stale table rows carry the mark too, and the verdict comes first
    for row in record["rows"]:
        if "max_out_abs" in row and not exists(row["test"]):
            assert f"(*{STALE_MARK}*)" in page
    assert page.startswith("**This record")


def test_a_planted_bad_record_is_caught(tmp_path, parity_tests):
    """A record naming a removed test, shown the way the page showed it before it checked (the
    plain report), and a page that leaves out a module the record does not cover: both caught."""
    gone = "tests/layers/test_attention.py::test_that_was_removed"
    record = {
        "environment": {"python": "3", "torch": "2", "transformers": "5"},
        "counts": {"passed": 1, "failed": 0, "skipped": 0},
        "rows": [{"test": gone, "setting": "cuda-fp32", "passed": 1, "failed": 0, "skipped": 0}],
    }
    path = tmp_path / "gpu_parity.json"
    path.write_text(json.dumps(record))
    unchecked = parity_results_markdown(record, fold=True)
    found = problems(record, unchecked, parity_tests)
    assert any(gone in p and "does not say so" in p for p in found)
    assert any("not covered" in p for p in found)
    page = gpu_record_markdown(path, ROOT)
    assert problems(record, page, parity_tests) == []
    dropped = re.sub(r"^- `models\.mamba`: .*\n", "", page, flags=re.M)
    assert any("models.mamba" in p for p in problems(record, dropped, parity_tests))


def test_the_page_reads_the_tests_as_pytest_collects_them(parity_tests):
    """The page's static reading of tests/ finds the parity tests pytest collects, no more."""
    tests = collected_tests(ROOT)
    assert {t for t, parity in tests.items() if parity} == parity_tests
    assert all(exists(t) for t in tests)


def test_a_new_record_states_its_commit_and_date_and_the_page_shows_them(tmp_path):
    run = run_provenance(ROOT)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    assert run["commit"] == head.stdout.strip() and len(run["commit"]) == 40
    assert datetime.fromisoformat(run["date"]).tzinfo is not None
    record = json.loads(RECORD.read_text()) | {"run": run}
    path = tmp_path / "gpu_parity.json"
    path.write_text(json.dumps(record))
    page = gpu_record_markdown(path, ROOT)
    assert f"**Run at:** commit `{run['commit'][:7]}`" in page and run["date"] in page
    assert "Committed at" not in page


def test_a_record_without_them_says_so_and_names_the_commit_that_added_it():
    page = gpu_record_markdown(RECORD, ROOT)
    assert "**Run at:** not recorded" in page
    last = subprocess.run(
        ["git", "log", "-1", "--format=%h", "--", "results/gpu_parity.json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert f"**Committed at:** `{last[:7]}`" in page


def test_the_appendix_renders_the_record_through_the_checked_function():
    code = "".join(
        "".join(c["source"])
        for c in json.loads(NOTEBOOK.read_text())["cells"]
        if c["cell_type"] == "code"
    )
    assert "gpu_record_markdown(" in code
