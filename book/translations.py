"""The Chinese edition: messages from the English pages, their translations, and the Chinese pages.

The English notebooks and pages (``_toc.yml``) are the only source. Each page's prose is cut into
messages, one per block of Markdown (a heading, a paragraph, a list, a table, an admonition, an image
with its alt text); code, display math, label lines and code fences are not messages and are copied as
they are. The translations live in one gettext catalog per page,
``locales/zh_CN/LC_MESSAGES/<page>.po``, which translators' tools read; ``_book.po`` beside them holds
the book's own strings that are not in a page (its title, the parts' captions of ``_toc.yml``, the
labels of the facts cards, which a code cell prints, the student edition's notes and the label of a
folded cell's toggle).

* :func:`extract` gives a page's messages in order; ``scripts/i18n.py update`` writes them as ``.pot``
  templates and merges them into the catalogs with sphinx-intl (babel's merge: a changed English block
  becomes a new, untranslated message, its old translation is kept as a fuzzy suggestion or obsolete).
* :func:`problems` lists what keeps a catalog from being current: a message with no translation, a
  fuzzy or obsolete one, a translation that drops or changes code, math, a citation, a link or a
  heading level, and one that does not use the glossary's Chinese term for an English term its
  message uses. ``tests/book/test_translation.py`` fails on any of them, naming page and message.
* :func:`translate_notebook` writes a page's Chinese notebook: markdown cells from the catalog, every
  code cell the English cell object itself, so its bytes (source, metadata, outputs) are the same and
  jupyter-cache, which keys a notebook on its code cells, finds the English execution.

Raises ``ValueError`` for a page that ``_toc.yml`` does not list.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parents[1]
LANGUAGE = "zh_CN"
LOCALES = ROOT / "locales"
CATALOGS = LOCALES / LANGUAGE / "LC_MESSAGES"
BOOK_CATALOG = "_book"  # the book's own strings: title, part captions, facts-card labels
GLOSSARY_PAGE = "glossary"
# myst-nb's labels of a folded cell's toggle (its defaults), set in the Chinese build's configuration
CODE_PROMPTS = {
    "nb_code_prompt_show": "Show code cell {type}",
    "nb_code_prompt_hide": "Hide code cell {type}",
}

# directives whose body is prose (translated); any other fenced block is code and stays as it is
PROSE_DIRECTIVES = {
    "admonition", "note", "tip", "hint", "important", "warning", "caution", "attention", "danger",
    "error", "seealso", "margin", "sidebar", "dropdown", "figure", "epigraph", "topic", "card",
}  # fmt: skip
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
HEADING = re.compile(r"^(#{1,6})\s")
LABEL = re.compile(r"^\s*\([^()\s]+\)=\s*$")
WORD = re.compile(r"[A-Za-z]{2,}")
CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class Piece:
    """A slice of a Markdown cell: ``text`` exactly as written, and whether it is a message."""

    text: str
    message: bool


def _fence_end(lines: list[str], start: int, fence: str) -> int:
    """Index just past the line that closes the fence opened at ``lines[start]`` (or the end)."""
    char, size = fence[0], len(fence)
    for j in range(start + 1, len(lines)):
        m = FENCE.match(lines[j].rstrip("\n"))
        if m and m["fence"][0] == char and len(m["fence"]) >= size and not m["info"].strip():
            return j + 1
    return len(lines)


def _is_prose_fence(info: str) -> bool:
    m = re.match(r"\s*\{([\w-]+)\}", info)
    return bool(m) and m.group(1) in PROSE_DIRECTIVES


def _prose(text: str) -> str:
    """``text`` without what is never translated: code, math, roles, link targets, URLs, HTML tags."""
    text = re.sub(r"`+[^`]*`+", " ", text)
    text = re.sub(r"\$\$.*?\$\$|\$[^$\n]+\$", " ", text, flags=re.S)
    text = re.sub(r"\{[\w:-]+\}", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"https?://\S+", " ", text)
    return re.sub(r"<[^>]+>", " ", text)


def split_markdown(source: str) -> list[Piece]:
    """Cut Markdown into pieces whose concatenation is ``source``, exactly; messages flagged.

    A message is a heading line, or a run of non-blank lines (paragraph, list, table), or a fenced
    prose directive with everything inside it; blank lines, label lines ``(name)=``, display math
    (``$$``) and fenced code are not messages. A block with no word outside code and math is not one.
    """
    lines = source.splitlines(keepends=True)
    pieces: list[Piece] = []
    i = 0
    while i < len(lines):
        line = lines[i].rstrip("\n")
        if not line.strip():
            j = i
            while j < len(lines) and not lines[j].strip():
                j += 1
            pieces.append(Piece("".join(lines[i:j]), False))
            i = j
            continue
        fence = FENCE.match(line)
        if fence:
            j = _fence_end(lines, i, fence["fence"])
            pieces.append(Piece("".join(lines[i:j]), _is_prose_fence(fence["info"])))
            i = j
            continue
        if line.lstrip().startswith("$$"):
            j = i + 1
            if not (line.strip().endswith("$$") and len(line.strip()) > 2):
                while j < len(lines) and "$$" not in lines[j]:
                    j += 1
                j = min(j + 1, len(lines))
            pieces.append(Piece("".join(lines[i:j]), False))
            i = j
            continue
        if LABEL.match(line) or line.lstrip().startswith("<!--"):
            pieces.append(Piece(lines[i], False))
            i += 1
            continue
        if HEADING.match(line):
            j = i + 1
        else:
            j = i + 1
            while j < len(lines):
                nxt = lines[j].rstrip("\n")
                if (
                    not nxt.strip()
                    or FENCE.match(nxt)
                    or HEADING.match(nxt)
                    or LABEL.match(nxt)
                    or nxt.lstrip().startswith("$$")
                ):
                    break
                j += 1
        block = "".join(lines[i:j])
        pieces.append(Piece(block, bool(WORD.search(_prose(block)))))
        i = j
    # a message is stored without its final newline, which stays with the piece after it
    out: list[Piece] = []
    for p in pieces:
        if p.message and p.text.endswith("\n"):
            out += [Piece(p.text[:-1], True), Piece("\n", False)]
        else:
            out.append(p)
    assert "".join(p.text for p in out) == source
    return out


# ---------------------------------------------------------------------------------------------------
# pages


def pages(root: Path = ROOT) -> list[str]:
    """The pages of ``_toc.yml`` (with the root), as names without folder or suffix: ``["intro", ...]``."""
    from booktools import toc_files

    return [Path(f).name for f in toc_files(root, with_root=True)]


def page_source(page: str, root: Path = ROOT) -> Path:
    """``book/<page>.ipynb`` or ``book/<page>.md``; ``ValueError`` if ``_toc.yml`` lists neither."""
    if page not in pages(root):
        raise ValueError(f"page {page!r} is not in _toc.yml; its pages are {pages(root)}")
    for suffix in (".ipynb", ".md"):
        path = root / "book" / f"{page}{suffix}"
        if path.exists():
            return path
    raise ValueError(f"page {page!r}: neither book/{page}.ipynb nor book/{page}.md exists")


def markdown_cells(page: str, root: Path = ROOT) -> list[tuple[str, str]]:
    """``[(where, markdown)]`` of a page: each markdown cell of a notebook, or the whole ``.md`` file."""
    path = page_source(page, root)
    if path.suffix == ".md":
        return [(path.name, path.read_text(encoding="utf-8"))]
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [
        (f"{path.name}:{n}", "".join(c["source"]))  # where: file and cell number
        for n, c in enumerate(nb["cells"])
        if c["cell_type"] == "markdown"
    ]


def extract(page: str, root: Path = ROOT) -> list[tuple[str, str]]:
    """A page's messages in order of first use, each once: ``[(msgid, where first used)]``."""
    seen: dict[str, str] = {}
    for where, text in markdown_cells(page, root):
        for piece in split_markdown(text):
            if piece.message:
                seen.setdefault(piece.text, where)
    return list(seen.items())


