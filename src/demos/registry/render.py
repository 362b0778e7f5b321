"""The registry as the book shows it: a chapter's facts card and the rows of the overview table.

Both are Markdown for ``IPython.display.Markdown``; MyST renders the ``{cite}`` roles. A value that
was not checked against a source carries a mark (``†``, ``‡``, ... one per reason), explained under
the card.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from typing import Any

from demos.registry.load import families, family_sizes, load_registry
from demos.registry.schema import FIELDS, ModelSize

MARKS = ("†", "‡", "§", "¶")  # the most frequent reason first; then "†5", "†6", ...


@lru_cache(maxsize=1)
def unverified_marks() -> dict[str, str]:
    """reason -> its mark, the same on every card (the most frequent reason gets ``†``)."""
    reasons = Counter(r for s in load_registry() for r in s.unverified.values())
    ranked = [reason for reason, _ in reasons.most_common()]
    return {r: MARKS[i] if i < len(MARKS) else f"{MARKS[0]}{i + 1}" for i, r in enumerate(ranked)}


def _show(size: ModelSize, name: str) -> str:
    value = getattr(size, name)
    if value is None:
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


def facts_card(family: str) -> str:
    """A Markdown table with one column per released size and a last column, "source", for each row.

    A row's source is given once, as a number: "(1)" when all sizes share it, else one number per
    size, left to right as the columns ("(3) (3) (4)", "–" for an unknown value). The numbers are cited
    under the table ("Sources: (1) {cite}`key`; ..."), so that a long author-year citation does not
    widen every row.
    An unverified value is followed by a mark, and the reasons are listed under the table too.
    ``ValueError`` for an unknown family.
    """
    sizes = family_sizes(family)
    marks = unverified_marks()
    numbers: dict[str, int] = {}  # citation key -> its number, in order of first use
    header = "| | " + " | ".join(s.name for s in sizes) + " | source |"
    rows = [header, "|---" * (len(sizes) + 2) + "|"]
    for spec in FIELDS:
        cells, keys = [], []
        for s in sizes:
            text = _show(s, spec.name)
            reason = s.unverified.get(spec.name)
            if reason:
                text += " " + marks[reason]
            cells.append(text)
            cited = getattr(s, spec.name) is not None and s.cite.get(spec.name)
            keys.append(s.cite[spec.name] if cited else None)
            if cited:
                numbers.setdefault(s.cite[spec.name], len(numbers) + 1)
        distinct = {k for k in keys if k}
        if len(distinct) == 1:
            source = f"({numbers[distinct.pop()]})"
        else:
            source = " ".join(f"({numbers[k]})" if k else "–" for k in keys) if distinct else ""
        rows.append(f"| {spec.label} | " + " | ".join(cells) + f" | {source} |")
    sources = "; ".join(f"({n}){_cite(key)}" for key, n in numbers.items())
    notes = [f"*Sources:* {sources}."] * bool(numbers) + _footnotes(sizes)
    return "\n".join(rows) + ("\n\n" + "\n".join(f"- {n}" for n in notes) if notes else "")


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
