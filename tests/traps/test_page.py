"""The appendix's Markdown: every trap and its numbers appear; a trap that does not hold is said
loudly; nothing is rendered as agreement when there is nothing to render."""

from __future__ import annotations

from pathlib import Path

from booktools import chapter_order
from demos.traps import Measured, Trap
from demos.traps.page import (
    chapter_title,
    holds,
    in_book_order,
    summary_markdown,
    trap_markdown,
)

BOOK = Path(__file__).resolve().parents[2] / "book"


def fake(title: str, right: float, wrong: float) -> tuple[Trap, Measured]:
    measured = Measured(right, wrong, 1e-4, "logits of something, fp32")
    trap = Trap("llama2", title, "y = wrong(x)", "y = right(x)", "everywhere", lambda: measured)
    return trap, measured


def test_a_trap_renders_its_lines_numbers_and_link():
    trap, measured = fake("A mistake", 0.0, 4.88)
    text = trap_markdown(trap, measured, BOOK)
    for piece in ("### A mistake", "y = wrong(x)", "y = right(x)", "4.9", "0.0001", "everywhere"):
        assert piece in text
    assert "[Llama 2](llama2.ipynb)" in text


def test_summary_gives_the_verdict_first():
    results = [fake("A", 0.0, 0.5), fake("B", 1e-7, 50.0)]
    text = summary_markdown(results, BOOK)
    assert text.startswith("**2 traps from 1 chapters")
    assert "5,000× to 500,000×" in text and "| B | 500,000× the tolerance |" in text


def test_summary_says_when_a_trap_does_not_hold():
    results = [
        fake("fine", 0.0, 1.0),
        fake("agrees anyway", 0.0, 1e-6),
        fake("right off", 1.0, 9.0),
    ]
    assert [holds(m) for _, m in results] == [True, False, False]
    text = summary_markdown(results, BOOK)
    assert text.startswith("**Not every trap holds") and "agrees anyway; right off" in text


def test_nothing_to_render_is_not_agreement():
    assert "No chapter" in summary_markdown([])


def test_chapter_title_falls_back_to_the_name():
    assert chapter_title("llama2", BOOK) == "Llama 2"
    assert chapter_title("no_such_chapter", BOOK) == "no_such_chapter"


def test_book_order_follows_the_table_of_contents():
    (a, _), (b, _) = fake("A", 0.0, 1.0), fake("B", 0.0, 1.0)
    zephyr = Trap("zephyr", "Z", "w", "r", "s", lambda: None)
    mamba = Trap("mamba", "M", "w", "r", "s", lambda: None)
    ordered = in_book_order([zephyr, mamba, a], chapter_order(BOOK.parent))
    assert [t.chapter for t in ordered] == ["llama2", "mamba", "zephyr"]
    assert chapter_order(BOOK) == []  # no _toc.yml there: the traps stay as given
    assert in_book_order([zephyr, b], chapter_order(BOOK)) == [zephyr, b]


def test_an_exact_match_shows_the_raw_error_not_a_ratio():
    """A tolerance of 1e-12 (or a count compared with 0.5) asks for an exact match: "10¹¹× the
    tolerance" would mean nothing, so the page says the raw error and that it must match."""
    tiny = Measured(0.0, 0.129235901455, 1e-12, "accuracy")
    counts = Measured(0.0, 3.0, 0.5, "token counts", exact=True)
    ratio = Measured(0.0, 0.5, 1e-4, "logits")
    results = [
        (Trap("mmlu", "Tiny", "w", "r", "s", lambda: tiny), tiny),
        (Trap("xgen", "Counts", "w", "r", "s", lambda: counts), counts),
        (Trap("llama2", "Ratio", "w", "r", "s", lambda: ratio), ratio),
    ]
    text = summary_markdown(results, BOOK)
    assert "| Tiny | differs by 0.13 (exact match required) |" in text
    assert "| Counts | differs by 3 (exact match required) |" in text
    assert "| Ratio | 5,000× the tolerance |" in text
    assert "5,000× to 5,000×" in text and "the 2 that must match exactly differ" in text
    assert "129,235,901,455" not in text and "6×" not in text
    assert "exact match" in trap_markdown(results[0][0], tiny, BOOK)
    assert "exact match" not in trap_markdown(results[2][0], ratio, BOOK)


def test_the_appendix_names_the_debugging_exercise_by_a_title_that_exists():
    """The appendix once said "Exercise 3 of Llama 2" after the exercises were renumbered: it names
    the exercise by its title, and that title must be an exercise heading of the chapter."""
    import json
    import re

    def markdown(name):
        cells = json.loads((BOOK / f"{name}.ipynb").read_text())["cells"]
        return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")

    appendix = markdown("nearly_right")
    assert not re.search(r"Exercise \d+ of", appendix)
    named = re.search(r"the exercise \*([^*]+)\*", appendix)
    assert named, "the appendix should name the debugging exercise by its title"
    assert re.search(rf"^### Exercise \d+: {re.escape(named[1])}$", markdown("llama2"), re.M)
