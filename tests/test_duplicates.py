"""The notebooks retype no more than they did: duplicated passages (scripts/duplicates.py, pylint's
similarity checker over the notebooks' code and src/demos) stay within a budget that only goes down.

The budget is the number in tests/duplicates_budget.txt. A new page that copies a loop from another
page, or retypes a helper of the package, raises the count and fails here: call the package instead
(``demos.traps.show``, ``demos.book.parity_report``, ...). When a change removes passages, the
test fails too, asking for the lower number, so the budget follows every improvement.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUDGET = ROOT / "tests" / "duplicates_budget.txt"

pytestmark = pytest.mark.notebooks  # reads every notebook and module: the full lane (make test)


def _duplicates():
    spec = importlib.util.spec_from_file_location("duplicates", ROOT / "scripts" / "duplicates.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_duplicated_passages_stay_within_the_budget():
    budget = int(BUDGET.read_text().split()[0])
    found = _duplicates().passages(ROOT)
    listing = "\n".join(", ".join(files) for files in found)
    assert len(found) <= budget, (
        f"{len(found)} duplicated passages, over the budget of {budget}: a notebook retypes code "
        f"(python scripts/duplicates.py shows where):\n{listing}"
    )
    assert len(found) == budget, (
        f"{len(found)} duplicated passages, fewer than the budget of {budget}: "
        f"write {len(found)} into {BUDGET.relative_to(ROOT)} (the budget only goes down)"
    )


def test_the_checker_sees_a_passage_a_notebook_retypes(tmp_path):
    """The count is not vacuous: two pages sharing a 6-line loop make one passage."""
    import nbformat

    loop = (
        "for trap in TRAPS:\n    m = trap.measure()\n    print(trap.title)\n"
        "    print(m.right_error)\n    print(m.wrong_error)\n    print(m.tolerance)\n"
    )
    (tmp_path / "book").mkdir()
    (tmp_path / "src" / "demos").mkdir(parents=True)
    for name, other in (("a", "x = 1"), ("b", "y = 2")):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(other), nbformat.v4.new_code_cell(loop)]
        nbformat.write(nb, tmp_path / "book" / f"{name}.ipynb")
    (tmp_path / "src" / "demos" / "m.py").write_text("def f():\n    return 1\n")
    assert _duplicates().passages(tmp_path) == [["book/a.ipynb", "book/b.ipynb"]]
