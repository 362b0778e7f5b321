"""Small fixes to the HTML build, so a page loads cleanly with no network and no console errors.

1. MathJax 3 is served from the built book instead of a CDN, so math renders offline.

The MathJax files come from the PyPI package ``django-static-mathjax`` (pinned in requirements.txt;
it has no dependencies and ships MathJax's ``es5`` build). Only the combined TeX-to-CHTML component
and its web fonts are copied into ``_static/mathjax``.

2. Each inline or linked script is emitted once per page. sphinx-thebe 0.3.1 registers its
   configuration script on every ``env-before-read-docs`` event, which Jupyter Book fires twice, and a
   page with the duplicate raises "Identifier 'THEBE_JS_URL' has already been declared".

3. The book's own style sheet, ``book/_static/field_guide.css`` (what it changes, and why, is written
   in it): code and math that fit the column at 1280 px, outputs and code that wrap on a phone; and
   ``field_guide.js``, which makes the article header's ☰ and contents buttons open the chapter list
   and the page's table of contents, closes a drawer once a link is picked, links each figure to its
   full-size image, marks what scrolls sideways and keeps a wrapped code line under its indentation.

4. The two editions link each other: every page carries ``<link rel="alternate" hreflang=...>`` to the
   same page in the other language (English at the root, Chinese under ``zh/``, scripts/build_zh.py),
   which ``field_guide.js`` shows as a 中文 / English link in the article header. In the Chinese
   edition, the facts cards' labels, which a code cell prints in English, are translated from the
   catalog ``locales/zh_CN/LC_MESSAGES/_book.po`` (book/translations.py).

5. A figure stays legible on a phone: each image a notebook draws records the smallest font size of
   its text (``demos.display.record_figure_text_sizes``, a PNG text chunk) and its dots per inch; the
   image gets the class ``fg-legible-N``, N the narrowest width in CSS px at which that text is still
   ``LEGIBLE_PX`` high, and ``field_guide.js`` gives the image that minimum width: a figure that would
   shrink below it on a narrow screen scrolls sideways in its own box instead, with a cue
   (``scripts/figure_text_sizes.py`` measures the result; ``tests/book/test_browser.py`` holds it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx

COMPONENT = "tex-chtml.js"  # TeX input, CommonHTML output, with the AMS extensions the book uses
STATIC = Path(__file__).resolve().parents[1] / "_static"  # book/_static
STYLE, SCRIPT = "field_guide.css", "field_guide.js"


def _es5_dir() -> Path:
    import mathjax  # the django-static-mathjax package

    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


def _set_path(app: Sphinx) -> None:
    if app.builder.format == "html":
        app.config.mathjax_path = f"mathjax/{COMPONENT}"  # relative to _static


def _copy_files(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    src, dest = _es5_dir(), Path(app.outdir) / "_static" / "mathjax"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / COMPONENT, dest / COMPONENT)
    fonts = Path("output") / "chtml" / "fonts" / "woff-v2"
    shutil.copytree(src / fonts, dest / fonts, dirs_exist_ok=True)


def _add_static(app: Sphinx, config) -> None:
    if str(STATIC) not in map(str, config.html_static_path):
        config.html_static_path.append(str(STATIC))


def _dedupe_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    scripts, seen = context.get("script_files"), set()
    if not scripts:
        return
    unique = []
    for script in scripts:
        # an inline script may come with filename None or "": the same script either way
        key = (
            str(getattr(script, "filename", script) or ""),
            repr(getattr(script, "attributes", None)),
        )
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def _is_chinese(app: Sphinx) -> bool:
    return str(app.config.language or "").startswith("zh")


def _alternate(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """The same page in the other edition, as a relative link in the page's head."""
    up = "../" * pagename.count("/")
    if _is_chinese(app):
        href, lang = f"{up}../{pagename}.html", "en"
    else:
        href, lang = f"{up}zh/{pagename}.html", "zh-CN"
    tag = f'<link rel="alternate" hreflang="{lang}" href="{href}" />\n'
    context["metatags"] = context.get("metatags", "") + tag


def _card_labels(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Chinese edition: translate the facts cards' labels inside cell outputs (catalog ``_book``)."""
    if not _is_chinese(app):
        return
    import sys

    book = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(book))
    import translations

    table = translations.translations(translations.BOOK_CATALOG)
    for output in doctree.findall(nodes.Element):
        if "cell_output" not in output.get("classes", []):
            continue
        for text in list(output.findall(nodes.Text)):
            zh = table.get(text.astext().strip())
            if zh and text.parent is not None:
                text.parent.replace(text, nodes.Text(zh))


LEGIBLE_PX = 9  # the smallest text a figure may show, in CSS px (issue 28)
FONT_KEY = "field-guide:smallest-font-pt"  # demos.display.FONT_KEY (the book does not import demos)


def legible_width(path: Path) -> int | None:
    """The narrowest width (CSS px) at which the smallest text of the PNG at ``path`` is LEGIBLE_PX.

    None when the PNG records no font size (it was not drawn by a notebook's matplotlib).
    """
    import math

    from PIL import Image

    with Image.open(path) as image:
        size, dpi, width = image.info.get(FONT_KEY), image.info.get("dpi"), image.width
    if size is None or not dpi or float(size) <= 0:
        return None
    text_px = float(size) * float(dpi[0]) / 72  # the smallest text's height in the image's pixels
    return math.ceil(LEGIBLE_PX * width / text_px)


def _legible_figures(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Give each notebook figure the class ``fg-legible-N`` (item 5 above)."""
    for image in doctree.findall(nodes.image):
        candidate = image.get("candidates", {}).get("*") or image.get("uri", "")
        path = Path(app.srcdir) / candidate.lstrip("/")
        if path.suffix.lower() != ".png" or not path.is_file():
            continue
        width = legible_width(path)
        if width is not None:
            image["classes"].append(f"fg-legible-{width}")


def setup(app: Sphinx) -> dict:
    app.connect("doctree-resolved", _legible_figures)
    app.connect("html-page-context", _alternate)
    app.connect("doctree-resolved", _card_labels)
    app.connect(
        "html-page-context", _dedupe_scripts, priority=900
    )  # after the handlers that add scripts
    app.connect("builder-inited", _set_path)
    app.connect("config-inited", _add_static)
    app.add_css_file(STYLE)
    app.add_js_file(SCRIPT)
    app.connect("build-finished", _copy_files)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
