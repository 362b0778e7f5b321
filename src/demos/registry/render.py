"""The registry as the book shows it: a chapter's facts card, the overview table and single values.

Every function here returns Markdown for ``IPython.display.Markdown`` (MyST renders the ``{cite}``
roles). A value that has not been checked against a primary source carries a mark (``†``, ``‡``, ...,
one per reason) wherever it is printed, and the reasons are listed under the table; this module is the
only place that decides how a registry value is shown, so a chapter that prints one calls
:func:`shown` or :func:`fact` instead of typing the number.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from typing import Any

from demos.registry.load import families, family_sizes, load_registry, model_size
from demos.registry.schema import FIELDS, Field, ModelSize

MARKS = ("†", "‡", "§", "¶")  # in the order of READER_REASONS, then by frequency; then "†5", ...

# What a reader is told about an unverified value. registry.yaml records why a value is unverified;
# some entries still use older wording that says how the book was made, mapped here to what a
# student needs to know. A reason not listed is shown as written.
NOT_CHECKED = "not yet checked against a primary source"
NOT_CHECKED_ANYWHERE = "not yet checked against any source: less certain than †"
READER_REASONS = {
    NOT_CHECKED: NOT_CHECKED,
    NOT_CHECKED_ANYWHERE: NOT_CHECKED_ANYWHERE,
    "checked in the registry session only": NOT_CHECKED,
    "read from copies of config.json and transformers' defaults, not the released file": NOT_CHECKED,
    "recalled, never checked against a source": NOT_CHECKED_ANYWHERE,
    "month recalled, not found in a fetched source": NOT_CHECKED_ANYWHERE,
}


# The fields a figure computed from the registry depends on, for its mark: a parameter count from the
# architecture (every integer field but the context length; the published figure, field
# "parameters", where the model cannot be built), and the KV cache.
COUNT_FIELDS = tuple(f.name for f in FIELDS if f.type is int and f.name != "context_length")
KV_CACHE_FIELDS = ("layers", "kv_heads", "head_dim")


def reader_reason(reason: str) -> str:
    """The reason as the book prints it (see READER_REASONS)."""
    return READER_REASONS.get(reason, reason)


@lru_cache(maxsize=1)
def unverified_marks() -> dict[str, str]:
    """reason as printed -> its mark, the same on every page: † and ‡ for the two usual reasons,
    then any other reason by frequency."""
    counts = Counter(reader_reason(r) for s in load_registry() for r in s.unverified.values())
    fixed = [r for r in dict.fromkeys(READER_REASONS.values()) if r in counts]
    ranked = fixed + [r for r, _ in counts.most_common() if r not in fixed]
    return {r: MARKS[i] if i < len(MARKS) else f"{MARKS[0]}{i + 1}" for i, r in enumerate(ranked)}


def mark(size: ModelSize, *names: str) -> str:
    """The mark a value shown from ``size`` must carry: "" when every field it comes from (one, or
    several for a derived figure such as a KV cache) is verified; else the mark of the least
    certain unverified one."""
    marks = unverified_marks()
    found = [marks[reader_reason(size.unverified[n])] for n in names if n in size.unverified]
    ranked = list(marks.values())
    return max(found, key=ranked.index) if found else ""


def with_mark(text: str, size: ModelSize, *names: str) -> str:
    """``text`` followed by the mark of the fields it comes from, if any (``"4,096 †"``)."""
    m = mark(size, *names)
    return f"{text} {m}" if m else text


def legend(sizes: list[ModelSize]) -> str:
    """What the marks used by ``sizes`` mean ("† not yet checked ...; ‡ ..."); "" if none is used."""
    used = {reader_reason(r) for s in sizes for r in s.unverified.values()}
    return "; ".join(f"{m} {r}" for r, m in unverified_marks().items() if r in used)


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
    if unverified:
        lines.append(
            f"*Unverified ({unverified} of {verified + unverified} values): the cited source says "
            f"where to check a marked value, but it has not been checked there yet. {legend(sizes)}.*"
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
    numbers: dict[str, int] = {}  # citation key -> its number, in order of first use
    columns: list[list[str]] = []  # per size, its cells in the order of fields
    keys: list[list[str | None]] = []  # per size, each cell's citation key
    for s in sizes:
        cells, cited_keys = [], []
        for spec in fields:
            cells.append(with_mark(_show(s, spec.name), s, spec.name))
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


def shown(size: ModelSize | str, name: str) -> str:
    """One registry value as the book prints it, with its mark: ``shown("Mistral-7B-v0.1",
    "hidden_size")`` -> ``"4,096"``. ``ValueError`` for an unknown size or field."""
    size = model_size(size) if isinstance(size, str) else size
    if name not in {f.name for f in FIELDS}:
        raise ValueError(
            f"field ({name!r}) is not a registry field; known: {[f.name for f in FIELDS]}"
        )
    return with_mark(_show(size, name), size, name)


def fact(size: ModelSize | str, name: str) -> str:
    """:func:`shown` followed by its citation, for a sentence or a table cell of a chapter."""
    size = model_size(size) if isinstance(size, str) else size
    return shown(size, name) + _cite(
        size.cite.get(name) if getattr(size, name) is not None else None
    )


def _distinct_marked(sizes: list[ModelSize], name: str) -> list[str]:
    """The distinct values of one field over ``sizes``, in order, each with the mark of any size
    that shows it unverified (the least certain one)."""
    seen: dict[str, list[ModelSize]] = {}
    for s in sizes:
        if getattr(s, name) is not None:
            seen.setdefault(_show(s, name), []).append(s)
    out = []
    for text, having in seen.items():
        marks = [mark(s, name) for s in having if mark(s, name)]
        ranked = list(unverified_marks().values())
        out.append(f"{text} {max(marks, key=ranked.index)}" if marks else text)
    return out


def overview_rows() -> list[dict[str, Any]]:
    """One row per family, as the overview table prints it (every unverified value marked):
    organisation, release months (sorted), published sizes, checkpoint ids (unmarked, for links),
    and how many of its values are verified and unverified."""
    rows = []
    for name in families():
        sizes = family_sizes(name)
        months = sorted(_distinct_marked(sizes, "release"))
        verified, unverified = verification_counts(sizes)
        rows.append(
            {
                "family": name,
                "organisation": " / ".join(_distinct_marked(sizes, "organisation")) or "unknown",
                "released": " / ".join(months) if months else "unknown",
                "sizes": " / ".join(
                    shown(s, "parameters") if s.parameters else "undisclosed" for s in sizes
                ),
                "checkpoints": [s.checkpoint for s in sizes if s.checkpoint],
                "verified": verified,
                "unverified": unverified,
            }
        )
    return rows


def overview_table() -> str:
    """The overview page's table: one row per family, every unverified value marked, the marks
    explained above the table."""
    verified, unverified = verification_counts()
    lines = [
        f"Of the registry's {verified + unverified:,} values, **{verified} are verified** and "
        f"**{unverified} unverified** ({unverified / (verified + unverified):.0%}). A mark follows "
        f"every unverified value, here and on the facts cards: {legend(list(load_registry()))}.",
        "",
        "| Family | Organisation | Released | Sizes (published) | Checkpoints | Verified |",
        "|---|---|---|---|---|---|",
    ]
    for row in overview_rows():
        sizes = family_sizes(row["family"])
        keys = sorted({s.cite[f] for s in sizes for f in ("release", "parameters") if f in s.cite})
        cite = f" {{cite}}`{','.join(keys)}`" if keys else ""
        links = ", ".join(
            with_mark(f"[{s.name}](https://huggingface.co/{s.checkpoint})", s, "checkpoint")
            for s in sizes
            if s.checkpoint
        )
        checked = f"{row['verified']} of {row['verified'] + row['unverified']}"
        lines.append(
            f"| {row['family']} | {row['organisation']} | {row['released']} | {row['sizes']}{cite} "
            f"| {links or 'closed: no weights'} | {checked} |"
        )
    return "\n".join(lines)


_PLACEHOLDER = re.compile(r"\{\{\s*(?:([^{}:]+?)\s*:\s*)?(\w+)\s*\}\}")


def fill(template: str, size: ModelSize | str | None = None) -> str:
    """A chapter's hand-written Markdown with its registry values filled in by :func:`shown`, each
    with its mark: ``{{layers}}`` is a field of ``size``, ``{{Falcon-40B: kv_heads}}`` a field of
    another size. The text around the placeholders stays as written, so a chapter's facts table
    keeps its prose but no longer types a registry number by hand. ``ValueError`` for an unknown
    size or field, or for ``{{field}}`` without a ``size``."""
    default = model_size(size) if isinstance(size, str) else size

    def value(match: re.Match) -> str:
        name, field = match.group(1), match.group(2)
        if name is None and default is None:
            raise ValueError(f"placeholder {match.group(0)!r} names no size and fill() got none")
        return shown(model_size(name) if name else default, field)

    return _PLACEHOLDER.sub(value, template)


def facts_table(header: tuple[str, ...], rows: list[tuple[str, ...]], size: ModelSize | str) -> str:
    """A chapter's facts table as Markdown: ``header`` (its first cell is usually empty) and
    ``rows`` of the same length, each cell passed through :func:`fill` for ``size``. A ``|`` in a
    cell (``<|im_start|>``) is escaped, so that it does not end the cell."""
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {row[0]!r} has {len(row)} cells; the header has {len(header)}")

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    lines = [line(header), "|---" * len(header) + "|"]
    lines += [line(row) for row in rows]
    return fill("\n".join(lines), size)
