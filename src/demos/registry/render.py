"""The registry as the book shows it: a chapter's facts card and the rows of the overview table.

Both are Markdown for ``IPython.display.Markdown``; MyST renders the ``{cite}`` roles. A value that
was not checked against a source carries a mark (``†``, ``‡``, ... one per reason), explained under
the card.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from typing import Any

from demos.registry.load import families, family_sizes, load_registry
from demos.registry.schema import FIELDS, Field, ModelSize

MARKS = ("†", "‡", "§", "¶")  # the most frequent reason first; then "†5", "†6", ...


@lru_cache(maxsize=1)
def unverified_marks() -> dict[str, str]:
    """reason -> its mark, the same on every card (the most frequent reason gets ``†``)."""
    reasons = Counter(r for s in load_registry() for r in s.unverified.values())
    ranked = [reason for reason, _ in reasons.most_common()]
    return {r: MARKS[i] if i < len(MARKS) else f"{MARKS[0]}{i + 1}" for i, r in enumerate(ranked)}


NOT_APPLICABLE = "n/a (dense)"  # an MoE field of a dense model
NONE = "none"  # an MoE field the model does not have (no shared expert)


def card_fields(sizes: list[ModelSize]) -> list[Field]:
    """The rows of a card: every field, but a field ``only_for`` some models (MoE) only where a
    size has it."""
    return [f for f in FIELDS if not f.only_for or any(getattr(s, f.name) for s in sizes)]


def _show(size: ModelSize, name: str) -> str:
    value = getattr(size, name)
    if value is None:
        only_for = {f.name: f.only_for for f in FIELDS}[name]
        if only_for:
            return NONE if size.experts else NOT_APPLICABLE
        return "unknown"
    if name == "checkpoint":
        return f"[`{value}`](https://huggingface.co/{value})"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _cite(key: str | None) -> str:
    return f" {{cite}}`{key}`" if key else ""


def verification_counts(sizes: list[ModelSize] | None = None) -> tuple[int, int]:
    """(verified, unverified) non-null values of ``sizes`` (default: the whole registry)."""
    sizes = list(load_registry()) if sizes is None else sizes
    verified = sum(len(s.verified) for s in sizes)
    return verified, sum(len(s.unverified) for s in sizes)


def _footnotes(sizes: list[ModelSize]) -> list[str]:
    """The card's notes (nulls and caveats), then what each unverified mark means."""
    labels = {f.name: f.label for f in FIELDS} | {"_all": "All fields"}
    by_note: dict[tuple[str, str], list[str]] = {}
    for s in sizes:
        for k, v in s.notes.items():
            if k in labels:  # keys starting with "_" other than "_all" are for the tests
                by_note.setdefault((k, v), []).append(s.name)
    lines = []
    for (k, v), names in by_note.items():
        where = "" if len(names) == len(sizes) else ", ".join(names) + ", "
        lines.append(f"*{where}{labels[k].lower() if where else labels[k]}: {v}*")
    verified, unverified = verification_counts(sizes)
    used = {r for s in sizes for r in s.unverified.values()}
    legend = "; ".join(f"{m} {r}" for r, m in unverified_marks().items() if r in used)
    if used:
        lines.append(
            f"*Unverified ({unverified} of {verified + unverified} values): the cited source says "
            f"where to check a marked value, but it has not been checked there yet. {legend}.*"
        )
    return lines


# The article column of the book's HTML at 1280 px, and what a table cell needs per character of
# its longest unbreakable word (a code span does not wrap; a Markdown link shows only its text): a
# card wider than this is split into several tables (measured on the built pages: a column of
# `EleutherAI/pythia-70m` is 212 px wide, the label column 119 px).
CARD_WIDTH_PX, LABEL_PX, SOURCE_PX, PX_PER_CHAR, CELL_PADDING_PX = 960, 125, 90, 9, 24


