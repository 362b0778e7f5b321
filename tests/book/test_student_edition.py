"""The student edition (scripts/student_edition.py, `make student`): written into a temporary folder,
each chapter holds no solution cell, no `solution_` name and no output, and EXECUTES top to bottom
(nbclient, one CPU thread per kernel, 300 s per notebook) with every exercise answered
"✏️ Not attempted yet"; the solutions are written apart, one notebook per chapter."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from demos.exercises.core import NOT_ATTEMPTED

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 300  # per notebook, as the book's build (_config.yml)


def _script():
    spec = importlib.util.spec_from_file_location(
        "student_edition", ROOT / "scripts" / "student_edition.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EDITION = _script()
CHAPTERS = EDITION.chapters()


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    assert EDITION.main(["--out", str(out)]) == 0
    return out


@pytest.mark.notebooks  # writes an edition, a wheel or reads every notebook: full lane
def test_edition_holds_every_chapter_and_its_solutions(edition):
    assert {p.name for p in (edition / "book").iterdir()} == {p.name for p in CHAPTERS}
    for path in CHAPTERS:
        original = nbformat.read(path, as_version=4)
        answers = nbformat.read(edition / "solutions" / path.name, as_version=4)
        solved = [c.source for c in original.cells if "solution" in c.metadata.get("tags", [])]
        shown = [c.source for c in answers.cells if c.cell_type == "code"]
        assert solved and shown == solved, f"{path.name}: solutions missing or changed"
        assert all(not c.get("outputs") for c in answers.cells if c.cell_type == "code")
        assert all("hide-cell" not in c.metadata.get("tags", []) for c in answers.cells)


def _undefined_names(cells) -> dict[int, set[str]]:
    """{index of a code cell: names it uses that no cell up to it defines}, by ruff's F821 on the
    notebook's code as one module (as `jupyter nbconvert --to script` would write it)."""
    lines, owner = [], []
    for index, cell in enumerate(cells):
        if cell.cell_type == "code":
            source = cell.source.splitlines() + [""]
            lines += source
            owner += [index] * len(source)
    run = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--select", "F821"]
        + ["--output-format", "json", "--stdin-filename", "solutions.py", "-"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode in (0, 1) and run.stdout.strip().startswith("["), run.stderr
    found: dict[int, set[str]] = {}
    for problem in json.loads(run.stdout):
        name = re.search(r"`(.+)`", problem["message"]).group(1)
        found.setdefault(owner[problem["location"]["row"] - 1], set()).add(name)
    return found


def test_undefined_names_are_caught():  # the check below can fail
    cells = [nbformat.v4.new_code_cell("import torch\nx = torch.ones(1)\nprint(y, x)")]
    assert _undefined_names(cells) == {0: {"y"}}


@pytest.mark.notebooks  # writes an edition, a wheel or reads every notebook: full lane
def test_solutions_open_with_a_prompt_and_define_or_name_what_they_use(edition):
    for path in CHAPTERS:
        cells = nbformat.read(edition / "solutions" / path.name, as_version=4).cells
        assert cells[1].source.startswith("### Exercise 1"), (path.name, cells[1].source[:200])
        for index, names in _undefined_names(cells).items():
            note = cells[index - 1]
            assert note.cell_type == "markdown" and "runs in the chapter's notebook" in note.source
            unnamed = [n for n in names if f"`{n}`" not in note.source]
            assert not unnamed, f"{path.name}: a solution uses {unnamed}, defined nowhere above"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_student_notebook_runs_without_solutions(edition, path, monkeypatch):
    from nbclient import NotebookClient

    student = edition / "book" / path.name
    nb = nbformat.read(student, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    assert not [c.source for c in nb.cells if "solution_" in c.source]  # code or prose
    assert all(not c.outputs and c.execution_count is None for c in code)
    notes = [c for c in nb.cells if c.source == EDITION.NOTE]
    exercises = [c for c in nb.cells if c.cell_type == "markdown" and "### Exercise " in c.source]
    assert len(notes) == len(exercises) > 0

    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # one thread per kernel, as CI
        monkeypatch.setenv(variable, "1")
    client = NotebookClient(
        nb,
        timeout=TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(student.parent)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails

    texts = []
    for cell in code:
        for output in cell.outputs:
            data = output.get("data", {})  # a Check shows as Markdown, else as plain text
            texts.append(
                output.get("text") or data.get("text/markdown") or data.get("text/plain", "")
            )
    shown = "\n".join(texts)
    # each exercise answered by its checker, untouched ("not attempted yet": test_exercises_layout)
    assert shown.count(NOT_ATTEMPTED) == len(exercises), shown[-3000:]
    assert "❌" not in shown  # an untouched exercise is instructions, not a failure (issue 28)
    assert "✅" not in shown
    print(json.dumps({path.stem: f"{len(exercises)} exercises, not attempted"}), file=sys.stderr)


@pytest.mark.notebooks  # writes an edition, a wheel or reads every notebook: full lane
def test_the_chinese_student_edition_has_the_same_cells_in_chinese(edition):
    """`make student` writes the Chinese edition beside the English one: the same code cells (so
    the same checkers and stubs, no solution), its prose and the notes in Chinese."""
    cjk = re.compile(r"[\u3400-\u9fff]")
    for path in CHAPTERS:
        english = nbformat.read(edition / "book" / path.name, as_version=4)
        chinese = nbformat.read(edition / "zh" / "book" / path.name, as_version=4)
        assert [c.source for c in chinese.cells if c.cell_type == "code"] == [
            c.source for c in english.cells if c.cell_type == "code"
        ], path.name
        prose = [c.source for c in chinese.cells if c.cell_type == "markdown"]
        assert all(cjk.search(p) for p in prose), f"{path.name}: a markdown cell without Chinese"
        answers = nbformat.read(edition / "zh" / "solutions" / path.name, as_version=4)
        assert cjk.search(answers.cells[0].source) and cjk.search(answers.cells[1].source)


@pytest.mark.notebooks  # writes an edition, a wheel or reads every notebook: full lane
def test_the_edition_has_no_myst_in_markdown_in_either_language(edition):
    """Jupyter without jupyterlab-myst and Colab render no MyST: every markdown cell of the student
    and solutions notebooks, English and Chinese, has its citations and admonitions as plain
    Markdown (book/plain_markdown.py), and the code cells are the book's own."""
    from helpers import markdown_with_myst

    for folder in ("book", "solutions", "zh/book", "zh/solutions"):
        written = sorted((edition / folder).glob("*.ipynb"))
        assert len(written) > 20, folder
        for path in written:
            left = markdown_with_myst(json.loads(path.read_text())["cells"])
            assert not left, (folder, path.name, left)
    book = nbformat.read(CHAPTERS[0], as_version=4)
    student = nbformat.read(edition / "book" / CHAPTERS[0].name, as_version=4)
    assert [c.source for c in student.cells if c.cell_type == "code"] == [
        c.source
        for c in book.cells
        if c.cell_type == "code" and "solution" not in c.metadata.get("tags", [])
    ]
