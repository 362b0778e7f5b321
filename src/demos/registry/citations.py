"""Citations in the Markdown a cell displays, as a reader outside the book sees them.

The book renders a cell's Markdown output with MyST, so a facts card's ``{cite}`key``` becomes a
link to the bibliography. JupyterLab and Colab render CommonMark only, where the same role shows as
literal text. In a Jupyter kernel that the book's build did not start, :func:`use_plain_citations`
makes every ``IPython.display.Markdown`` show its citations as author–year links instead, the form
``book/plain_markdown.py`` gives the markdown cells of the notebooks learners download:
``{cite}`a,b``` → ``([A et al., 2023a](url); [B and C, 2024](url))`` and ``{cite:t}`a``` →
``[A et al. (2023a)](url)``.

The labels come from ``citations.json`` beside this module: ``{key: [who, year, url]}`` for every
entry of references.bib, written by ``python book/plain_markdown.py`` (the package ships no .bib
and no BibTeX parser); ``tests/book/test_plain_markdown.py`` checks that the file matches the .bib.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

# Set by scripts/build_book.py for the kernels it starts: the book renders MyST itself.
BOOK_BUILD = "FIELD_GUIDE_BOOK_BUILD"

# a role or a code span, whichever starts first (a code span's text is not searched for roles)
_INLINE = re.compile(
    r"\{cite(?::(?P<kind>[a-z]+))?\}`(?P<keys>[^`]*)`|(?P<tick>`+).*?(?P=tick)", re.S
)

Table = Mapping[str, tuple[str, str, str | None]]


@cache
def citation_table() -> dict[str, tuple[str, str, str | None]]:
    """``{key: (who, year, url or None)}`` for every entry of references.bib, from the package's
    ``registry/citations.json``."""
    text = (resources.files("demos.registry") / "citations.json").read_text(encoding="utf-8")
    return {key: tuple(value) for key, value in json.loads(text).items()}


def citation(keys: str, table: Table, kind: str | None = None) -> str:
    """The plain-Markdown form of ``{cite}`keys``` (``kind``: ``None`` or ``"p"``, or ``"t"``).

    ``keys``: comma-separated keys of ``table``. Raises ``ValueError`` for another ``kind`` or a
    key not in ``table``."""
    if kind not in (None, "p", "t"):
        raise ValueError(
            f"{{cite:{kind}}} is not supported: use {{cite}}, {{cite:p}} or {{cite:t}}"
        )
    parts = []
    for key in (k.strip() for k in keys.split(",")):
        if key not in table:
            raise ValueError(f"{{cite}} key {key!r} is not in references.bib")
        who, year, url = table[key]
        text = f"{who} ({year})" if kind == "t" else f"{who}, {year}"
        parts.append(f"[{text}]({url})" if url else text)
    if kind == "t":
        return "; ".join(parts)
    return "(" + "; ".join(parts) + ")"


def plain_citations(text: str, table: Table | None = None) -> str:
    """``text`` with every ``{cite}`` role outside code spans replaced by :func:`citation`;
    ``table`` defaults to :func:`citation_table`."""
    table = citation_table() if table is None else table

    def replace(match: re.Match) -> str:
        if match.group("tick"):
            return match.group(0)  # a code span: as it is
        return citation(match.group("keys"), table, match.group("kind"))

    return _INLINE.sub(replace, text)


def use_plain_citations(shell: Any = None) -> bool:
    """Make ``shell`` (default: the running IPython) show every ``IPython.display.Markdown`` with
    :func:`plain_citations`, unless the book's build started this kernel (``BOOK_BUILD`` set).
    Returns whether it did; ``False`` also outside IPython."""
    if os.environ.get(BOOK_BUILD):
        return False
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
        if shell is None:
            return False
    from IPython.display import Markdown

    def markdown(obj: Markdown) -> str:
        return plain_citations(obj.data or "")

    shell.display_formatter.formatters["text/markdown"].for_type(Markdown, markdown)
    return True
