"""MyST in a markdown cell as plain Markdown, for the notebooks learners open outside the book.

JupyterLab without ``jupyterlab-myst``, and Colab, render CommonMark only: a ``{cite}`key``` role
shows as literal text and a ``{admonition}`` directive as a code block. The student edition
(scripts/student_edition.py) and the learners' download (scripts/notebook_download.py) pass every
markdown cell through :func:`plain_markdown`:

* ``{cite}`a,b``` (or ``{cite:p}``) becomes ``([A et al., 2023a](url); [B and C, 2024](url))``, the
  author–year label sphinxcontrib-bibtex prints in the book (``author_year``: one author "Last",
  two "A and B", more "A et al."; the year as references.bib writes it, its letter included), each
  linked to the entry's ``url``; ``{cite:t}`a``` becomes ``[A et al. (2023a)](url)``.
* a fenced ``{admonition} Title`` directive (its ``:class:`` and other option lines dropped)
  becomes a blockquote: ``> **Title**``, a ``>`` line, then the body with each line prefixed.

Everything else is left as it is: math, code spans, fenced code, links. Code spans and fenced code
blocks are not searched for roles.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path

import pybtex.database
from pybtex.richtext import Text

from demos.registry import citations

ROOT = Path(__file__).resolve().parents[1]
BIB = ROOT / "references.bib"
TABLE = ROOT / "src" / "demos" / "registry" / "citations.json"

_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_ADMONITION = re.compile(r"^\{admonition\}(?P<title>.*)$")
_OPTION = re.compile(r"^:[\w-]+:")


@functools.cache
def read_bib(path: Path = BIB) -> Mapping[str, object]:
    """The entries of ``path`` (references.bib), by key, as pybtex reads them."""
    return pybtex.database.parse_file(str(path)).entries


def _latex(text: str) -> str:
    return Text.from_latex(text).render_as("text")


def label(entry) -> tuple[str, str]:
    """(who, year) of a pybtex entry, as the book's ``author_year`` style prints them."""
    persons = list(entry.persons.get("author", []))
    others = bool(persons) and str(persons[-1]) == "others"
    names = [
        _latex(" ".join(p.prelast_names + p.last_names)) for p in persons if str(p) != "others"
    ]
    if not names:
        raise ValueError(f"references.bib entry {entry.key!r} has no author: a label needs one")
    if len(names) == 1 and not others:
        who = names[0]
    elif len(names) == 2 and not others:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return who, _latex(entry.fields.get("year", "n.d."))


class BibTable(Mapping):
    """references.bib's entries as :mod:`demos.registry.citations` reads them: ``{key: (who,
    year, url or None)}``, each label made by :func:`label` when it is asked for."""

    def __init__(self, bib: Mapping[str, object]) -> None:
        self.bib = bib

    def __getitem__(self, key: str) -> tuple[str, str, str | None]:
        entry = self.bib[key]
        return (*label(entry), entry.fields.get("url"))

    def __iter__(self):
        return iter(self.bib)

    def __len__(self) -> int:
        return len(self.bib)


def citation(keys: str, bib: Mapping[str, object], kind: str | None = None) -> str:
    """The plain-Markdown form of ``{cite}`keys``` (``kind``: ``None``/``"p"`` or ``"t"``)."""
    return citations.citation(keys, BibTable(bib), kind)


def _inline(text: str, bib: Mapping[str, object]) -> str:
    return citations.plain_citations(text, BibTable(bib))


def _closes(line: str, fence: str) -> bool:
    """Whether ``line`` closes a fence opened by ``fence`` (CommonMark: the same character, at
    least as many, nothing else but spaces)."""
    stripped = line.strip()
    return (
        len(stripped) >= len(fence) and set(stripped) == {fence[0]} and not line.startswith("    ")
    )


def _convert(lines: list[str], bib: Mapping[str, object]) -> list[str]:
    out: list[str] = []
    prose: list[str] = []

    def flush() -> None:
        if prose:
            out.extend(_inline("\n".join(prose), bib).split("\n"))
            prose.clear()

    i = 0
    while i < len(lines):
        opened = _FENCE.match(lines[i])
        if not opened:
            prose.append(lines[i])
            i += 1
            continue
        flush()
        fence, info = opened.group("fence"), opened.group("info").strip()
        end = next((j for j in range(i + 1, len(lines)) if _closes(lines[j], fence)), None)
        if end is None:
            if _ADMONITION.match(info):
                raise ValueError(f"the admonition opened by {lines[i]!r} has no closing {fence}")
            out.extend(lines[i:])  # an unclosed code fence runs to the end (CommonMark)
            break
        admonition = _ADMONITION.match(info)
        if admonition is None:
            out.extend(lines[i : end + 1])  # fenced code: as it is
        else:
            title = admonition.group("title").strip()
            if not title:
                raise ValueError(f"{lines[i]!r}: an admonition needs a title (MyST's rule)")
            body = lines[i + 1 : end]
            while body and _OPTION.match(body[0]):
                body = body[1:]
            while body and not body[0].strip():
                body = body[1:]
            quoted = [f"**{_inline(title, bib)}**", ""] + _convert(body, bib)
            out.extend(f"> {line}" if line.strip() else ">" for line in quoted)
        i = end + 1
    flush()
    return out


def plain_markdown(text: str, bib: Mapping[str, object] | None = None) -> str:
    """``text`` (a markdown cell's source) with its citations and admonitions as plain Markdown;
    ``bib``: the entries by key (default: the book's references.bib). Raises ValueError for a key
    not in ``bib``, an admonition without a title or without its closing fence."""
    bib = read_bib() if bib is None else bib
    return "\n".join(_convert(text.split("\n"), bib))


def plain_notebook(nb, bib: Mapping[str, object] | None = None):
    """A copy of the notebook ``nb`` with every markdown cell through :func:`plain_markdown`; code
    cells untouched."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if cell.cell_type == "markdown":
            cell.source = plain_markdown(cell.source, bib)
    return out


def citation_table(bib: Mapping[str, object] | None = None) -> dict[str, list]:
    """``{key: [who, year, url or None]}`` for every entry of ``bib`` (default: references.bib),
    sorted by key: what ``demos/registry/citations.json`` holds for the package."""
    table = BibTable(read_bib() if bib is None else bib)
    return {key: list(table[key]) for key in sorted(table)}


def citation_json(bib: Mapping[str, object] | None = None) -> str:
    """The text of ``citations.json`` for ``bib``: one entry per line, so a diff shows the key."""
    table = citation_table(bib)
    lines = [f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in table.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


if __name__ == "__main__":  # python book/plain_markdown.py: rewrite the package's citation table
    TABLE.write_text(citation_json(), encoding="utf-8")
    print(f"wrote {TABLE.relative_to(ROOT)}: {len(read_bib())} entries")