def book_messages(root: Path = ROOT) -> list[tuple[str, str]]:
    """The book's own strings (catalog ``_book``): title, part captions, facts-card labels and the
    student edition's notes."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text())
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    found = [(config["title"], "_config.yml:title")]
    found += [(part["caption"], "_toc.yml:parts") for part in toc.get("parts", [])]
    found += [(label, "demos/registry/render.py:facts_card") for label in card_labels()]
    found += chapter_fact_labels(root)
    found += [(note, "scripts/student_edition.py:STUDENT_NOTES") for note in student_notes(root)]
    found += [(prompt, "myst-nb:nb_code_prompt") for prompt in CODE_PROMPTS.values()]
    first: dict[str, str] = {}
    for msgid, where in found:  # each message once, where it is first used
        first.setdefault(msgid, where)
    return list(first.items())


def student_notes(root: Path = ROOT) -> tuple[str, ...]:
    """The notes the student edition writes in place of solutions (scripts/student_edition.py,
    read from this repository: a copy of the pages at ``root`` need not hold the scripts)."""
    import importlib.util

    path = ROOT / "scripts" / "student_edition.py"
    spec = importlib.util.spec_from_file_location("student_edition", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.STUDENT_NOTES


def chapter_fact_labels(root: Path = ROOT) -> list[tuple[str, str]]:
    """The row labels of the chapters' own facts tables: the first string of each row of the
    ``ROWS`` list a code cell passes to ``demos.registry.facts_table`` (read from the code's AST)."""
    import ast

    found = []
    for page in pages(root):
        path = page_source(page, root)
        if path.suffix != ".ipynb":
            continue
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] != "code" or "facts_table" not in source:
                continue
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Assign) and any(
                    getattr(t, "id", None) == "ROWS" for t in node.targets
                ):
                    for row in getattr(node.value, "elts", []):
                        first = row.elts[0] if isinstance(row, ast.Tuple) and row.elts else None
                        if isinstance(first, ast.Constant) and isinstance(first.value, str):
                            found.append((first.value, f"{path.name}:facts_table"))
    return found


