"""book/plain_markdown.py: MyST citations and admonitions as plain Markdown (issue 28), for the
notebooks learners open in Jupyter or Colab, where nothing renders MyST."""

from __future__ import annotations

import importlib.util
import json
import sys
import zipfile
from pathlib import Path

import pybtex.database
import pytest

from helpers import markdown_with_myst
from plain_markdown import plain_markdown, plain_notebook, read_bib

ROOT = Path(__file__).resolve().parents[2]

BIB = pybtex.database.parse_string(
    r"""
@misc{solo2020, author = {Lebr{\'o}n, Federico}, year = {2020}, url = {https://example.org/solo}}
@misc{pair2021, author = {Smith, Ann and von Werra, Leandro}, year = {2021b},
  url = {https://example.org/pair}}
@misc{many2023, author = {Touvron, Hugo and Martin, Louis and Stone, Kevin}, year = {2023a},
  url = {https://arxiv.org/abs/2307.09288}}
@misc{others2022, author = {Ainslie, Joshua and others}, year = {2022}, url = {https://example.org/o}}
@misc{team2024, author = {{Gemma Team}}, year = {2024}}
""",
    "bibtex",
).entries


def test_one_author():
    assert plain_markdown("as shown {cite}`solo2020`.", BIB) == (
        "as shown ([Lebrón, 2020](https://example.org/solo))."
    )


def test_two_authors_keep_the_von_part_and_the_year_letter():
    assert plain_markdown("{cite}`pair2021`", BIB) == (
        "([Smith and von Werra, 2021b](https://example.org/pair))"
    )


def test_more_authors_or_others_are_et_al():
    assert plain_markdown("{cite}`many2023`", BIB) == (
        "([Touvron et al., 2023a](https://arxiv.org/abs/2307.09288))"
    )
    assert (
        plain_markdown("{cite}`others2022`", BIB)
        == "([Ainslie et al., 2022](https://example.org/o))"
    )


def test_several_keys_and_an_entry_without_url():
    assert plain_markdown("x {cite}`many2023, team2024,solo2020` y", BIB) == (
        "x ([Touvron et al., 2023a](https://arxiv.org/abs/2307.09288); Gemma Team, 2024; "
        "[Lebrón, 2020](https://example.org/solo)) y"
    )


def test_textual_citation():
    assert (
        plain_markdown("{cite:t}`solo2020` says", BIB)
        == "[Lebrón (2020)](https://example.org/solo) says"
    )


def test_unknown_key_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="'nosuch2020'"):
        plain_markdown("{cite}`solo2020,nosuch2020`", BIB)


def test_code_spans_code_blocks_math_and_links_are_left_alone():
    text = (
        "Write `{cite}` roles as ``{cite}`key` ``; $\\frac{a}{b}$ and [a link](x.md).\n\n"
        "```markdown\n{cite}`solo2020`\n```"
    )
    assert plain_markdown(text, BIB) == text


def test_admonition_with_a_nested_code_fence_becomes_a_blockquote():
    text = (
        "Before.\n\n"
        "````{admonition} What the seed list gets wrong\n"
        ":class: warning\n"
        "It says 4000 {cite}`solo2020`.\n"
        "\n"
        "```python\n"
        "x = 1  # {cite}`solo2020` in code stays\n"
        "```\n"
        "````\n"
        "After."
    )
    assert plain_markdown(text, BIB) == (
        "Before.\n\n"
        "> **What the seed list gets wrong**\n"
        ">\n"
        "> It says 4000 ([Lebrón, 2020](https://example.org/solo)).\n"
        ">\n"
        "> ```python\n"
        "> x = 1  # {cite}`solo2020` in code stays\n"
        "> ```\n"
        "After."
    )


def test_chinese_admonition_title_and_a_cell_ending_in_the_fence():
    text = "```{admonition} 种子列表错在哪里\n:class: note\n正文 {cite}`pair2021`。\n```"
    assert plain_markdown(text, BIB) == (
        "> **种子列表错在哪里**\n>\n"
        "> 正文 ([Smith and von Werra, 2021b](https://example.org/pair))。"
    )


@pytest.mark.parametrize(
    "text, rule",
    [("```{admonition}\nbody\n```", "needs a title"), ("```{admonition} T\nbody", "no closing")],
)
def test_bad_admonitions_are_value_errors(text, rule):
    with pytest.raises(ValueError, match=rule):
        plain_markdown(text, BIB)