def _min_width_px(cell: str) -> int:
    """The narrowest a table cell can be: its longest word, in pixels (an estimate)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", cell)  # a link shows only its text
    words = [w.strip("`") for w in re.findall(r"`[^`]*`|\S+", text)]
    return max((len(w) for w in words), default=0) * PX_PER_CHAR + CELL_PADDING_PX


def _groups(columns: list[list[str]]) -> list[range]:
    """Consecutive column indices, as many per table as fit in CARD_WIDTH_PX (at least one)."""
    groups, start, width = [], 0, LABEL_PX + SOURCE_PX
    for i, cells in enumerate(columns):
        need = max(_min_width_px(c) for c in cells)
        if i > start and width + need > CARD_WIDTH_PX:
            groups.append(range(start, i))
            start, width = i, LABEL_PX + SOURCE_PX
        width += need
    return [*groups, range(start, len(columns))]


def facts_card(family: str) -> str:
    """Markdown tables with one column per released size and a last column, "source", for each row.

    One table when the sizes fit the page's width; else the sizes, in order, are split over as many
    tables (each with every row and its own source column) as keep each table within the page at
    1280 px (a family of 8 sizes gets 3 tables), so no table is clipped or scrolls.
    A row's source is given once, as a number: "(1)" when all sizes of the table share it, else one
    number per size, left to right as the columns ("(3) (3) (4)", "–" for an unknown value). The
    numbers are cited under the tables ("Sources: (1) {cite}`key`; ..."), so that a long author-year
    citation does not widen every row.
    An unverified value is followed by a mark, and the reasons are listed under the tables too.
    The mixture-of-experts rows appear only on the card of a family with an MoE size, where a
    dense size shows "n/a (dense)" (:func:`card_fields`). ``ValueError`` for an unknown family.
    """
    sizes = family_sizes(family)
    fields = card_fields(sizes)  # an MoE row only on a card with an MoE size
    marks = unverified_marks()
    numbers: dict[str, int] = {}  # citation key -> its number, in order of first use
    columns: list[list[str]] = []  # per size, its cells in the order of fields
    keys: list[list[str | None]] = []  # per size, each cell's citation key
    for s in sizes:
        cells, cited_keys = [], []
        for spec in fields:
            text = _show(s, spec.name)
            reason = s.unverified.get(spec.name)
            if reason:
                text += " " + marks[reason]
            cells.append(text)
            cited = getattr(s, spec.name) is not None and s.cite.get(spec.name)
            cited_keys.append(s.cite[spec.name] if cited else None)
        columns.append(cells)
        keys.append(cited_keys)
    for f in range(len(fields)):  # number the sources row by row, left to right
        for k in keys:
            if k[f]:
                numbers.setdefault(k[f], len(numbers) + 1)
    tables = []
    for group in _groups(columns):
        header = "| | " + " | ".join(sizes[i].name for i in group) + " | source |"
        rows = [header, "|---" * (len(group) + 2) + "|"]
        for f, spec in enumerate(fields):
            row_keys = [keys[i][f] for i in group]
            distinct = {k for k in row_keys if k}
            if len(distinct) == 1:
                source = f"({numbers[distinct.pop()]})"
            else:
                source = " ".join(f"({numbers[k]})" if k else "–" for k in row_keys)
                source = source if distinct else ""
            cells = " | ".join(columns[i][f] for i in group)
            rows.append(f"| {spec.label} | {cells} | {source} |")
        tables.append("\n".join(rows))
    sources = "; ".join(f"({n}){_cite(key)}" for key, n in numbers.items())
    notes = [f"*Sources:* {sources}."] * bool(numbers) + _footnotes(sizes)
    card = "\n\n".join(tables)
    return card + ("\n\n" + "\n".join(f"- {n}" for n in notes) if notes else "")


def overview_rows() -> list[dict[str, Any]]:
    """One row per family: organisation, release months, published sizes, checkpoint ids, and
    how many of its values are verified and unverified."""
    rows = []
    for name in families():
        sizes = family_sizes(name)
        months = sorted({s.release for s in sizes if s.release})
        verified, unverified = verification_counts(sizes)
        rows.append(
            {
                "family": name,
                "organisation": sizes[0].organisation or "unknown",
                "released": " / ".join(months) if months else "unknown",
                "sizes": " / ".join(s.parameters or "undisclosed" for s in sizes),
                "checkpoints": [s.checkpoint for s in sizes if s.checkpoint],
                "verified": verified,
                "unverified": unverified,
            }
        )
    return rows
