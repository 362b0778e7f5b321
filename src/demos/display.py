"""How a chapter shows things: a function's source, a results file a script wrote, a page's budget.

Every chapter shows code the same way, and the code itself lives in one place (the module it comes
from) rather than being copied into the notebook. ``demos.book`` re-exports these names, which the
chapters written before this module import from there.
"""

from __future__ import annotations

import inspect
import textwrap
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from demos.listing import FoldedListing, first_paragraph_docstring, fold_checks, strip_docstring

__all__ = [
    "BUDGET_MIME",
    "FONT_KEY",
    "missing_file_note",
    "record_figure_text_sizes",
    "report_budget",
    "repository_path",
    "show_recorded",
    "show_source",
]


def show_source(obj: Callable[..., Any] | type, docstring: bool = False, full: bool = False) -> Any:
    """Display the source of a function, method or class from ``demos`` as a highlighted code block.

    The listing shows the idea: the input checks a function starts with are folded into one comment
    naming what they check (the rule: :func:`demos.listing.fold_checks`), and one line under the listing gives the
    file and line range of the full source and of what was folded. The docstring is left out unless
    ``docstring=True`` (the chapter's prose explains what it says), and then cut to its first
    paragraph. ``full=True`` shows every line. Returns an IPython ``Markdown`` object (rendered by
    Jupyter, Colab and Jupyter Book alike).
    """
    from IPython.display import Markdown

    lines, first_line = inspect.getsourcelines(obj)
    source = textwrap.dedent("".join(lines))
    if full:
        return Markdown(f"```python\n{source.rstrip()}\n```")
    listing = fold_checks(source, first_line)
    source, shortened = listing.source, False
    if docstring:
        source, shortened = first_paragraph_docstring(source)
    else:
        source = strip_docstring(source)
    text = f"```python\n{source.rstrip()}\n```"
    if listing.checks or shortened:
        last_line = first_line + len(lines) - 1
        text += "\n\n" + _full_source_note(obj, (first_line, last_line), listing, shortened)
    return Markdown(text)


def _full_source_note(
    obj: Callable[..., Any] | type,
    whole: tuple[int, int],
    listing: FoldedListing,
    shortened: bool,
) -> str:
    """The one line under a folded listing: where the full source is, and what the listing left out.

    For example: Full source: ``src/demos/layers/rope.py``, lines 115–160; folded above: the checks on
    lines 132–137 and 140–154 (``check_floating``, ``check_same_device``, 4 × ``if … raise``).
    """
    note = f"Full source: `{repository_path(obj)}`, lines {whole[0]}–{whole[1]}"
    if listing.checks:
        spans = [f"{a}–{b}" if b > a else f"{a}" for a, b in listing.lines]
        spans = ", ".join(spans[:-1]) + " and " + spans[-1] if len(spans) > 1 else spans[0]
        counts = Counter(listing.checks)
        what = [f"{n} × `{label}`" if n > 1 else f"`{label}`" for label, n in counts.items()]
        note += f"; folded above: the checks on lines {spans} ({', '.join(what)})"
    if shortened:
        note += "; the docstring is cut to its first paragraph"
    return note + "."


def repository_path(obj: Callable[..., Any] | type) -> str:
    """Where ``obj``'s source lives in the book's repository: ``src/demos/layers/rope.py``.

    Read from the installed package, so it is the same in a clone, an installed wheel and Colab; a file
    outside ``demos`` is named relative to the working directory when it is under it.
    """
    path = Path(inspect.getsourcefile(obj) or "").resolve()
    package = Path(__file__).resolve().parent  # demos/
    if path.is_relative_to(package):
        return f"src/demos/{path.relative_to(package).as_posix()}"
    if path.is_relative_to(Path.cwd()):
        return path.relative_to(Path.cwd()).as_posix()
    return path.name


def show_recorded(path: str | Path, command: str) -> Any:
    """Show a results file a script wrote (a benchmark, a long run) as a text block, with its command.

    Chapters quote such results this way rather than retyping them, so the page always shows what the
    committed file says; rerun ``command`` to refresh the file.
    """
    from IPython.display import Markdown

    path = Path(path)
    if not path.exists():  # e.g. in Colab: the notebook runs without a clone of the repository
        return Markdown(missing_file_note(path, command))
    text = path.read_text().rstrip()
    return Markdown(f"Recorded with `{command}` (file `{path.name}`):\n\n```text\n{text}\n```")


