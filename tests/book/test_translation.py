"""The Chinese edition's catalogs (issue 29): current for every page, true to the English, one source.

``make test`` fails here when a page has an untranslated, fuzzy or obsolete message, or a translation
that lost code, math, a citation, a link or the glossary's term; the failure names page and message.
After editing English prose: ``python scripts/i18n.py update``, translate what it reports (README).
No build is needed: these tests read the sources and ``locales/``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polib
import pytest
import translations as tr
from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parents[2]
CATALOGS = [*tr.pages(ROOT), tr.BOOK_CATALOG]


@pytest.mark.parametrize("page", CATALOGS)
def test_the_page_has_a_current_chinese_translation(page):
    found = tr.problems(page)
    assert not found, (
        f"{len(found)} problem(s) in locales/zh_CN/LC_MESSAGES/{page}.po (after editing English "
        "prose: `python scripts/i18n.py update`, then translate; see README):\n" + "\n".join(found)
    )


def test_every_catalog_belongs_to_a_page():
    extra = sorted({p.stem for p in tr.CATALOGS.glob("*.po")} - set(CATALOGS))
    assert not extra, f"catalogs of no page in _toc.yml: {extra}"


# ---- the source is one: the Chinese pages are written from the English ones ----------------------


def _chinese(page: str) -> tuple[dict, dict]:
    path = tr.page_source(page)
    nb = json.loads(path.read_text(encoding="utf-8"))
    return nb, tr.translate_notebook(nb, tr.translations(page))


NOTEBOOKS = [p for p in tr.pages(ROOT) if tr.page_source(p).suffix == ".ipynb"]


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_code_cells_are_the_english_cells_byte_for_byte(page, tmp_path):
    english, chinese = _chinese(page)
    code = [json.dumps(c, sort_keys=True) for c in english["cells"] if c["cell_type"] != "markdown"]
    same = [json.dumps(c, sort_keys=True) for c in chinese["cells"] if c["cell_type"] != "markdown"]
    assert same == code
    assert [c["cell_type"] for c in chinese["cells"]] == [c["cell_type"] for c in english["cells"]]
    # what jupyter-cache keys an execution on: equal, so the Chinese page reuses the English run
    import nbformat

    cache = get_cache(str(tmp_path / "cache"))
    hashed = [cache.create_hashed_notebook(nbformat.from_dict(nb))[1] for nb in (english, chinese)]
    assert hashed[0] == hashed[1]


def test_the_chinese_page_is_chinese_where_translated():
    english, chinese = _chinese("yi")
    table = tr.translations("yi")
    assert table, "yi.po has no translation"
    md = [
        "".join(c["source"]) for c in chinese["cells"] if c["cell_type"] == "markdown"
    ]  # fmt: skip
    assert md[0].startswith("# ") and any(tr.CJK.search(m) for m in md)
    assert "".join(md) != "".join(
        "".join(c["source"]) for c in english["cells"] if c["cell_type"] == "markdown"
    )


# ---- how messages are cut ----------------------------------------------------------------------------


@pytest.mark.parametrize("page", tr.pages(ROOT))
def test_cutting_a_page_into_messages_loses_nothing(page):
    for _, text in tr.markdown_cells(page):
        assert "".join(p.text for p in tr.split_markdown(text)) == text
        assert tr.translate_markdown(text, {}) == text


def test_code_math_and_labels_are_not_messages_prose_directives_are():
    text = (
        "(sec-x)=\n## A heading\n\nA paragraph\nover two lines.\n\n$$\nx = 1\n$$\n\n"
        "```python\nprint('hi')\n```\n\n```{admonition} A title\n:class: note\nBody text.\n```\n"
        "\n| a | b |\n|---|---|\n| one | two |\n"
    )
    pieces = tr.split_markdown(text)
    messages = [p.text for p in pieces if p.message]
    assert messages == [
        "## A heading",
        "A paragraph\nover two lines.",
        "```{admonition} A title\n:class: note\nBody text.\n```",
        "| a | b |\n|---|---|\n| one | two |",
    ]
    assert "".join(p.text for p in pieces) == text


# ---- what the check catches ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msgstr", "kind"),
    [
        ("见 {cite}`other`，用 `x` 与 $a$。", "role"),
        ("见 {cite}`key`，用 `y` 与 $a$。", "inline code"),
        ("见 {cite}`key`，用 `x` 与 $b$。", "math"),
        ("见 {cite}`key`，用 `x` 与 $a$，[链接](other.ipynb)。", "link target"),
    ],
)
def test_a_translation_that_changes_code_math_a_citation_or_a_link_is_caught(msgstr, kind):
    msgid = "See {cite}`key`, with `x` and $a$, [the link](llama2.ipynb)."
    if kind != "link target":
        msgstr = msgstr.replace("。", "，[链接](llama2.ipynb)。")
    found = tr.structure_problems(msgid, msgstr)
    assert [p.split(" differs")[0] for p in found] == [kind], found
    good = "见 {cite}`key`，用 `x` 与 $a$，[链接](llama2.ipynb)。"
    assert tr.structure_problems(msgid, good) == []


def test_a_translation_without_the_glossary_term_is_caught():
    terms = tr.glossary()
    msgid = "Each token attends to the KV cache."
    assert tr.glossary_problems(msgid, "每个词元都关注 KV 缓存。", terms) == []
    found = tr.glossary_problems(msgid, "每个 token 都读取 KV cache。", terms)
    assert "uses 'token' but not its glossary term '词元'" in found
    assert "uses 'KV cache' but not its glossary term 'KV 缓存'" in found
    # code, math and link targets are not prose: `token_ids` uses no term
    assert tr.glossary_problems("Read `token_ids`.", "读取 `token_ids`。", terms) == []


@pytest.fixture
def copy_of_the_sources(tmp_path: Path) -> Path:
    for name in ("_toc.yml", "_config.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    ignore = shutil.ignore_patterns("_static", "_ext", "__pycache__", ".ipynb_checkpoints")
    shutil.copytree(ROOT / "book", tmp_path / "book", ignore=ignore)
    shutil.copytree(ROOT / "locales", tmp_path / "locales")
    return tmp_path


def test_editing_one_english_sentence_fails_naming_page_and_message(copy_of_the_sources):
    root = copy_of_the_sources
    assert tr.problems("yi", root, root / "locales") == []
    path = root / "book" / "yi.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    markdown = [c for c in nb["cells"] if c["cell_type"] == "markdown"]
    cell = next(c for c in markdown if "## The idea" in "".join(c["source"]))
    source = "".join(cell["source"])
    edited = source.replace("Yi changes no layer of Llama", "Yi changes not one layer of Llama")
    assert edited != source
    cell["source"] = edited.splitlines(keepends=True)
    path.write_text(json.dumps(nb, ensure_ascii=False, indent=1), encoding="utf-8")
    found = tr.problems("yi", root, root / "locales")
    assert any(
        p.startswith("yi: untranslated — Yi changes not one layer of Llama") for p in found
    ), found
    assert any(
        p.startswith("yi: obsolete (no longer in the English) — Yi changes no layer") for p in found
    ), found


def test_removing_one_translation_fails_naming_page_and_message(copy_of_the_sources):
    root = copy_of_the_sources
    po_path = root / "locales" / "zh_CN" / "LC_MESSAGES" / "yi.po"
    po = polib.pofile(str(po_path), wrapwidth=0)
    entry = next(e for e in po if e.msgid.startswith("## The math, then the code"))
    entry.msgstr = ""
    po.save(str(po_path))
    assert tr.problems("yi", root, root / "locales") == [
        "yi: untranslated — ## The math, then the code"
    ]
    entry.msgstr, entry.flags = "## 先看数学，再看代码", ["fuzzy"]
    po.save(str(po_path))
    assert tr.problems("yi", root, root / "locales") == [
        "yi: fuzzy (the English changed; check the translation) — ## The math, then the code"
    ]


# ---- the glossary -------------------------------------------------------------------------------------


def test_glossary_rows_link_the_first_page_that_uses_the_term():
    pages = tr.pages(ROOT)
    messages = {p: [tr._prose(m) for m, _ in tr.extract(p)] for p in pages if p != tr.GLOSSARY_PAGE}
    terms = tr.glossary()
    assert len(terms) >= 30
    wrong = []
    for t in terms:
        first = next((p for p in messages if any(t.pattern.search(m) for m in messages[p])), None)
        if first != t.page:
            wrong.append(f"{t.term}: the glossary says {t.page}, first used in {first}")
    assert not wrong, "\n".join(wrong)


def test_the_glossary_covers_the_terms_the_issue_names():
    terms = {t.term.split(" / ")[0] for t in tr.glossary()}
    for needed in (
        "attention", "KV cache", "sliding window", "selective scan", "mixture of experts",
        "preference", "quantisation", "rotary position embedding", "benchmark", "accuracy",
    ):  # fmt: skip
        assert needed in terms, needed


def test_a_term_inside_a_longer_term_asks_only_for_the_longer_one():
    terms = tr.glossary()
    msgid = "Llama uses rotary position embeddings; its embedding matrix is tied."
    assert (
        tr.glossary_problems(msgid, "Llama 使用旋转位置编码；它的嵌入矩阵是共享的。", terms) == []
    )
    assert (
        tr.glossary_problems("Llama uses rotary position embeddings.", "旋转位置编码。", terms)
        == []
    )
    found = tr.glossary_problems(msgid, "Llama 使用旋转位置编码；它的矩阵是共享的。", terms)
    assert found == ["uses 'embedding' but not its glossary term '嵌入'"]