@pytest.mark.notebooks  # writes an edition, a wheel or reads every notebook: full lane
def test_every_book_notebook_converts_and_code_cells_are_untouched():
    import nbformat

    bib = read_bib()
    changed = 0
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        plain = plain_notebook(nb, bib)
        for before, after in zip(nb.cells, plain.cells, strict=True):
            if before.cell_type != "markdown":
                assert after.source == before.source, path.name
                continue
            assert "{cite" not in after.source and "{admonition}" not in after.source, path.name
            changed += before.source != after.source
    assert changed > 100  # the book cites in most of its prose cells


def test_markdown_with_myst_finds_both():  # the check the editions' tests use can fail
    cells = [
        {"cell_type": "markdown", "source": ["see {cite}`a`"]},
        {"cell_type": "markdown", "source": "````{admonition} T\n:class: note\nx\n````"},
        {"cell_type": "code", "source": "'{cite}`a`'"},
    ]
    assert len(markdown_with_myst(cells)) == 2


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.notebooks  # writes an edition, a wheel or reads every notebook: full lane
def test_the_download_has_no_myst_in_markdown_in_either_language(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    import build_zh

    download = _load("notebook_download")
    zh_root = tmp_path / "zh"
    build_zh.write_sources(zh_root)
    for root, dest in ((download.ROOT, tmp_path / "en_dl"), (zh_root, tmp_path / "zh_dl")):
        with zipfile.ZipFile(download.write_download(dest, root)) as zf:
            notebooks = [n for n in zf.namelist() if n.endswith(".ipynb")]
            assert len(notebooks) > 25
            for name in notebooks:
                left = markdown_with_myst(json.loads(zf.read(name))["cells"])
                assert not left, (root.name, name, left)


# ---- citations in a cell's displayed Markdown (demos.registry.citations) -------------------------


def test_the_packages_citation_table_is_references_bib():
    """``demos/registry/citations.json`` is what ``python book/plain_markdown.py`` writes from
    references.bib today (rewrite it after editing the .bib)."""
    from plain_markdown import TABLE, citation_json

    assert TABLE.read_text(encoding="utf-8") == citation_json(), (
        "src/demos/registry/citations.json is stale: run `python book/plain_markdown.py`"
    )
    assert json.loads(citation_json(BIB))["pair2021"] == [
        "Smith and von Werra",
        "2021b",
        "https://example.org/pair",
    ]


@pytest.fixture
def shell(monkeypatch):
    """An IPython shell of our own (not the singleton), outside the book's build."""
    from IPython.core.interactiveshell import InteractiveShell

    from demos.registry.citations import BOOK_BUILD

    monkeypatch.delenv(BOOK_BUILD, raising=False)
    return InteractiveShell()


def _markdown_shown(shell, text: str) -> str:
    from IPython.display import Markdown

    data, _ = shell.display_formatter.format(Markdown(text))
    return data["text/markdown"]


def test_a_facts_table_shows_its_citations_as_links_outside_the_book(shell):
    from demos.registry import facts_table
    from demos.registry.citations import use_plain_citations

    table = facts_table(
        ("", "Llama 2"), [("Organisation", "Meta {cite}`touvron2023llama2`")], "Llama-2-7B"
    )
    assert "{cite}" in _markdown_shown(shell, table)  # IPython's own formatter: MyST, raw
    assert use_plain_citations(shell)
    shown = _markdown_shown(shell, table)
    assert "{cite}" not in shown
    assert (
        "| Organisation | Meta ([Touvron et al., 2023a](https://arxiv.org/abs/2307.09288)) |"
        in shown
    )


def test_the_books_kernels_keep_the_roles_for_myst(shell, monkeypatch):
    from demos.registry.citations import BOOK_BUILD, use_plain_citations

    monkeypatch.setenv(BOOK_BUILD, "1")
    assert not use_plain_citations(shell)
    assert (
        _markdown_shown(shell, "Meta {cite}`touvron2023llama2`") == "Meta {cite}`touvron2023llama2`"
    )


def test_an_unknown_key_in_displayed_markdown_names_it(shell):
    from demos.registry.citations import plain_citations

    with pytest.raises(ValueError, match="'nokey2020'"):
        plain_citations("see {cite}`nokey2020`")
    assert plain_citations("`{cite}`x`` stays") == "`{cite}`x`` stays"  # a code span
