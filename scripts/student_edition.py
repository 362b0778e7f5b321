"""Write the student edition of the book: every chapter without its solutions, and the solutions apart.

    python scripts/student_edition.py [--out DIR]      # default: _build/student/  (make student)

Into DIR it writes:

- ``book/<chapter>.ipynb``: every chapter of ``_toc.yml`` (the parts other than "Overview" and
  "Back matter") with each solution cell (tagged ``solution``) replaced by a one-line note that
  the solution is in the instructor's copy (and the Solutions section's introduction by one
  saying so), and every output and execution count cleared. The
  exercise stubs and their checkers stay, so "Run all" answers each with ✏️ *Not attempted yet*.
- ``results/``: a copy of the recorded results the chapters read (``../results/...``), so the
  notebooks run from DIR/book/ as they do from the repository's book/.
- ``zh/``: the same for the Chinese edition (its chapters from scripts/build_zh.py's source tree,
  the notes above translated in the catalog ``_book``).
- ``solutions/<chapter>.ipynb``: for each chapter, its exercises (heading and prompt) each followed
  by the worked solution, unfolded, without outputs.

Every markdown cell written is plain Markdown (book/plain_markdown.py): citations as author–year
links, admonitions as blockquotes, since Jupyter without jupyterlab-myst and Colab render no MyST.

Nothing is executed here; ``tests/book/test_student_edition.py`` writes an edition and executes it.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import copy
import re
import shutil
import symtable
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))  # booktools: the book's tooling, outside the package
from booktools import toc_files  # noqa: E402
from plain_markdown import plain_notebook  # noqa: E402

NOTE = "*The worked solution to this exercise is in the instructor's copy.*"
SOLUTIONS_NOTE = (
    "## Solutions\n\n*This is the student edition: the worked solutions are in the instructor's "
    "copy (the edition's solutions/{chapter}.ipynb).*"
)
SOLUTIONS_INTRO = (
    "# {title}: solutions\n\nThe worked solutions of the chapter's exercises, for the instructor. "
    "Each runs in this notebook after the ones before it, unless a note above it names cells of "
    "the chapter's notebook (`{chapter}.ipynb`) to run first."
)
STUDENT_NOTES = (NOTE, SOLUTIONS_NOTE, SOLUTIONS_INTRO)  # translated in the catalog ``_book``


def chapters() -> list[Path]:
    """The chapter notebooks listed in _toc.yml, in its order."""
    notebooks = (ROOT / f"{f}.ipynb" for f in toc_files(ROOT, chapters_only=True))
    return [path for path in notebooks if path.exists()]


def is_solution(cell: nbformat.NotebookNode) -> bool:
    return "solution" in cell.get("metadata", {}).get("tags", [])


def cleared(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cell = copy.deepcopy(cell)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    cell.pop("id", None)
    return cell


def student_notebook(
    nb: nbformat.NotebookNode,
    chapter: str,
    table: dict[str, str] | None = None,
    english: nbformat.NotebookNode | None = None,
) -> nbformat.NotebookNode:
    """The chapter with each solution cell replaced by a note and all outputs cleared.

    For a translated ``nb``: ``table`` translates the notes (the Chinese edition's catalog
    ``_book``) and ``english``, the English notebook (the same cells, one for one), finds the
    Solutions section.
    """
    table = table or {}
    english = english or nb
    out = copy.deepcopy(nb)
    out.cells = []
    for cell, original in zip(nb.cells, english.cells, strict=True):
        if is_solution(cell):
            cell = nbformat.v4.new_markdown_cell(table.get(NOTE, NOTE))
        elif original.cell_type == "markdown" and original.source.startswith("## Solutions"):
            note = table.get(SOLUTIONS_NOTE, SOLUTIONS_NOTE)
            cell = nbformat.v4.new_markdown_cell(note.format(chapter=chapter))
        out.cells.append(cleared(cell))
    for cell in out.cells:
        cell.pop("id", None)
    out.nbformat_minor = 4
    return out


def _heading(cell: nbformat.NotebookNode, pattern: str) -> re.Match | None:
    if cell.cell_type != "markdown":
        return None
    return re.search(pattern, cell.source, re.MULTILINE)


def _from_heading(source: str, english: str, pattern: str) -> str:
    """``source`` from the heading that ``pattern`` finds in ``english``, its English original: the
    same count of ``###`` headings precede it in both (a translation keeps the headings)."""
    start = re.search(pattern, english, re.MULTILINE).start()
    k = len(re.findall(r"^### ", english[:start], re.MULTILINE))
    headings = [m.start() for m in re.finditer(r"^### ", source, re.MULTILINE)]
    return source[headings[k] :] if k < len(headings) else source


