"""The "Nearly right" appendix, rendered from the traps: measure each one, then write Markdown.

Kept out of the notebook so that the page holds no retyped number and the rendering is tested: the
page calls :func:`measure_all` and prints :func:`summary_markdown` and :func:`trap_markdown`.
"""

from __future__ import annotations

import json
from pathlib import Path

from demos.traps import Measured, Trap


def measure_all(traps: list[Trap]) -> list[tuple[Trap, Measured]]:
    """Run every trap's ``measure()`` (each seeded inside), in the given order."""
    return [(trap, trap.measure()) for trap in traps]


def in_book_order(traps: list[Trap], chapters: list[str]) -> list[Trap]:
    """``traps`` sorted by their chapter's place in ``chapters`` (the book's order, e.g.
    ``booktools.chapter_order``: the build's one reading of ``_toc.yml``); a chapter not listed goes
    last, and with no list the traps stay as given."""
    return sorted(
        traps, key=lambda t: chapters.index(t.chapter) if t.chapter in chapters else len(chapters)
    )


def holds(measured: Measured) -> bool:
    """The right version meets the tolerance and the wrong one exceeds it."""
    return measured.right_error <= measured.tolerance < measured.wrong_error


def chapter_title(chapter: str, book: Path | None = None) -> str:
    """The first ``# heading`` of ``book/<chapter>.ipynb``, or the file name if it is not there."""
    path = (Path("book") if book is None else book) / f"{chapter}.ipynb"
    if path.is_file():
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                for line in "".join(cell["source"]).splitlines():
                    if line.startswith("# "):
                        return line[2:].strip()
    return chapter


def _number(x: float) -> str:
    return format(x, ".2g")


def _times(ratio: float) -> str:
    """``5176.3 -> "5,176×"``: how many tolerances the wrong version misses by."""
    return f"{ratio:,.0f}×" if ratio >= 10 else f"{ratio:.2g}×"


def _past(measured: Measured) -> str:
    """How far the wrong version misses: a multiple of the tolerance, or, for an exact-match
    comparison (where a ratio to a rounding-sized bound would read like "10¹¹×" and mean nothing),
    the raw error."""
    if measured.exact_match:
        return f"differs by {_number(measured.wrong_error)} (exact match required)"
    return f"{_times(measured.wrong_error / measured.tolerance)} the tolerance"


def summary_markdown(results: list[tuple[Trap, Measured]], book: Path | None = None) -> str:
    """A verdict line, then one row per trap: chapter, trap, and how far past the tolerance it goes."""
    if not results:
        return "*No chapter has registered a trap yet.*"
    broken = [trap.title for trap, m in results if not holds(m)]
    chapters = {trap.chapter for trap, _ in results}
    if broken:
        verdict = "**Not every trap holds on this build:** " + "; ".join(broken) + "."
    else:
        ratios = [m.wrong_error / m.tolerance for _, m in results if not m.exact_match]
        exact = len(results) - len(ratios)
        parts = []
        if ratios:
            parts.append(
                f"every wrong one with a tolerance misses it by {_times(min(ratios))} to "
                f"{_times(max(ratios))} the tolerance"
            )
        if exact:
            parts.append(f"the {exact} that must match exactly differ")
        verdict = (
            f"**{len(results)} traps from {len(chapters)} chapters, measured as this page ran.** "
            "Every right version agrees with the reference; " + "; ".join(parts) + "."
        )
    rows = ["| Chapter | Trap | wrong version |", "|---|---|---|"]
    for trap, m in results:
        link = f"[{chapter_title(trap.chapter, book)}]({trap.chapter}.ipynb)"
        rows.append(f"| {link} | {trap.title} | {_past(m)} |")
    return verdict + "\n\n" + "\n".join(rows)


def trap_markdown(trap: Trap, measured: Measured, book: Path | None = None) -> str:
    """One trap: where it is explained, the wrong and the right line, the two errors, where it shows."""
    link = f"[{chapter_title(trap.chapter, book)}]({trap.chapter}.ipynb)"
    code = f"```python\n# wrong\n{trap.wrong}\n# right\n{trap.right}\n```"
    table = "\n".join(
        [
            "| against the reference | max abs error |",
            "|---|---|",
            f"| right version | {_number(measured.right_error)} |",
            f"| **wrong version** | **{_number(measured.wrong_error)}** |",
            (
                f"| tolerance | {_number(measured.tolerance)} (exact match, up to float storage) |"
                if measured.exact_match
                else f"| tolerance | {_number(measured.tolerance)} |"
            ),
        ]
    )
    return (
        f"### {trap.title}\n\nFrom {link}.\n\n{code}\n\n{table}\n\n"
        f"*Compared:* {measured.quantity}.\n\n*Where it shows:* {trap.shows}."
    )
