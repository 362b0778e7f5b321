"""Count the passages the notebooks retype: pylint's similarity checker over their code and src/demos.

    python scripts/duplicates.py           # the count, and each passage with where it occurs
    python scripts/duplicates.py --count   # the count alone

A notebook should call the package rather than define what it has, and no duplicate tool reads
``.ipynb``: each notebook's code cells are written out as one ``.py`` file (cells in order, separated
by a blank line; ``%``/``!`` lines left out), and ``symilar`` (pylint's duplicate-code checker, the
same engine as ``pylint --enable=duplicate-code``) runs over them and every module of ``src/demos``,
ignoring comments, docstrings, imports and signatures, with its default of 4 lines or more. A passage
counts when at least one of its copies is in a notebook: that is code a page retypes (from another page
or from the package). The setup cell and the budget cell are left out: scripts/sync_setup_cells.py
writes them from one template, nobody types them.

``tests/test_duplicates.py`` holds the count to ``tests/duplicates_budget.txt``, a budget that only
goes down.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
MIN_LINES = 4  # symilar's default
SETUP_MARK = "# Setup for Colab or any fresh environment"
BUDGET_SOURCE = "from demos.book import report_budget\n\nreport_budget()"


def notebook_code(path: Path) -> str:
    """The code cells of ``path`` a person wrote, as one Python file."""
    nb = nbformat.read(path, as_version=4)
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.source.startswith(SETUP_MARK):
            continue
        if cell.source.strip() == BUDGET_SOURCE:
            continue
        lines = [ln for ln in cell.source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        cells.append("\n".join(lines))
    return "\n\n".join(cells) + "\n"


def passages(root: Path = ROOT) -> list[list[str]]:
    """Each duplicated passage that has a copy in a notebook: the files it occurs in."""
    from pylint.checkers.symilar import Symilar

    with tempfile.TemporaryDirectory() as tmp:
        exported = []
        for path in sorted((root / "book").glob("*.ipynb")):
            out = Path(tmp) / f"{path.stem}.ipynb.py"
            out.write_text(notebook_code(path))
            exported.append(out)
        sources = sorted((root / "src" / "demos").rglob("*.py"))
        sim = Symilar(
            min_lines=MIN_LINES,
            ignore_comments=True,
            ignore_docstrings=True,
            ignore_imports=True,
            ignore_signatures=True,
        )
        for path in [*exported, *sources]:
            with open(path, encoding="utf-8") as stream:
                name = f"book/{path.name[:-3]}" if path in exported else str(path.relative_to(root))
                with contextlib.redirect_stdout(io.StringIO()):
                    sim.append_stream(name, stream)
        report = io.StringIO()
        with contextlib.redirect_stdout(report):
            sim.run()  # symilar's own report: "N similar lines in K files", then "==file:[a:b]" lines
    found: list[list[str]] = []
    for line in report.getvalue().splitlines():
        if re.fullmatch(r"\d+ similar lines in \d+ files", line):
            found.append([])
        elif line.startswith("==") and found:
            found[-1].append(line[2:].rsplit(":[", 1)[0])
    found = [sorted(set(files)) for files in found]
    if not report.getvalue().rstrip().splitlines()[-1].startswith("TOTAL lines="):
        raise RuntimeError(
            f"symilar's report did not end as expected:\n{report.getvalue()[-2000:]}"
        )
    return [files for files in found if any(f.endswith(".ipynb") for f in files)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", action="store_true", help="print the count alone")
    found = passages()
    if not parser.parse_args().count:
        for files in found:
            print(", ".join(files))
    print(len(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