def solutions_notebook(
    nb: nbformat.NotebookNode,
    chapter: str,
    english: nbformat.NotebookNode | None = None,
    table: dict[str, str] | None = None,
) -> nbformat.NotebookNode | None:
    """Each exercise's prompt followed by its worked solution, unfolded; None without solutions.

    ``english``: for a translated ``nb``, the English notebook, whose headings find the exercises
    (the two have the same cells, one for one); ``table`` translates the notebook's introduction.
    """
    english = english or nb
    table = table or {}
    prompts: dict[str, tuple[nbformat.NotebookNode, str]] = {}
    solutions: dict[str, nbformat.NotebookNode] = {}
    pending = None
    for cell, original in zip(nb.cells, english.cells, strict=True):
        if found := _heading(original, r"^### Exercise (\d+): "):
            prompts[found.group(1)] = cell, original.source
        if found := _heading(original, r"^### Solution to exercise (\d+)$"):
            pending = found.group(1)
        elif is_solution(cell) and pending is not None:
            solutions[pending], pending = cell, None
    if not solutions:
        return None
    title = nb.cells[0].source.splitlines()[0].removeprefix("# ").strip()
    intro = table.get(SOLUTIONS_INTRO, SOLUTIONS_INTRO)
    cells = [nbformat.v4.new_markdown_cell(intro.format(title=title, chapter=chapter))]
    bound: set[str] = set()
    for number, solution in solutions.items():
        if number in prompts:
            cell, original = prompts[number]
            prompt = cleared(cell)  # from its heading: not the section's text above it
            prompt.source = _from_heading(prompt.source, original, rf"^### Exercise {number}: ")
            cells.append(prompt)
        else:
            cells.append(nbformat.v4.new_markdown_cell(f"### Exercise {number}"))
        if note := _chapter_note(nb, solution, bound, chapter):
            cells.append(nbformat.v4.new_markdown_cell(note))
        bound |= _bound(ast.parse(solution.source))
        unfolded = cleared(solution)
        unfolded.metadata = {}
        cells.append(unfolded)
    out = nbformat.v4.new_notebook(metadata=copy.deepcopy(nb.metadata))
    out.cells = cells
    for cell in out.cells:
        cell.pop("id", None)
    out.nbformat_minor = 4
    return out


def _bound(tree: ast.AST) -> set[str]:
    """Every name the code binds anywhere: imports, definitions, assignments, arguments."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def _global_uses(source: str) -> set[str]:
    """The names ``source`` reads from the module's scope without binding them there, by Python's
    own scopes (``symtable``): a function's argument ``gold`` is its own, and the module-level
    ``gold`` that the same cell reads later is the chapter's."""
    top = symtable.symtable(source, "<solution>", "exec")
    bound = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    used: set[str] = set()
    tables = [top]
    while tables:
        table = tables.pop()
        used |= {
            s.get_name()
            for s in table.get_symbols()
            if s.is_referenced() and (table is top or s.is_global())
        }
        tables += table.get_children()
    return used - bound


def _loaded(tree: ast.AST) -> list[str]:
    seen = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
    return list(dict.fromkeys(seen))


def _chapter_note(
    nb: nbformat.NotebookNode, solution: nbformat.NotebookNode, bound: set[str], chapter: str
) -> str | None:
    """A note for a solution that uses names only the chapter defines: which, and after which
    section's cell to run it; None when the solution runs on its own (after those before it)."""
    tree = ast.parse(solution.source)
    free = _global_uses(solution.source)
    missing = [
        n for n in _loaded(tree) if n in free and n not in bound and not hasattr(builtins, n)
    ]
    if not missing:
        return None
    where, heading = {}, "the top"
    for cell in nb.cells[: nb.cells.index(solution)]:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if re.match(r"^#{2,3} ", line):
                    heading = line.lstrip("#").strip()
        elif not is_solution(cell):
            try:
                defined = _bound(ast.parse(cell.source))
            except SyntaxError:
                continue
            for name in missing:
                if name in defined:
                    where[name] = heading
    sections = {}
    for name in missing:
        sections.setdefault(where.get(name, "earlier sections"), []).append(f"`{name}`")
    places = "; ".join(
        f'{", ".join(names)} from the cell under "{heading}"' for heading, names in sections.items()
    )
    return (
        f"*This solution runs in the chapter's notebook (`{chapter}.ipynb`), after the cells "
        f"that define the chapter's names it uses: {places}.*"
    )


def write_edition(out: Path, root: Path = ROOT, table: dict[str, str] | None = None) -> list[Path]:
    """Write the edition of the book at ``root`` into ``out``; return the student notebooks written."""
    written = []
    (out / "book").mkdir(parents=True, exist_ok=True)
    (out / "solutions").mkdir(parents=True, exist_ok=True)
    for original in chapters():  # the English _toc.yml's parts (the Chinese one's are translated)
        path = root / original.relative_to(ROOT)
        nb = nbformat.read(path, as_version=4)
        english = nb if root == ROOT else nbformat.read(original, as_version=4)
        student = out / "book" / path.name
        nbformat.write(plain_notebook(student_notebook(nb, path.stem, table, english)), student)
        written.append(student)
        answers = solutions_notebook(nb, path.stem, english, table)
        if answers is not None:
            nbformat.write(plain_notebook(answers), out / "solutions" / path.name)
    if (ROOT / "results").is_dir():
        shutil.copytree(ROOT / "results", out / "results", dirs_exist_ok=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "student")
    args = parser.parse_args(argv)
    written = write_edition(args.out)
    print(
        f"student edition: {len(written)} chapters in {args.out / 'book'}, "
        f"their solutions in {args.out / 'solutions'}"
    )
    # the Chinese edition's, from its source tree (scripts/build_zh.py), written apart; nothing rendered
    import tempfile

    sys.path.insert(0, str(ROOT / "scripts"))
    import build_zh

    with tempfile.TemporaryDirectory() as tmp:
        missing = build_zh.write_sources(Path(tmp))
        zh = write_edition(args.out / "zh", Path(tmp), build_zh.book_table())
    print(f"学生版 (Chinese): {len(zh)} chapters in {args.out / 'zh' / 'book'}")
    if missing:
        print(f"  (untranslated messages stay English on: {sorted(missing)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
