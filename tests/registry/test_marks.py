"""A mark on every unverified registry value, wherever the book prints it.

The registry (``registry.yaml``) records which values have not been checked against a primary
source. These tests read what the book prints (the overview table, the calculator's marks, single
values, and the hand-written "## The facts" tables of the chapters) and fail when an unverified value
appears there without its mark.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from demos import registry
from demos.registry import family_sizes, fill, load_registry, model_size, overview_table, shown
from demos.registry.render import NOT_CHECKED, NOT_CHECKED_ANYWHERE, reader_reason

ROOT = Path(__file__).resolve().parents[2]
MARKS = tuple(registry.unverified_marks().values())


def test_the_printed_reasons_say_what_a_reader_needs():
    # not how the book was made: no "session", no "recalled"
    reasons = set(registry.unverified_marks())
    assert reasons <= {NOT_CHECKED, NOT_CHECKED_ANYWHERE}, reasons
    assert registry.unverified_marks()[NOT_CHECKED] == "†"
    for reason in reasons:
        assert not re.search(r"session|recalled|fetched", reason), reason


def _overview_cells() -> dict[str, list[str]]:
    rows = {}
    for line in overview_table().splitlines():
        if line.startswith("| ") and not line.startswith(("| Family", "|---")):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[cells[0]] = cells
    return rows


@pytest.mark.parametrize("field, column", [("organisation", 1), ("release", 2), ("parameters", 3)])
def test_the_overview_marks_every_unverified_value(field, column):
    rows = _overview_cells()
    checked = 0
    for size in load_registry():
        value = getattr(size, field)
        if value is None:
            continue
        cell = rows[size.family][column]
        parts = [p.strip() for p in re.sub(r" \{cite\}`[^`]*`", "", cell).split(" / ")]
        mine = [p for p in parts if p.removesuffix(" †").removesuffix(" ‡") == value]
        assert mine, (size.name, field, cell)
        if field in size.unverified:  # a value shared by several sizes: marked if any is unverified
            assert all(p.endswith(MARKS) for p in mine), (size.name, field, cell)
            checked += 1
        elif field == "parameters":  # one entry per size: a verified one carries no mark
            assert any(not p.endswith(MARKS) for p in mine), (size.name, field, cell)
    assert checked > 0


def test_the_overview_marks_each_unverified_checkpoint_link():
    rows = _overview_cells()
    for size in load_registry():
        if size.checkpoint:
            link = f"[{size.name}](https://huggingface.co/{size.checkpoint})"
            cell = rows[size.family][4]
            marked = f"{link} {registry.mark(size, 'checkpoint')}"
            assert (marked if "checkpoint" in size.unverified else link) in cell, size.name
            if "checkpoint" not in size.unverified:
                assert f"{link} †" not in cell and f"{link} ‡" not in cell


def test_a_single_value_carries_its_mark_and_a_derived_one_the_least_certain():
    falcon = model_size("Falcon-7B")
    assert "release" in falcon.unverified and "layers" not in falcon.unverified
    assert shown(falcon, "release") == "2023-05 " + registry.mark(falcon, "release")
    assert shown("Falcon-7B", "layers") == "32"
    assert registry.mark(falcon, "layers", "hidden_size") == ""
    fake = falcon.__class__(
        **{**falcon.__dict__, "unverified": {"layers": NOT_CHECKED, "heads": NOT_CHECKED_ANYWHERE}}
    )
    assert registry.mark(fake, "layers") == "†"
    assert registry.mark(fake, "layers", "heads") == "‡"
    with pytest.raises(ValueError, match="not a registry field"):
        shown(falcon, "width")


# --- the chapters' hand-written facts tables -------------------------------------------------


def _chapters() -> dict[str, list[str]]:
    """chapter file -> the families whose facts card it renders (its registry families)."""
    out = {}
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        names = re.findall(r'facts_card\(\\"([^"\\]+)\\"\)', text)
        if names:
            out[path.name] = names
    return out


def _facts_section(path: Path) -> str:
    """The chapter's "## The facts" section, up to the next heading of level 2: its Markdown and
    the cell that builds its facts table with ``demos.registry.facts_table`` (whose literal numbers
    are typed by hand; its placeholders are filled from the registry)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    text = "\n".join(
        "".join(c["source"])
        for c in cells
        if c["cell_type"] == "markdown" or "facts_table(" in "".join(c["source"])
    )
    match = re.search(r"^## The facts\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    return match.group(1) if match else ""


def _spellings(value: int) -> list[str]:
    """How a prose table may write an integer: 14336, 14,336, 14 336 (a regular or thin space)."""
    plain = str(value)
    grouped = f"{value:,}"
    return sorted({plain, grouped, grouped.replace(",", " "), grouped.replace(",", "\u202f")})


def _unmarked_values(section: str, sizes) -> list[str]:
    """Unverified integer values of ``sizes`` (1,000 and above, so that a number cannot be a count
    of something else by chance) that the section writes without a mark right after them."""
    found = []
    for size in sizes:
        for name, reason in size.unverified.items():
            value = getattr(size, name)
            if not isinstance(value, int) or value < 1000:
                continue
            for spelling in _spellings(value):
                pattern = rf"(?<![\d,.]){re.escape(spelling)}(?![\d,])(?!\s?[{''.join(MARKS)}])"
                if re.search(pattern, section):
                    found.append(f"{size.name}.{name} = {spelling} ({reader_reason(reason)})")
    return found


@pytest.mark.parametrize("chapter", sorted(_chapters()))
def test_a_chapter_facts_table_marks_the_unverified_values_it_restates(chapter):
    section = _facts_section(ROOT / "book" / chapter)
    sizes = [s for family in _chapters()[chapter] for s in family_sizes(family)]
    assert _unmarked_values(section, sizes) == []


def test_a_facts_table_fills_its_registry_values_with_marks():
    # the templates of the chapters' facts tables resolve, and a placeholder gets the mark
    assert fill("{{layers}} layers", "Falcon-7B") == "32 layers"
    assert fill("{{release}}", "Falcon-7B") == "2023-05 " + registry.mark(
        model_size("Falcon-7B"), "release"
    )
    assert fill("{{Falcon-40B: kv_heads}} groups") == "8 groups"
    with pytest.raises(ValueError, match="names no size"):
        fill("{{layers}}")
    with pytest.raises(ValueError, match="not in the registry"):
        fill("{{Falcon-8B: layers}}")
    filled = 0
    for chapter in _chapters():
        cells = json.loads((ROOT / "book" / chapter).read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            source = "".join(cell["source"])
            if cell["cell_type"] != "code" or "facts_table(" not in source:
                continue
            namespace: dict = {}
            exec(source.replace("Markdown(", "RESULT = ("), namespace)  # noqa: S102 - the book's cell
            table = namespace["RESULT"]
            assert "{{" not in table and table.count("\n|") >= 3, chapter
            filled += 1
    assert filled >= 10


def test_the_chapter_check_finds_an_unmarked_value():
    # the check itself: a restated unverified value is found, and its mark silences it
    size = next(
        s
        for s in load_registry()
        if any(isinstance(getattr(s, n), int) and getattr(s, n) >= 1000 for n in s.unverified)
    )
    name = next(
        n for n in size.unverified if isinstance(getattr(size, n), int) and getattr(size, n) >= 1000
    )
    value = getattr(size, name)
    assert _unmarked_values(f"| Width | {value:,} |", [size])
    assert not _unmarked_values(f"| Width | {value:,} {registry.mark(size, name)} |", [size])
    assert not _unmarked_values(f"| Width | {shown(size, name)} |", [size])
