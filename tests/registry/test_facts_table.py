"""demos.registry.facts_table: a chapter's facts as a Markdown table that renders as written."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from demos.registry import facts_table


def _cells(markdown: str) -> list[list[str]]:
    """The rendered table's rows of cell texts, as MyST's parser (markdown-it) reads the Markdown."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    rows, row = [], None
    for i, t in enumerate(tokens):
        if t.type == "tr_open":
            row = []
        elif t.type in ("td_open", "th_open"):
            row.append(tokens[i + 1].content)
        elif t.type == "tr_close":
            rows.append(row)
    return rows


def test_a_pipe_inside_a_cell_stays_in_its_cell():
    """Orca 2's vocabulary row names ``<|im_start|>``: unescaped, its pipes split the row."""
    table = facts_table(
        ("", "Orca 2"), [("Vocabulary", "plus `<|im_start|>`, 32,003")], "Orca-2-7B"
    )
    rows = _cells(table)
    assert rows == [["", "Orca 2"], ["Vocabulary", "plus `<|im_start|>`, 32,003"]]
    html = MarkdownIt("commonmark").enable("table").render(table)
    assert "<code>&lt;|im_start|&gt;</code>" in html


def test_a_row_of_another_length_is_refused():
    with pytest.raises(ValueError, match="has 3 cells; the header has 2"):
        facts_table(("", "A"), [("x", "1", "2")], "Orca-2-7B")
