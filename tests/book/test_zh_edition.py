"""The built Chinese edition (issue 29): every page there, linked both ways, read as Chinese.

Reads ``_build/html`` as ``make book`` leaves it (English at the root, Chinese under ``zh/``, both
rendered by ``jupyter-book build -W``); the browser tests (test_browser.py) load both editions at
1280 and 390 px.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from booktools import toc_files

ROOT = Path(__file__).resolve().parents[2]
PAGES = toc_files(ROOT, with_root=True)  # "book/intro", ...
CJK = re.compile(r"[\u3400-\u9fff]")
ENGLISH_WORD = re.compile(r"\b[a-z]{3,}\b")
QUOTED = re.compile(r"「[^」]*」")
# what stays English on a Chinese page by design: code, outputs, math, the bibliography's entries
NOT_PROSE = (
    "div.cell_output, div.output, pre, div.highlight, code, span.math, div.math, "
    "div.bibliography, .citation, nav, .toctree-wrapper, .footnote, script, style"
)
pytestmark = pytest.mark.book


def _soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def _alternate(path: Path) -> Path:
    link = _soup(path).find("link", rel="alternate")
    assert link is not None, f"{path}: no link to the other edition"
    return (path.parent / link["href"]).resolve()


@pytest.mark.parametrize("page", PAGES)
def test_each_page_links_the_same_page_in_the_other_language(built_book, page):
    english = built_book / "html" / f"{page}.html"
    chinese = built_book / "html" / "zh" / f"{page}.html"
    assert english.exists() and chinese.exists(), (english, chinese)
    assert _alternate(english) == chinese.resolve()
    assert _alternate(chinese) == english.resolve()
    assert _soup(chinese).html["lang"] == "zh-CN"


def _untranslated(path: Path) -> list[str]:
    """Prose blocks of the article with English words and not one Chinese character."""
    soup = _soup(path)
    article = soup.select_one("article.bd-article") or soup.body
    for element in article.select(NOT_PROSE):
        element.decompose()
    found = []
    for block in article.select("p, li, h1, h2, h3, h4, th, td, dt, dd, figcaption, caption"):
        if block.find(["p", "li", "ul", "ol", "table"]):
            continue  # its own blocks are looked at one by one
        # a cell is read with its row: the glossary's English column sits beside its 中文 one
        row = block if block.name == "tr" else block.find_parent("tr")
        text = " ".join((row or block).get_text(" ").split())
        text = QUOTED.sub("", text)  # the seed list's own words, quoted as it writes them
        if len(ENGLISH_WORD.findall(text)) >= 3 and not CJK.search(text):
            found.append(text[:100])
    return found


@pytest.mark.parametrize("page", PAGES)
def test_no_english_paragraph_is_left_on_a_chinese_page(built_book, page):
    found = _untranslated(built_book / "html" / "zh" / f"{page}.html")
    assert not found, f"zh/{page}.html: {len(found)} untranslated block(s): {found}"


def test_the_detector_finds_the_english_edition_untranslated(built_book):
    """The check above can fail: on the English page it finds the prose."""
    assert len(_untranslated(built_book / "html" / "book" / "yi.html")) > 10


@pytest.mark.parametrize("page", PAGES)
def test_no_markdown_left_unrendered_on_a_chinese_page(built_book, page):
    """Bold after full-width punctuation, a role or a link can fail to render in a translation."""
    soup = _soup(built_book / "html" / "zh" / f"{page}.html")
    article = soup.select_one("article.bd-article") or soup.body
    for element in article.select(NOT_PROSE):
        element.decompose()
    text = article.get_text(" ")
    for raw in ("**", "{cite}", "{doc}", "]("):
        assert raw not in text, (
            f"zh/{page}.html shows raw Markdown {raw!r}: ...{_around(text, raw)}..."
        )


def _around(text: str, raw: str) -> str:
    i = text.index(raw)
    return " ".join(text[max(0, i - 60) : i + 60].split())


def test_facts_card_labels_are_chinese_on_the_chinese_page(built_book):
    from demos.registry import FIELDS

    soup = _soup(built_book / "html" / "zh" / "book" / "yi.html")
    cells = [td.get_text(" ").strip() for td in soup.select("div.cell_output table td:first-child")]
    assert cells, "no facts card on zh/book/yi.html"
    english = {f.label for f in FIELDS}
    assert not english.intersection(cells), english.intersection(cells)
    assert all(CJK.search(c) for c in cells), cells


def test_the_chinese_download_holds_the_chinese_notebooks_and_the_wheel(built_book):
    path = built_book / "html" / "zh" / "_downloads" / "field-guide-notebooks.zip"
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert any(n.endswith(".whl") for n in names), names
        yi = json.loads(zf.read("field-guide-notebooks/book/yi.ipynb"))
    english = json.loads((ROOT / "book" / "yi.ipynb").read_text(encoding="utf-8"))
    code = [c for c in yi["cells"] if c["cell_type"] == "code"]
    assert code == [c for c in english["cells"] if c["cell_type"] == "code"]
    assert CJK.search("".join(yi["cells"][0]["source"]))


def test_the_chinese_search_index_holds_chinese_words(built_book):
    """jieba (requirements.txt) cuts the Chinese text into words for Sphinx's index; without it,
    no Chinese word is indexed."""
    text = (built_book / "html" / "zh" / "searchindex.js").read_text(encoding="utf-8")
    terms = json.loads(text[text.index("(") + 1 : text.rindex(")")])["terms"]
    for word in ("注意力", "词元", "量化", "窗口"):
        assert word in terms, word


@pytest.mark.notebooks
def test_a_chinese_notebook_runs_top_to_bottom_as_a_learner_runs_it(built_book):
    """ "Run All" on a Chinese notebook, from the Chinese tree the build wrote (``_build/zh/book``,
    beside its links to ``results/``): every cell runs, the setup cell first, as in the English one,
    and the facts table's citations show as author–year links, not as raw ``{cite}`` roles."""
    import nbformat
    from nbclient import NotebookClient

    path = built_book / "zh" / "book" / "phi.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert CJK.search(nb.cells[0].source)
    NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(path.parent)}}).execute()
    expected = "raises-exception"  # a cell that shows an error on purpose
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code" and expected not in c.metadata.get("tags", [])
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert not errors, errors
    # outside the book's build, a cell's Markdown shows its citations as links (its facts table)
    shown = [
        "".join(o.data["text/markdown"])
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "text/markdown" in o.get("data", {})
    ]
    assert any("](https://arxiv.org/" in text for text in shown), shown
    assert not [text for text in shown if "{cite" in text]
