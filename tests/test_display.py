"""What a page shows of a function: the idea, with its checks folded and one line to the full source;
checked on ``apply_rope`` and on every ``show_source`` call of the book."""

from __future__ import annotations

import ast
import inspect
import json
import re
from pathlib import Path

import pytest

from demos.display import repository_path, show_source
from demos.layers.rope import apply_rope
from demos.listing import fold_checks

ROOT = Path(__file__).resolve().parents[1]
NOTE = re.compile(
    r"Full source: `(?P<path>[^`]+)`, lines (?P<first>\d+)–(?P<last>\d+)"
    r"(; folded above: the checks on lines (?P<spans>[\d–, and]+) \((?P<what>[^)]+)\))?"
)


def _code(markdown: str) -> str:
    """The Python inside a listing's code block."""
    match = re.fullmatch(r"```python\n(.*)\n```(\n\n.*)?", markdown, re.DOTALL)
    assert match, markdown
    return match.group(1)


def _spans(text: str) -> list[tuple[int, int]]:
    spans = re.split(r", | and ", text)
    return [tuple(int(n) for n in (s.split("–") * 2)[:2]) for s in spans]


def test_apply_rope_shows_the_rotation_and_points_to_its_checks():
    shown = show_source(apply_rope).data
    code = _code(shown)
    ast.parse(code)
    assert "    # checks of x, cos, sin (folded; see the full source)" in code
    assert "raise" not in code and "check_floating" not in code
    assert code.rstrip().endswith("return x * cos + rotate_half(x) * sin")
    assert len(code.splitlines()) <= 12  # the idea: signature, comment, 8 lines of work

    note = NOTE.search(shown)
    assert note and note["path"] == "src/demos/layers/rope.py"
    assert note["what"] == "`check_floating`, `check_same_device`, 4 × `if … raise`"
    file_lines = (ROOT / note["path"]).read_text().splitlines()
    first, last = int(note["first"]), int(note["last"])
    assert file_lines[first - 1].startswith("def apply_rope(")
    assert file_lines[last - 1].strip() == "return x * cos + rotate_half(x) * sin"
    folded = [file_lines[n - 1].strip() for a, b in _spans(note["spans"]) for n in range(a, b + 1)]
    assert folded[0].startswith("check_floating(x=x, cos=cos, sin=sin)")
    assert sum(line.startswith("raise ValueError(") for line in folded) == 4
    assert folded[-1] == ")"  # the last check ends where the folded lines end
    kept = [file_lines[n - 1].strip() for n in range(first, last + 1)]
    assert "t, d = x.shape[-2:]" in kept and "t, d = x.shape[-2:]" not in folded


def test_full_shows_every_line():
    assert _code(show_source(apply_rope, full=True).data) == inspect.getsource(apply_rope).rstrip()


def _book_listings() -> list[tuple[str, str, object, dict]]:
    """Every ``show_source(...)`` call in the book's notebooks, with the object it shows, resolved
    with the imports of the notebook's code cells."""
    found = []
    for notebook in sorted((ROOT / "book").glob("*.ipynb")):
        namespace: dict = {}
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            try:
                tree = ast.parse("".join(cell["source"]))
            except SyntaxError:  # IPython magics: the setup cell
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("demos"):
                    exec(compile(ast.Module([node], []), notebook.name, "exec"), namespace)
                is_call = (
                    isinstance(node, ast.Call) and getattr(node.func, "id", "") == "show_source"
                )
                if is_call:
                    kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
                    expression = ast.unparse(node.args[0])
                    found.append((notebook.stem, expression, eval(expression, namespace), kwargs))
    return found


BOOK_LISTINGS = _book_listings()


def test_the_book_shows_listings():
    assert len(BOOK_LISTINGS) > 100
    shown = {(page, expression) for page, expression, _, _ in BOOK_LISTINGS}
    assert {
        ("llama2", "apply_rope"),
        ("zephyr", "dpo_loss"),
        ("llama2", "attention_weights"),
    } <= shown


@pytest.mark.parametrize(
    "page, expression, obj, kwargs",
    BOOK_LISTINGS,
    ids=[f"{page}:{expression}" for page, expression, _, _ in BOOK_LISTINGS],
)
def test_every_listing_of_the_book_is_python_with_its_checks_folded(page, expression, obj, kwargs):
    shown = show_source(obj, **kwargs).data
    code = _code(shown)
    ast.parse(code)
    assert fold_checks(code).checks == ()  # nothing left that the rule would fold
    note = NOTE.search(shown)
    comments = code.count("(folded; see the full source)")
    if not comments:
        assert note is None or "docstring is cut" in shown
        return
    assert note and note["path"] == repository_path(obj) and (ROOT / note["path"]).is_file()
    file_lines = (ROOT / note["path"]).read_text().splitlines()
    spans = _spans(note["spans"])
    folded = "\n".join(file_lines[n - 1] for a, b in spans for n in range(a, b + 1))
    for label in re.findall(r"`([^`]+)`", note["what"]):  # each named check is on the folded lines
        if "…" not in label:
            assert f"{label}(" in folded, (label, folded)
    assert ("raise " in folded) == ("raise`" in note["what"])
    # every line the listing keeps is a line of the function outside the folded lines
    folded_numbers = {n for a, b in spans for n in range(a, b + 1)}
    outside = {
        file_lines[n - 1].strip()
        for n in range(int(note["first"]), int(note["last"]) + 1)
        if n not in folded_numbers
    }
    kept = {
        line.strip() for line in code.splitlines() if "(folded; see the full source)" not in line
    }
    assert kept <= outside, kept - outside
