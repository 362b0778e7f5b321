"""references.bib: every in-text label (author-year) names one source, so a reader can find it."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pybtex.database

ROOT = Path(__file__).resolve().parents[2]


def in_text_label(entry) -> str:
    """What sphinxcontrib-bibtex's author_year style prints: 'A', 'A and B' or 'A et al.', then the year."""
    persons = entry.persons.get("author", [])
    names = [" ".join(p.last_names) for p in persons]
    who = (
        names[0]
        if len(names) == 1
        else " and ".join(names)
        if len(names) == 2
        else f"{names[0]} et al."
    )
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


def test_in_text_labels_are_unique():
    entries = pybtex.database.parse_file(ROOT / "references.bib").entries
    by_label = defaultdict(list)
    for key, entry in entries.items():
        by_label[in_text_label(entry)].append(key)
    clashes = {label: keys for label, keys in by_label.items() if len(keys) > 1}
    assert not clashes, f"same in-text label for different sources (add a/b to the year): {clashes}"


def test_years_are_a_year_with_an_optional_letter():
    years = re.findall(r"^\s*year\s*=\s*\{([^}]*)\}", (ROOT / "references.bib").read_text(), re.M)
    assert years and all(re.fullmatch(r"(19|20)\d\d[a-z]?", y) for y in years), years