def missing_file_note(path: str | Path, command: str) -> str:
    """What a chapter says instead of failing when a committed results file is not next to it (Colab)."""
    return (
        f"*The file `{Path(path).name}` is not here: this notebook is running outside a clone of the "
        f"book's repository (in Colab, for example). The book's web page shows its contents; to measure "
        f"them yourself, clone the repository and run `{command}`.*"
    )


BUDGET_MIME = "application/vnd.field-guide.budget+json"  # no renderer shows it: the build reads it


def report_budget() -> None:
    """Record this notebook's CPU time and peak memory so far, measured by its own kernel process.

    Every notebook ends with this cell (scripts/sync_setup_cells.py writes it). The numbers are build
    data, not reading: they are published under the MIME type ``BUDGET_MIME`` alone, which no page
    renderer shows (Jupyter Book, JupyterLab and Colab display nothing), and stay in the executed
    notebook, where ``scripts/build_book.py`` prints them in the build log and
    ``tests/book/test_notebooks.py`` holds each notebook to its ceiling.

    It is build tooling, yet it stays in the installed package: every page ends with this cell, and
    the page must run in Colab, where only ``demos`` is installed. Taking it out means measuring
    each kernel from the build instead (its process's CPU time and peak memory, read from outside).
    """
    import resource
    import time

    from IPython.display import display

    cpu_s = time.process_time()  # user + system CPU seconds of this kernel, all threads
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    display({BUDGET_MIME: {"cpu_s": round(cpu_s, 2), "peak_mib": round(peak_mib, 1)}}, raw=True)


FONT_KEY = "field-guide:smallest-font-pt"  # PNG text chunk: the smallest text the figure draws


def _smallest_drawn_font(figure: Any) -> float | None:
    """The smallest font size, in points, of the text ``figure`` draws (None: it draws no text).

    Counted while the figure draws, so that only text a reader sees counts: a hidden artist, an empty
    label or a tick outside the axes' limits is skipped by matplotlib itself.
    """
    global _DRAWN
    _DRAWN = []
    try:
        figure.draw_without_rendering()
        return min(_DRAWN, default=None)
    finally:
        _DRAWN = None


_DRAWN: list[float] | None = None  # font sizes drawn during _smallest_drawn_font, else None


def record_figure_text_sizes() -> None:
    """Write into every PNG matplotlib saves the smallest font size, in points, its text is drawn at.

    Jupyter shows a figure by saving it as a PNG (``IPython.core.pylabtools.print_figure``, through
    ``FigureCanvasBase.print_figure``); the size goes into the PNG's text chunk ``FONT_KEY``, beside
    the dots per inch (pHYs), so that the book's tooling can tell how large that text is on a screen
    (``scripts/figure_text_sizes.py``: points x dpi / 72 x displayed width / natural width). Called
    by ``demos/__init__.py`` when the package is imported in a Jupyter kernel; calling it again does
    nothing. The image itself is unchanged.
    """
    from matplotlib.backend_bases import FigureCanvasBase
    from matplotlib.text import Text

    if getattr(FigureCanvasBase.print_figure, "_records_font", False):
        return
    text_draw, print_figure = Text.draw, FigureCanvasBase.print_figure

    def draw(self: Text, renderer: Any) -> Any:
        if _DRAWN is not None and self.get_visible() and self.get_text().strip():
            _DRAWN.append(float(self.get_fontsize()))
        return text_draw(self, renderer)

    def recording_print_figure(self: FigureCanvasBase, filename: Any, *args: Any, **kwargs: Any):
        fmt = kwargs.get("format") or (
            Path(filename).suffix.lstrip(".") if isinstance(filename, (str, Path)) else None
        )
        if (fmt or "png").lower() == "png":
            smallest = _smallest_drawn_font(self.figure)
            if smallest is not None:
                kwargs["metadata"] = {**(kwargs.get("metadata") or {}), FONT_KEY: f"{smallest:g}"}
        return print_figure(self, filename, *args, **kwargs)

    recording_print_figure._records_font = True  # type: ignore[attr-defined]
    Text.draw = draw  # type: ignore[method-assign]
    FigureCanvasBase.print_figure = recording_print_figure  # type: ignore[method-assign]
