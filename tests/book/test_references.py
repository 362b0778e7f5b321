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


# --- the errata page: every entry cited, and the count counts errors only ------------------

ERRATA = (ROOT / "book" / "errata.md").read_text()


def _entries(prefix: str) -> list[str]:
    """The paragraphs of errata.md that start with a bold number (``**7.``) or ``**C3.``."""
    return re.findall(rf"^\*\*{prefix}\d+\. .*?(?=\n\n|\Z)", ERRATA, re.M | re.S)


def test_errata_are_numbered_in_order_and_each_cites_a_source():
    for prefix in ("", "C"):
        entries = _entries(prefix)
        numbers = [int(re.match(rf"\*\*{prefix}(\d+)\.", e).group(1)) for e in entries]
        assert numbers == list(range(1, len(entries) + 1)), numbers
        for entry in entries:
            assert "{cite}`" in entry, entry[:80]


def test_the_stated_count_of_errata_counts_errors_only():
    errors = _entries("")
    clarifications = _entries("C")
    assert len(errors) == 23 and len(clarifications) == 20  # update both with the page
    closing = ERRATA.split("## Closing note", 1)[1]
    assert f"**{len(errors)} errata**" in closing
    assert f"{len(clarifications)} clarifications" in closing
    intro = (ROOT / "book" / "intro.md").read_text()
    assert f"lists the {len(errors)} factual errors" in intro
    assert "**C1." not in ERRATA.split("## Clarifications", 1)[0]


def test_qwen15_training_tokens_are_not_listed_as_an_error():
    # The Qwen2 report (section 3.1) gives 3T tokens for Qwen1.5, as the seed list says.
    assert not any("Qwen1.5" in e and "3T" in e for e in _entries(""))
    assert "yang2024qwen2" in ERRATA
