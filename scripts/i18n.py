"""The Chinese edition's catalogs: bring them up to date, check them, hand them to a translator.

    python scripts/i18n.py update            # after editing English prose: merge every page's messages
                                             # into locales/zh_CN/LC_MESSAGES/<page>.po (sphinx-intl)
    python scripts/i18n.py check [PAGE ...]  # what is untranslated, fuzzy, obsolete or broken; exit 1 if any
    python scripts/i18n.py sheet PAGE        # write _build/i18n/PAGE.todo.txt: the messages left to
                                             # translate, numbered, in English
    python scripts/i18n.py fill PAGE FILE    # read translations numbered as in the sheet into PAGE.po
    python scripts/i18n.py sheet PAGE --all  # every message (PAGE.all.txt), with its translation, to
    python scripts/i18n.py fill PAGE FILE --all  # correct translations by those numbers

``update`` writes each page's template (``_build/gettext/<page>.pot``, from book/translations.py's
``template``) and merges it into the page's catalog with sphinx-intl, which creates a missing catalog
and, for a changed English block, keeps the old translation as a fuzzy suggestion (babel's merge). A
translator then edits the ``.po`` file with any gettext tool (Poedit, Lokalize, an editor), or uses
``sheet`` and ``fill``: a sheet is plain text, one ``=== N ===`` line before each message, and FILE
uses the same numbers with the Chinese text after each. ``fill`` clears the fuzzy flag of what it
fills and then prints ``check``'s findings for the page.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))
import translations  # noqa: E402

POT_DIR = ROOT / "_build" / "gettext"
SHEETS = ROOT / "_build" / "i18n"
NUMBER = re.compile(r"^=== (\d+) ===$", re.M)


def all_catalogs() -> list[str]:
    return [*translations.pages(), translations.BOOK_CATALOG]


def update() -> int:
    from sphinx_intl.basic import update as intl_update

    POT_DIR.mkdir(parents=True, exist_ok=True)
    for old in POT_DIR.glob("*.pot"):
        old.unlink()
    for page in all_catalogs():
        translations.template(page).save(str(POT_DIR / f"{page}.pot"))
    intl_update(
        str(translations.LOCALES), str(POT_DIR), (translations.LANGUAGE,), line_width=-1, jobs=1
    )
    stale = [c.stem for c in translations.CATALOGS.glob("*.po") if c.stem not in all_catalogs()]
    for name in stale:
        print(f"{name}.po: no such page in _toc.yml any more (delete it if the page is gone)")
    return 0


def check(pages: list[str]) -> int:
    found = [line for page in pages or all_catalogs() for line in translations.problems(page)]
    print("\n".join(found) if found else "every catalog is current")
    return 1 if found else 0


def todo(page: str, every: bool = False) -> list:
    """The entries of PAGE.po that are untranslated or fuzzy (``every``: all), in the page's order."""
    po = translations.catalog(page)
    if po is None:
        raise SystemExit(f"no catalog for {page}: run `python scripts/i18n.py update` first")
    return [e for e in po if not e.obsolete and (every or not e.msgstr or "fuzzy" in e.flags)]


def sheet(page: str, every: bool = False) -> int:
    SHEETS.mkdir(parents=True, exist_ok=True)
    entries = todo(page, every)
    parts = []
    for n, e in enumerate(entries, 1):
        label = "current translation" if every else "fuzzy suggestion"
        suggestion = f"\n--- {label} ---\n{e.msgstr}" if e.msgstr else ""
        parts.append(f"=== {n} ===\n{e.msgid}{suggestion}\n")
    path = SHEETS / f"{page}.{'all' if every else 'todo'}.txt"
    path.write_text("\n".join(parts), encoding="utf-8")
    print(f"{path.relative_to(ROOT)}: {len(entries)} message(s) to translate")
    return 0


def fill(page: str, file: Path, every: bool = False) -> int:
    entries = todo(page, every)
    text = file.read_text(encoding="utf-8")
    marks = list(NUMBER.finditer(text))
    filled = 0
    for k, m in enumerate(marks):
        n = int(m.group(1))
        if not 1 <= n <= len(entries):
            raise SystemExit(f"{file}: message {n} is not on the sheet (it has {len(entries)})")
        end = marks[k + 1].start() if k + 1 < len(marks) else len(text)
        body = text[m.end() : end].strip("\n")
        if body.strip():
            entries[n - 1].msgstr = body.rstrip()
            if "fuzzy" in entries[n - 1].flags:
                entries[n - 1].flags.remove("fuzzy")
            filled += 1
    po = translations.catalog(page)
    by_id = {e.msgid: e for e in entries}
    for e in po:
        if e.msgid in by_id and not e.obsolete:
            e.msgstr, e.flags = by_id[e.msgid].msgstr, by_id[e.msgid].flags
    po.save(str(translations.catalog_path(page)))
    print(f"{page}.po: {filled} translation(s) filled")
    return check([page])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("update")
    p = sub.add_parser("check")
    p.add_argument("pages", nargs="*")
    for name in ("sheet", "fill"):
        p = sub.add_parser(name)
        p.add_argument("page")
        if name == "fill":
            p.add_argument("file", type=Path)
        p.add_argument(
            "--all", action="store_true", help="every message, numbered, not just the todo"
        )
    args = parser.parse_args()
    if args.command == "update":
        return update()
    if args.command == "check":
        return check(args.pages)
    if args.command == "sheet":
        return sheet(args.page, args.all)
    return fill(args.page, args.file, args.all)


if __name__ == "__main__":
    sys.exit(main())