def card_labels() -> list[str]:
    """Every row label and fixed word of a facts card (``demos.registry.facts_card``)."""
    from demos.registry import FIELDS
    from demos.registry.render import NONE, NOT_APPLICABLE

    words = ["source", "Sources:", "unknown", NOT_APPLICABLE, NONE]
    return list(dict.fromkeys([spec.label for spec in FIELDS] + words))


def template(page: str, root: Path = ROOT) -> polib.POFile:
    """The ``.pot`` of a page (or of ``_book``): every message with an empty translation."""
    pot = polib.POFile(wrapwidth=0)
    pot.metadata = {
        "Project-Id-Version": "llm-field-guide",
        "MIME-Version": "1.0",
        "Content-Type": "text/plain; charset=UTF-8",
        "Content-Transfer-Encoding": "8bit",
    }
    found = book_messages(root) if page == BOOK_CATALOG else extract(page, root)
    for msgid, where in found:
        file, _, cell = where.rpartition(":")
        pot.append(polib.POEntry(msgid=msgid, msgstr="", occurrences=[(file or where, cell)]))
    return pot


def catalog_path(page: str) -> Path:
    return CATALOGS / f"{page}.po"


def catalog(page: str, locales: Path = LOCALES) -> polib.POFile | None:
    path = locales / LANGUAGE / "LC_MESSAGES" / f"{page}.po"
    return polib.pofile(str(path), wrapwidth=0) if path.exists() else None


def translations(page: str, locales: Path = LOCALES) -> dict[str, str]:
    """``{msgid: msgstr}`` of a page's current (translated, not fuzzy, not obsolete) messages."""
    po = catalog(page, locales)
    if po is None:
        return {}
    return {e.msgid: e.msgstr for e in po if e.msgstr and not e.obsolete and "fuzzy" not in e.flags}


# ---------------------------------------------------------------------------------------------------
# checks


def _sorted(pattern: str, text: str, flags: int = 0) -> list[str]:
    return sorted(re.findall(pattern, text, flags))


def _norm(items: list[str]) -> list[str]:
    """Each item with its whitespace runs made one space (a line break inside math is a space)."""
    return sorted(" ".join(x.split()) for x in items)


