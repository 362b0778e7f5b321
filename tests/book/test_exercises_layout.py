"""Every chapter's exercises and solutions follow the chapter shape (COMMON brief, issue 14).

Read from the committed notebooks: the title cell names prerequisites and times; ``## Exercises``
holds ``### Exercise N: ...`` numbered 1..k, each with exactly one stub cell (the untouched
template ``def my_<thing>`` and a call of its checker ``check_...(my_<thing>)``, printing
nothing); ``## Further reading`` follows, then ``## Solutions`` with ``### Solution to exercise
N`` for the same N, each with one code cell tagged ``solution`` and ``hide-cell``, folded in
Jupyter too, that defines ``solution_<thing>`` (never a ``my_`` name, which would overwrite the
learner's answer when the notebook runs top to bottom) and calls the same checker on it. No
solution cell and no ``solution_`` name appears before ``## Solutions``. The last test runs the
functions the cells define (not the chapters): each solution passes its checker, each stub is
reported as not attempted yet. New chapters are found through ``_toc.yml``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from booktools import toc_files
from demos.exercises.core import template_return

ROOT = Path(__file__).resolve().parents[2]
EXERCISE = re.compile(r"^### Exercise (\d+): \S")
SOLUTION = re.compile(r"^### Solution to exercise (\d+)$")
BEFORE_YOU_START = re.compile(  # one paragraph (it may wrap over source lines)
    r"^\*\*Before you start:\*\*\s(?:(?!\n\s*\n).)+?·\s+about\s+\d+\s+min\s+to\s+read,"
    r"\s+\d+\s+min\s+for\s+the\s+exercises\.",
    re.MULTILINE | re.DOTALL,
)
WRITTEN_BY_SCRIPT = {"remove-input", "remove-cell"}  # the closing cell, not part of a section


def chapter_notebooks() -> list[Path]:
    notebooks = (ROOT / f"{f}.ipynb" for f in toc_files(ROOT, chapters_only=True))
    return [path for path in notebooks if path.exists()]


def sections(nb) -> list[tuple[str, list]]:
    """The notebook as (heading, cells under it until the next heading) pairs, headings of levels
    2 and 3 in order; a markdown cell may hold several headings."""
    out: list[tuple[str, list]] = [("", [])]
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if re.match(r"^#{2,3} ", line):
                    out.append((line.strip(), []))
        elif not WRITTEN_BY_SCRIPT & set(tags(cell)) or "solution" in tags(cell):
            out[-1][1].append(cell)
    return out


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def functions(cell) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(ast.parse(cell.source)) if isinstance(n, ast.FunctionDef)]


def checker_calls(cell) -> list[tuple[str, str]]:
    """(checker, argument name) for every call ``check_x(name)`` in the cell."""
    calls = []
    for node in ast.walk(ast.parse(cell.source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id.startswith("check_")
            and node.args
            and isinstance(node.args[0], ast.Name)
        ):
            calls.append((node.func.id, node.args[0].id))
    return calls


def assigned_names(cell) -> set[str]:
    names = {f.name for f in functions(cell)}
    for node in ast.walk(ast.parse(cell.source)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def prints(cell) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"
        for n in ast.walk(ast.parse(cell.source))
    )


CHAPTERS = chapter_notebooks()


def test_the_chapters_are_found():
    assert {p.stem for p in CHAPTERS} >= {"llama2", "mistral", "mamba", "falcon", "zephyr"}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_exercises_heading_starts_its_own_cell(path):
    """So the solutions notebook (scripts/student_edition.py) and a reader jumping to the
    exercises do not start mid-way through the experiment's text."""
    nb = nbformat.read(path, as_version=4)
    holding = [c for c in nb.cells if c.cell_type == "markdown" and "## Exercises" in c.source]
    assert len(holding) == 1, f"{path.name}: one markdown cell with '## Exercises'"
    assert holding[0].source.startswith("## Exercises"), (
        f"{path.name}: '## Exercises' shares a cell with the text before it; split the cell"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_title_cell_names_prerequisites_and_times(path):
    title = nbformat.read(path, as_version=4).cells[0]
    assert title.cell_type == "markdown" and title.source.startswith("# "), path.name
    assert "**What you will learn**" in title.source, path.name
    assert BEFORE_YOU_START.search(title.source), (
        f"{path.name}: the title cell needs a line '**Before you start:** <chapters> · about N "
        "min to read, M min for the exercises.'"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_exercises_then_further_reading_then_solutions(path):
    nb = nbformat.read(path, as_version=4)
    level2 = [h for h, _ in sections(nb) if h.startswith("## ")]
    assert "## Exercises" in level2, f"{path.name}: no '## Exercises' section"
    after = level2[level2.index("## Exercises") + 1 :]
    assert after == ["## Further reading", "## Solutions"], (
        f"{path.name}: after '## Exercises' come exactly 'Further reading' and 'Solutions', "
        f"found {after}"
    )


def _exercises_and_solutions(nb):
    exercises, solutions, part = {}, {}, None
    for heading, cells in sections(nb):
        if heading.startswith("## "):
            part = heading
            continue
        if part == "## Exercises" and (m := EXERCISE.match(heading)):
            exercises[int(m.group(1))] = cells
        elif part == "## Solutions" and (m := SOLUTION.match(heading)):
            solutions[int(m.group(1))] = cells
    return exercises, solutions


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_each_exercise_has_one_stub_calling_its_checker(path):
    nb = nbformat.read(path, as_version=4)
    exercises, _ = _exercises_and_solutions(nb)
    assert exercises, f"{path.name}: no '### Exercise N: <title>' heading under '## Exercises'"
    assert sorted(exercises) == list(range(1, len(exercises) + 1)), (
        f"{path.name}: exercises numbered {sorted(exercises)}, expected 1..{len(exercises)}"
    )
    for n, cells in exercises.items():
        where = f"{path.name}, exercise {n}"
        assert len(cells) == 1, f"{where}: {len(cells)} code cells; one stub cell expected"
        [cell] = cells
        assert "solution" not in tags(cell), f"{where}: the stub is tagged solution"
        stubs = [f for f in functions(cell) if f.name.startswith("my_")]
        assert len(stubs) == 1, f"{where}: one `def my_<thing>(...)` expected"
        assert template_return(stubs[0], cell.source), (
            f"{where}: `{stubs[0].name}` is not the untouched template (a `# your code here` "
            "comment and one placeholder return)"
        )
        calls = [checker for checker, name in checker_calls(cell) if name == stubs[0].name]
        assert len(calls) == 1, (
            f"{where}: the cell must call its checker on the stub: check_<thing>({stubs[0].name})"
        )
        assert not prints(cell), f"{where}: a stub cell prints nothing (answers go in solutions)"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_each_solution_is_folded_named_apart_and_checked(path):
    nb = nbformat.read(path, as_version=4)
    exercises, solutions = _exercises_and_solutions(nb)
    assert sorted(solutions) == sorted(exercises), (
        f"{path.name}: solutions {sorted(solutions)} for exercises {sorted(exercises)}"
    )
    for n, cells in solutions.items():
        where = f"{path.name}, solution {n}"
        assert len(cells) == 1, f"{where}: {len(cells)} code cells; one expected"
        [cell] = cells
        assert {"solution", "hide-cell"} <= set(tags(cell)), (
            f"{where}: tags {tags(cell)}; the cell needs 'solution' and 'hide-cell'"
        )
        hidden = cell.metadata.get("jupyter", {})
        assert hidden.get("source_hidden") is True and hidden.get("outputs_hidden") is True, (
            f"{where}: fold it in Jupyter too: metadata.jupyter.source_hidden/outputs_hidden"
        )
        mine = sorted(name for name in assigned_names(cell) if name.startswith("my_"))
        assert not mine, f"{where}: defines the learner's name(s) {mine}; use solution_<thing>"
        [stub] = [f.name for f in functions(exercises[n][0]) if f.name.startswith("my_")]
        [checker] = [c for c, name in checker_calls(exercises[n][0]) if name == stub]
        solved = {f.name for f in functions(cell) if f.name.startswith("solution_")}
        assert solved, f"{where}: define solution_{stub[3:]} (the stub is {stub})"
        assert any(c == checker and name in solved for c, name in checker_calls(cell)), (
            f"{where}: call {checker}(solution_...) on the solution, as the stub's cell does"
        )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_solution_before_the_solutions_section(path):
    nb = nbformat.read(path, as_version=4)
    for heading, cells in sections(nb):
        if heading == "## Solutions":
            break
        for cell in cells:
            assert "solution" not in tags(cell), f"{path.name}: a solution cell under {heading}"
            defined = [n for n in assigned_names(cell) if n.startswith("solution_")]
            assert not defined, f"{path.name}: {defined} defined under {heading}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_each_solution_passes_and_each_stub_is_not_attempted(path, tmp_path):
    """Run what the cells define, not the whole chapter: each solution's imports and functions,
    then its checker on it (it must pass), and each stub against its checker (it must be reported
    as not attempted yet). The functions are written to a file first, so that the checker can read
    their source as it does in Jupyter."""
    import importlib.util

    nb = nbformat.read(path, as_version=4)
    exercises, solutions = _exercises_and_solutions(nb)
    for kind, cells in (("stub", exercises), ("solution", solutions)):
        for n, [cell] in cells.items():
            tree = ast.parse(cell.source)
            kept = [s for s in tree.body if isinstance(s, ast.Import | ast.ImportFrom)]
            kept += [s for s in tree.body if isinstance(s, ast.FunctionDef)]
            module_path = tmp_path / f"{path.stem}_{kind}_{n}.py"
            segments = [ast.get_source_segment(cell.source, s) for s in kept]  # with comments
            module_path.write_text("\n\n\n".join(segments) + "\n")
            spec = importlib.util.spec_from_file_location(module_path.stem, module_path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            [(checker, name)] = [  # check_<thing>(my_<thing>) or check_<thing>(solution_...)
                call
                for call in checker_calls(cell)
                if call[1].startswith("my_" if kind == "stub" else "solution_")
            ][:1]
            result = getattr(module, checker)(getattr(module, name))
            where = f"{path.name}, {kind} {n}"
            if kind == "solution":
                assert result.ok, f"{where}: {result}"
            else:  # a checker built on check_function sets attempted=False; say it in words too
                assert not result.ok and "Not attempted yet" in str(result), f"{where}: {result}"
