"""Every trap points at a chapter of the book, and every model chapter written so far has one."""

from __future__ import annotations

from pathlib import Path

import pytest

from demos.traps import all_traps

BOOK = Path(__file__).resolve().parents[2] / "book"
CHAPTERS = {trap.chapter for trap in all_traps()}


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_a_trap_names_an_existing_chapter(chapter):
    assert (BOOK / f"{chapter}.ipynb").is_file(), f"no book/{chapter}.ipynb"


@pytest.mark.parametrize("chapter", ["llama2", "mistral", "mamba", "falcon", "zephyr"])
def test_each_chapter_has_a_trap(chapter):
    assert chapter in CHAPTERS


def test_one_line_each():
    for trap in all_traps():
        for text in (trap.wrong, trap.right):
            assert "\n" not in text and len(text) <= 76, (trap.title, text)