def structure(text: str) -> dict[str, list[str]]:
    """What a translation must keep from its message, each as a sorted list.

    Fenced code bodies, roles with their targets (``{cite}`key```), inline code, math (code and math
    may break across lines, compared with whitespace made one space), link targets, directive names
    and options, and the heading level.
    """
    fenced = re.findall(r"^ {0,3}(`{3,}|~{3,})([^\n]*)\n(.*?)^ {0,3}\1\s*$", text, re.S | re.M)
    code_bodies = sorted(body for _, info, body in fenced if not _is_prose_fence(info))
    bare = text
    for _, _, body in fenced:
        bare = bare.replace(body, "")
    role = re.compile(r"\{[\w:-]+\}`[^`]*`")
    roles = role.findall(bare)
    bare = role.sub(" ", bare)
    code = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
    inline = [m.group(0) for m in code.finditer(bare) if not m.group(1).startswith("```")]
    bare = code.sub(" ", bare).replace("\\$", " ")  # an escaped dollar is a price, not math
    return {
        "code block": code_bodies,
        "role": _norm(roles),
        "inline code": _norm(inline),
        "math": _norm(re.findall(r"\$\$.+?\$\$|(?<!\$)\$[^$]+?\$(?!\$)", bare, re.S)),
        "link target": sorted(re.findall(r"\]\(([^)\s]+)", bare)),
        "directive": sorted(re.findall(r"^\s*(?:`{3,}|:{3,})\{([\w-]+)\}", text, re.M)),
        "directive option": sorted(
            re.findall(r"^:(?:class|name|label|width|align|open|icon):.*$", text, re.M)
        ),
        "heading": [m.group(1) for m in [HEADING.match(text)] if m],
    }


def structure_problems(msgid: str, msgstr: str) -> list[str]:
    """What ``msgstr`` lost or changed of ``msgid``'s code, math, roles, links, directives, heading."""
    want, got = structure(msgid), structure(msgstr)
    out = []
    for kind in want:
        if want[kind] != got[kind]:
            missing = [x for x in want[kind] if x not in got[kind]]
            extra = [x for x in got[kind] if x not in want[kind]]
            detail = "; ".join(
                part
                for part in (
                    f"missing {missing}" * bool(missing),
                    f"not in the English {extra}" * bool(extra),
                    "a different count" * (not missing and not extra),
                )
                if part
            )
            out.append(f"{kind} differs from the English: {detail}")
    return out


@dataclass(frozen=True)
class Term:
    """A glossary row: the English ``term``, its ``zh`` term, the page that first explains it."""

    term: str
    zh: str
    page: str
    source: str
    pattern: re.Pattern


def term_pattern(english: str) -> re.Pattern:
    """The regex a glossary cell stands for: each ``/``-separated form, spaces and hyphens alike,
    with an optional plural ``s``/``es``, as a whole word, in any case."""
    forms = []
    for form in english.split(" / "):
        escaped = re.escape(form.strip()).replace(r"\ ", r"[\s-]").replace(r"\-", r"[\s-]")
        forms.append(escaped + r"(?:s|es)?")
    return re.compile(r"\b(?:" + "|".join(forms) + r")\b", re.I)


