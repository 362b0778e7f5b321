"""The book: notebooks committed clean, every chapter in the table of contents, and a full build.

The build test runs ``jupyter-book build . -W`` into a temporary folder, which executes every
chapter notebook from scratch: a cell error, a Sphinx warning, a traceback in the output, a
parity cell over its tolerance, or a notebook slower than its budget fails the suite.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").rglob("*.ipynb"))
CHAPTER_PART = (
    "Model families"  # every page in this part of _toc.yml is a model chapter with a parity cell
)


def chapters() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    part = next(p for p in toc["parts"] if p["caption"] == CHAPTER_PART)
    return [ROOT / f"{entry['file']}.ipynb" for entry in part["chapters"]]


NOTEBOOK_BUDGET_S = 60  # hard limit per notebook on a 2-core CPU; the target is 20 s


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_without_outputs(path):
    cells = json.loads(path.read_text())["cells"]
    dirty = [
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} hold outputs; strip them (nbstripout or Clear All Outputs)"
    )


def test_every_chapter_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    listed = set(re.findall(r"file:\s*(\S+)", toc)) | set(re.findall(r"root:\s*(\S+)", toc))
    pages = {
        str(p.relative_to(ROOT).with_suffix(""))
        for p in (ROOT / "book").rglob("*")
        if p.suffix in (".ipynb", ".md")
    }
    assert pages - listed == set(), (
        f"pages missing from _toc.yml (they would not be built): {sorted(pages - listed)}"
    )


def test_first_cell_of_each_notebook_sets_up_colab():
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        first_code = next(c for c in cells if c["cell_type"] == "code")
        assert 'find_spec("demos")' in "".join(first_code["source"]), (
            f"{path.name}: first code cell must install demos"
        )


@pytest.fixture(scope="module")
def built_book(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run(
        [str(jb), "build", str(ROOT), "-W", "--keep-going", "--path-output", str(out)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, (
        f"book build failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    )
    return out / "_build"


@pytest.mark.book
def test_book_builds_and_every_page_is_clean(built_book):
    pages = list((built_book / "html" / "book").rglob("*.html"))
    assert {p.stem for p in pages} >= {p.stem for p in NOTEBOOKS}
    for page in pages:
        html = page.read_text()
        assert "Traceback (most recent call last)" not in html, f"{page.name} shows a traceback"
        assert "PARITY FAILED" not in html, f"{page.name}: a parity cell is over its tolerance"


def test_chapters_are_notebooks():
    missing = [p.name for p in chapters() if not p.exists()]
    assert not missing, f"model chapters must be .ipynb (Colab opens only notebooks): {missing}"


@pytest.mark.book
@pytest.mark.parametrize("path", chapters(), ids=lambda p: p.name)
def test_parity_cell_within_tolerance(built_book, path):
    html = (built_book / "html" / "book" / f"{path.stem}.html").read_text()
    diffs = [
        float(x) for x in re.findall(r"PARITY OK: max \|ours - transformers\| = ([0-9.e+-]+)", html)
    ]
    assert diffs, (
        f"{path.name} has no passing parity cell (a line 'PARITY OK: max |ours - transformers| = ...')"
    )
    assert max(diffs) <= 1e-5, f"{path.name}: largest parity difference {max(diffs):.3e} > 1e-5"
    assert "PARITY OK" in html


@pytest.mark.book
def test_notebooks_within_time_budget(built_book):
    from jupyter_cache import get_cache

    seconds = {
        Path(r.uri).name: r.data["execution_seconds"]
        for r in get_cache(built_book / ".jupyter_cache").list_cache_records()
    }
    print("notebook execution seconds:", {k: round(v, 1) for k, v in sorted(seconds.items())})
    assert set(seconds) == {p.name for p in NOTEBOOKS}, (
        "every notebook must have been executed by the build"
    )
    slow = {k: v for k, v in seconds.items() if v > NOTEBOOK_BUDGET_S}
    assert not slow, f"notebooks over the {NOTEBOOK_BUDGET_S} s budget: {slow}"