def glossary(root: Path = ROOT) -> list[Term]:
    """The rows of the glossary page's table (``book/glossary.md``: English, 中文, first used, source)."""
    rows = []
    for line in (root / "book" / f"{GLOSSARY_PAGE}.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 4 or cells[0] in ("English", "---"):
            continue
        term, zh, where, source = cells
        page = re.search(r"\]\(([\w-]+)\.(?:ipynb|md)\)", where)
        if page is None:
            raise ValueError(f"glossary row {term!r}: {where!r} does not link a page")
        rows.append(Term(term, zh, page.group(1), source, term_pattern(term)))
    return rows


def glossary_problems(msgid: str, msgstr: str, terms: list[Term]) -> list[str]:
    """The glossary terms ``msgid`` uses (outside code, math, roles, links) whose 中文 term ``msgstr`` lacks.

    A term counts only where it is not part of a longer term's match: "rotary position embedding"
    asks for 旋转位置编码, not also for the 嵌入 of "embedding".
    """
    prose = _prose(msgid)
    spans = {t.term: [m.span() for m in t.pattern.finditer(prose)] for t in terms}

    def inside_longer(span: tuple[int, int], term: str) -> bool:
        return any(
            a <= span[0] and span[1] <= b and (b - a) > (span[1] - span[0])
            for other, found in spans.items()
            if other != term
            for a, b in found
        )

    used = [t for t in terms if any(not inside_longer(sp, t.term) for sp in spans[t.term])]
    return [
        f"uses {t.term!r} but not its glossary term {t.zh!r}" for t in used if t.zh not in msgstr
    ]


def problems(page: str, root: Path = ROOT, locales: Path = LOCALES) -> list[str]:
    """Everything that keeps a page's Chinese catalog from being current, one line each.

    Each line is ``"<page>: <what> — <the message's first words>"``. Empty when the catalog is complete.
    """
    current = book_messages(root) if page == BOOK_CATALOG else extract(page, root)
    po = catalog(page, locales)
    if po is None:
        return [
            f"{page}: no catalog locales/{LANGUAGE}/LC_MESSAGES/{page}.po ({len(current)} messages)"
        ]
    terms = glossary(root)
    entries = {e.msgid: e for e in po if not e.obsolete}
    out = []

    def short(msgid: str) -> str:
        one = " ".join(msgid.split())
        return one if len(one) <= 90 else one[:87] + "..."

    for msgid, _ in current:
        e = entries.get(msgid)
        if e is None or not e.msgstr:
            out.append(f"{page}: untranslated — {short(msgid)}")
        elif "fuzzy" in e.flags:
            out.append(
                f"{page}: fuzzy (the English changed; check the translation) — {short(msgid)}"
            )
        else:
            for p in structure_problems(msgid, e.msgstr) + glossary_problems(
                msgid, e.msgstr, terms
            ):
                out.append(f"{page}: {p} — {short(msgid)}")
            names_only = not re.search(r"\b[a-z]{3,}\b", _prose(msgid))  # "# Yi", "| Yi-6B |"
            if page != BOOK_CATALOG and not names_only and not CJK.search(e.msgstr):
                out.append(f"{page}: translation has no Chinese — {short(msgid)}")
    current_ids = {m for m, _ in current}
    for e in po:
        if e.obsolete or e.msgid not in current_ids:
            out.append(f"{page}: obsolete (no longer in the English) — {short(e.msgid)}")
    return out


# ---------------------------------------------------------------------------------------------------
# the Chinese pages


def translate_markdown(source: str, table: dict[str, str], missing: list[str] | None = None) -> str:
    """``source`` with each message replaced by its translation (kept English if it has none)."""
    out = []
    for piece in split_markdown(source):
        if piece.message and piece.text not in table and missing is not None:
            missing.append(piece.text)
        out.append(table.get(piece.text, piece.text) if piece.message else piece.text)
    return "".join(out)


def translate_notebook(nb: dict, table: dict[str, str], missing: list[str] | None = None) -> dict:
    """A Chinese copy of notebook ``nb`` (a dict as ``json.load`` gives it).

    Markdown cells are translated; every other cell is the English cell object, unchanged.
    """
    out = {k: v for k, v in nb.items() if k != "cells"}
    out["metadata"] = copy.deepcopy(nb.get("metadata", {}))
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            cell = dict(cell)
            text = translate_markdown("".join(cell["source"]), table, missing)
            cell["source"] = text.splitlines(keepends=True)
        cells.append(cell)
    out["cells"] = cells
    return out


def write_page(page: str, out_dir: Path, root: Path = ROOT, locales: Path = LOCALES) -> list[str]:
    """Write a page's Chinese ``.ipynb`` or ``.md`` into ``out_dir``; returns the messages kept English."""
    path = page_source(page, root)
    table = translations(page, locales)
    missing: list[str] = []
    target = out_dir / path.name
    if path.suffix == ".md":
        target.write_text(translate_markdown(path.read_text(encoding="utf-8"), table, missing))
    else:
        nb = json.loads(path.read_text(encoding="utf-8"))
        text = json.dumps(translate_notebook(nb, table, missing), ensure_ascii=False, indent=1)
        target.write_text(text + "\n", encoding="utf-8")
    return missing
