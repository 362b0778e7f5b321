"""The built HTML book in a real browser: Playwright driving Debian's Chromium, headless.

Every page in the table of contents loads with no console error, no failed request and no visible
traceback; math is typeset by MathJax (served from the book itself); every image loads and has alt
text; every internal link (and anchor) resolves; the search page finds a model by name. Screenshots
of a chapter at desktop and phone widths are written to ``_build/screenshots`` for review.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

from booktools import toc_files

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [  # no sandbox as root; no background traffic on a machine with no network
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = pytest.mark.book

# alt text that is a file name or path (what the build writes when a figure has no description)
FILE_NAME_ALT = re.compile(r"\.(png|jpe?g|svg|gif)\b|_images/", re.IGNORECASE)


EDITIONS = ("", "zh/")  # English at the root, the Chinese edition under zh/ (scripts/build_zh.py)


def toc_pages() -> list[str]:
    """Every page of _toc.yml, in both editions."""
    return [f"{e}{f}.html" for e in EDITIONS for f in toc_files(ROOT, with_root=True)]


@pytest.fixture(scope="module")
def site(built_book):
    """Serve the built HTML on a free loopback port for the duration of the module."""
    handler = functools.partial(_QuietHandler, directory=str(built_book / "html"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", built_book / "html"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), (
        "Debian's chromium is needed: `apt-get install chromium` (make test does it)"
    )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def open_page(browser, url: str, width: int = 1280, height: int = 900):
    """Load ``url``; return the page and the problems seen while loading it."""
    page = browser.new_page(viewport={"width": width, "height": height})
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on(
        "response",
        lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
    )
    page.goto(url, wait_until="networkidle")
    return page, problems


# ---- one load per page and view -------------------------------------------------------------------
# Loading a page (to network idle, then MathJax) is most of these tests' time, and seven tests read
# every page. So each page is loaded once per view and module: "desktop" (1280 x 900), "phone"
# (390 x 844) and "touch" (a 390 x 844 touch screen, scripts/figure_text_sizes.py), and every
# read-only check of that view reads what that one load measured (``loaded``). Each check is still a
# test of its own that names the page. The load of a view takes its measurements in a fixed order,
# those each check took on its own load; the one step that changes the page, opening a chapter's
# first solution, comes last. Tests that click, tap, scroll or open a drawer load their own page.
class _Failed:
    """A measurement that raised: a test that reads it fails, naming the page and the error."""

    def __init__(self, error: Exception) -> None:
        self.text = f"{type(error).__name__}: {error}"


class PageLoad:
    """What one load of ``path`` measured, step by step (``load["math"]``, ...). A step that raised is
    kept as its error and fails every test that reads it (or the load itself); later steps still
    run, so one check's failure does not hide another's."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.steps: dict[str, object] = {}

    def step(self, name: str, measure):
        try:
            self.steps[name] = measure()
        except Exception as error:  # a Playwright timeout or error
            self.steps[name] = _Failed(error)
        return self.steps[name]

    def __getitem__(self, name: str):
        for key in ("load", name):
            value = self.steps[key]
            if isinstance(value, _Failed):
                raise AssertionError(f"{self.path}: {key} failed: {value.text}")
        return self.steps[name]

    def require(self, name: str) -> None:
        """Fail, naming the page, if step ``name`` (or the load) raised."""
        self[name]


def _measure_desktop(browser, base: str, html_root: Path, path: str) -> PageLoad:
    load = PageLoad(path)
    opened = load.step("load", lambda: open_page(browser, f"{base}/{path}", *DESKTOP))
    if isinstance(opened, _Failed):
        return load
    page, problems = opened
    try:
        load.step("problems", lambda: list(problems))  # as the load finished
        load.step("parity cells", lambda: page.evaluate(PARITY_CELLS_JS))
        load.step("exercise outputs", lambda: page.evaluate(EXERCISE_OUTPUTS_JS))
        load.step("main text", lambda: page.inner_text("main"))  # innerText: only what is rendered
        load.step("error outputs", lambda: page.locator(".output.error, .output.traceback").count())
        chapter = path in _chapter_pages()
        if chapter:
            load.step("solutions", lambda: _solution_cells(page))
        load.step("math", lambda: wait_for_math(page))
        load.step("merror", lambda: page.locator("mjx-merror").count())
        load.step("images", lambda: _images(page))
        load.step("scrolling", lambda: page.evaluate(SCROLLING_BLOCKS_JS))
        load.step("wide math", lambda: page.evaluate(WIDE_MATH_JS))
        load.step("clipped tables", lambda: page.evaluate(CLIPPED_TABLES_JS))
        load.step("main text typeset", lambda: page.inner_text("main"))
        load.step("raw tex", lambda: _raw_tex(page))
        solutions = load.steps.get("solutions")
        if chapter and not isinstance(solutions, _Failed) and solutions["cells"]:
            load.step("first solution opened", lambda: _open_first_solution(page))  # changes it
    finally:
        page.close()
    return load


def _measure_phone(browser, base: str, html_root: Path, path: str) -> PageLoad:
    load = PageLoad(path)
    opened = load.step("load", lambda: open_page(browser, f"{base}/{path}", *PHONE))
    if isinstance(opened, _Failed):
        return load
    page, _ = opened
    try:
        load.step("math", lambda: wait_for_math(page))
        load.step("overflow", lambda: page.evaluate(PAGE_OVERFLOW_JS))
        load.step("scrolling", lambda: page.evaluate(SCROLLING_BLOCKS_JS))
        load.step("phone aids", lambda: page.evaluate(PHONE_AIDS_JS))
    finally:
        page.close()
    return load


def _figure_text_sizes():
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    import figure_text_sizes

    return figure_text_sizes


def _measure_touch(browser, base: str, html_root: Path, path: str) -> PageLoad:
    sizes = _figure_text_sizes()
    load = PageLoad(path)
    page = load.step("load", lambda: sizes.open_phone_page(browser, f"{base}/{path}"))
    if isinstance(page, _Failed):
        return load
    try:
        load.step("figures", lambda: sizes.measure_page(page, html_root, path))
        load.step("figure problems", lambda: sizes.phone_figure_problems(page))
    finally:
        page.context.close()
    return load


MEASURE = {"desktop": _measure_desktop, "phone": _measure_phone, "touch": _measure_touch}


@pytest.fixture(scope="module")
def loaded(site, browser):
    """``loaded(path, view)``: the measurements of ``path`` in ``view`` (a key of ``MEASURE``), from
    one load of the page per module (per test process under pytest -n)."""
    base, html_root = site
    cache: dict[tuple[str, str], PageLoad] = {}

    def get(path: str, view: str) -> PageLoad:
        if (path, view) not in cache:
            cache[path, view] = MEASURE[view](browser, base, html_root, path)
        return cache[path, view]

    return get


def _images(page) -> list[tuple[str | None, bool, str | None]]:
    """Each image of the article: its src, whether it loaded, its alt text."""
    return [
        (
            img.get_attribute("src"),
            img.evaluate("i => i.complete && i.naturalWidth > 0"),
            img.get_attribute("alt"),
        )
        for img in page.locator("main img").all()
    ]


@pytest.mark.parametrize("path", toc_pages())
def test_page_loads_cleanly_with_math_and_images(loaded, path):
    load = loaded(path, "desktop")
    problems = load["problems"]
    assert not problems, f"{path}: {problems}"
    body = load["main text"]
    assert "Traceback (most recent call last)" not in body, f"{path} shows a traceback"
    assert load["error outputs"] == 0, f"{path} shows error output"
    if load["math"]:  # MathJax replaces each math element's content with an mjx-container
        assert load["merror"] == 0, f"{path}: MathJax could not typeset some math"
    for src, shown, alt in load["images"]:
        assert shown, f"{path}: image {src} did not load"
        alt = (alt or "").strip()
        assert alt, f"{path}: image {src} has no alt text"
        assert not FILE_NAME_ALT.search(alt), (
            f"{path}: image {src} has its file name as alt text ({alt!r}); describe the "
            "figure in the cell's metadata.mystnb.image.alt"
        )


def test_search_finds_a_model_by_name(site, browser):
    base, _ = site
    page, problems = open_page(browser, f"{base}/search.html?q=Llama")
    try:
        results = page.locator("#search-results ul.search li")
        results.first.wait_for(timeout=15000)
        links = [
            a.get_attribute("href") for a in page.locator("#search-results ul.search li a").all()
        ]
        assert any("llama2" in (href or "") for href in links), f"search for Llama found {links}"
        assert not problems, problems
    finally:
        page.close()


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])


def test_every_internal_link_resolves(site):
    _, html_root = site
    parsed: dict[Path, _Links] = {}

    def parse(path: Path) -> _Links:
        if path not in parsed:
            parser = _Links()
            parser.feed(path.read_text(errors="replace"))
            parsed[path] = parser
        return parsed[path]

    checked, broken = 0, []
    for page in sorted(html_root.rglob("*.html")):
        if "_static" in page.parts or "_sources" in page.parts:
            continue
        for href in parse(page).hrefs:
            if urlparse(href).scheme in (
                "http",
                "https",
                "mailto",
                "javascript",
            ) or href.startswith("//"):
                continue
            target, anchor = urldefrag(href)
            target_path = (page.parent / unquote(target)).resolve() if target else page
            if target_path.is_dir():
                target_path = target_path / "index.html"
            checked += 1
            if not target_path.exists():
                broken.append(f"{page.relative_to(html_root)} -> {href} (no such file)")
            elif (
                anchor
                and target_path.suffix == ".html"
                and unquote(anchor) not in parse(target_path).ids
            ):
                broken.append(f"{page.relative_to(html_root)} -> {href} (no such anchor)")
    print(f"internal links checked: {checked} on {len(parsed)} pages")
    assert checked > 0
    assert not broken, "\n".join(broken)


def test_screenshots_at_desktop_and_phone_widths(site, browser):
    base, _ = site
    out = ROOT / "_build" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    chapter = next(p for p in toc_pages() if re.search(r"book/(?!intro)", p))
    shots = [
        (edition, name, width, height)
        for edition in EDITIONS
        for name, width, height in (("desktop", 1280, 900), ("phone", 390, 844))
    ]
    for edition, name, width, height in shots:
        page, problems = open_page(browser, f"{base}/{edition}{chapter}", width, height)
        try:
            assert not problems, problems
            shot = out / f"{edition.strip('/') or 'en'}-{Path(chapter).stem}-{name}.png"
            page.screenshot(path=str(shot), full_page=False)
            assert shot.stat().st_size > 10_000, f"{shot} looks empty"
            # nothing overflows the phone's width but scrollable code and tables
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{name}: the page is {overflow}px wider than the window"
        finally:
            page.close()


def _chapter_pages() -> list[str]:
    """The pages of _toc.yml's chapters (every part but "Overview" and "Back matter"), both editions."""
    return [f"{e}{f}.html" for e in EDITIONS for f in toc_files(ROOT, chapters_only=True)]


def _solution_cells(page) -> dict:
    """Whether the Colab setup cell is on the page, and each solution cell (tag ``solution``) as
    loaded: its <details> count, whether that one is open, whether its code shows, its output."""
    cells = []
    for cell in page.locator("main div.cell.tag_solution").all():
        details = cell.locator("details")
        toggles = details.count()
        outputs = cell.locator(".cell_output")
        cells.append(
            {
                "toggles": toggles,
                "closed": details.evaluate("d => !d.open") if toggles == 1 else None,
                "code shows": cell.locator(".cell_input").is_visible(),
                "printed": outputs.first.text_content() if outputs.count() else "",
            }
        )
    return {"setup cell": "Setup for Colab" in page.content(), "cells": cells}


def _open_first_solution(page) -> str:
    """Click the first solution's toggle; its text once its code shows."""
    first = page.locator("main div.cell.tag_solution").first
    first.locator("details > summary").click()
    first.locator(".cell_input").wait_for(state="visible", timeout=5000)
    return first.inner_text()


@pytest.mark.parametrize("path", _chapter_pages())
def test_solutions_are_folded_until_clicked(loaded, path):
    """Issue 14: every solution cell (tag ``solution``) is a closed toggle; neither its code nor its
    printed answers show without a click, and one click opens it. The Colab setup cell is not on
    the page at all (tag ``remove-cell``)."""
    load = loaded(path, "desktop")
    problems = load["problems"]
    assert not problems, f"{path}: {problems}"
    solutions = load["solutions"]
    assert not solutions["setup cell"], f"{path}: the setup cell is on the page"
    cells = solutions["cells"]
    assert cells, f"{path}: no solution cell (tag 'solution') on a chapter page"
    visible = load["main text"]
    assert "def solution_" not in visible, f"{path}: a solution's code shows without a click"
    for i, cell in enumerate(cells):
        assert cell["toggles"] == 1, f"{path}: solution {i + 1} is not a toggle (hide-cell)"
        assert cell["closed"], f"{path}: solution {i + 1} is open"
        assert not cell["code shows"], f"{path}: solution {i + 1}"
        for line in (cell["printed"] or "").splitlines():
            line = line.strip()
            assert len(line) < 20 or line not in visible, (
                f"{path}: solution {i + 1}'s answer {line!r} shows without a click"
            )
    assert "def solution_" in load["first solution opened"]


# ---- what a reader sees fits the screen (issue 14) ------------------------------------------------
DESKTOP, PHONE = (1280, 900), (390, 844)
# Every <pre> a reader sees: cell code, source listings, printed output. Not counted: blocks inside a
# closed <details> (a hidden cell, a folded list) and a recorded results file shown as a text block
# (demos.book.show_recorded: a table of measurements, which scrolls inside its own box like any table).
SCROLLING_BLOCKS_JS = """() => {
  const out = [];
  for (const pre of document.querySelectorAll('main pre')) {
    if (pre.getClientRects().length === 0) continue;
    if (pre.closest('details:not([open])') && !pre.closest('summary')) continue;
    if (pre.closest('.cell_output .highlight-text')) continue;
    const over = pre.scrollWidth - pre.clientWidth;
    if (over > 1) out.push(`+${over}px: ${pre.textContent.trim().split('\\n')[0].slice(0, 60)}`);
  }
  return out;
}"""
WIDE_MATH_JS = """() => [...document.querySelectorAll('main mjx-container[display="true"]')]
  .map(m => [m.firstElementChild.getBoundingClientRect().width, m.parentElement.clientWidth,
             m.textContent.slice(0, 40)])
  .filter(([w, column]) => w > column + 1)
  .map(([w, column, text]) => `${Math.round(w)}px in a ${column}px column: ${text}`)"""
CLIPPED_TABLES_JS = """() => [...document.querySelectorAll('main table')]
  .map(t => t.closest('.pst-scrollable-table-container') || t.parentElement)
  .filter(box => box.scrollWidth > box.clientWidth + 1)
  .map(box => `${box.scrollWidth - box.clientWidth}px: ${box.textContent.trim().slice(0, 50)}`)"""


def chapter_pages() -> list[str]:
    """The model chapters: the pages of _toc.yml's "Model families" part (each has a parity cell)."""
    return [f"{f}.html" for f in toc_files(ROOT, part="Model families")]


def wait_for_math(page) -> int:
    """Wait until MathJax has typeset every math element of ``page``; return how many there are."""
    math = page.locator("div.math, span.math").count()
    if math:  # MathJax replaces each math element's content with an mjx-container
        page.wait_for_function(
            f"document.querySelectorAll('mjx-container').length >= {math}", timeout=15000
        )
    return math


PAGE_OVERFLOW_JS = "document.documentElement.scrollWidth - window.innerWidth"


@pytest.mark.parametrize("path", toc_pages())
def test_page_fits_the_desktop_width(loaded, path):
    """At 1280 px no code block scrolls sideways, no display equation is wider than its column and no
    table is clipped (the facts card's last column included)."""
    load = loaded(path, "desktop")
    load.require("math")  # measured once MathJax was done
    scrolling = load["scrolling"]
    assert not scrolling, f"{path}: {len(scrolling)} code blocks scroll sideways: {scrolling}"
    wide = load["wide math"]
    assert not wide, f"{path}: display math wider than its column: {wide}"
    clipped = load["clipped tables"]
    assert not clipped, f"{path}: tables wider than the page: {clipped}"
    main = load["main text typeset"]
    assert "set_num_threads" not in main and "Cost of this page" not in main, (
        f"{path} shows the build machine's settings or costs"
    )


def test_the_page_contents_open_from_a_button_at_desktop_width(site, browser):
    """The page's table of contents left its column to the code (book/_static/field_guide.css): at
    1280 px the list button at the top right of the article, in view after scrolling, opens it."""
    base, _ = site
    page, problems = open_page(browser, f"{base}/{chapter_pages()[0]}", *DESKTOP)
    try:
        assert not page.locator("#pst-secondary-sidebar").is_visible()
        page.mouse.wheel(0, 3000)
        page.locator(".bd-header-article button.secondary-toggle").click()
        dialog = page.locator("#pst-secondary-sidebar-modal")
        dialog.locator("nav.page-toc a").first.wait_for(timeout=5000)
        assert "Exercises" in dialog.inner_text() and not problems, problems
    finally:
        page.close()


@pytest.mark.parametrize("path", toc_pages())
def test_page_fits_a_phone(loaded, path):
    """At 390 px the page never scrolls sideways (wide math and tables scroll inside their own box),
    and code and printed output wrap, so a shape comment or a parity verdict stays on the screen."""
    load = loaded(path, "phone")
    load.require("math")  # measured once MathJax was done
    overflow = load["overflow"]
    assert overflow <= 1, f"{path}: the page is {overflow}px wider than a phone"
    scrolling = load["scrolling"]
    assert not scrolling, f"{path}: code or output cut at a phone's edge: {scrolling}"


VERDICT = re.compile(
    r"^PARITY (OK: ours = |FAILED: ours != )\S+ [0-9][\w.+]* \(torch [0-9][\w.+]*\)"
)
PER_TENSOR_LINE = re.compile(r"^\s*\d\.\d{3}e[+-]\d{2}\s+\S", re.M)
PARITY_CELLS_JS = """() => [...document.querySelectorAll('main div.cell')]
  .filter(c => (c.querySelector('.cell_input')?.textContent || '').includes('parity_report('))
  .map(c => {
    const out = c.querySelector('.cell_output');
    const folded = out ? [...out.querySelectorAll('details:not([open])')] : [];
    return {shown: out ? out.innerText : '', folded: folded.map(d => d.textContent)};
  })"""


@pytest.mark.parametrize("path", toc_pages())
def test_parity_cells_show_the_verdict_first_and_fold_the_list(loaded, path):
    """Each cell that calls parity_report: the first line of its output is the verdict, naming the
    reference and the versions compared; the per-tensor list is folded in a closed <details>."""
    cells = loaded(path, "desktop")["parity cells"]
    assert cells or path not in chapter_pages(), f"{path}: a model chapter with no parity cell"
    for cell in cells:
        lines = [line for line in cell["shown"].splitlines() if line.strip()]
        assert lines and VERDICT.match(lines[0]), f"{path}: the output starts {lines[:2]}"
        assert len(cell["folded"]) == 1, f"{path}: the per-tensor list is not folded"
        assert PER_TENSOR_LINE.search(cell["folded"][0]), f"{path}: the folded list is empty"
        assert not PER_TENSOR_LINE.search(cell["shown"]), (
            f"{path}: per-tensor lines are visible without a click"
        )


def test_parity_appendix_puts_its_summary_first_and_folds_its_tables(site, browser):
    base, _ = site
    page, _ = open_page(browser, f"{base}/book/parity_report.html", *PHONE)
    try:
        text = page.inner_text("main")
        assert "Closest to its tolerance" in text  # each section's summary, outside the fold
        assert page.locator("main table").count() >= 1
        for table in page.locator("main table").all():
            assert table.evaluate("t => !!t.closest('details:not([open])')"), (
                "a table is not folded"
            )
        # open the first table: it fits the phone, or scrolls inside its own box
        page.locator("main details.sd-dropdown summary").first.click()
        box = page.locator("main details[open] table").first
        box.wait_for(timeout=5000)
        headers = box.locator("th").all_inner_texts()
        assert [h.strip() for h in headers] == [
            "component: test",
            "setting",
            "passed",
            "error / tolerance",
        ]
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the open table widens the phone's page by {overflow}px"
    finally:
        page.close()


def test_figures_are_drawn_at_150_dpi_or_more(site):
    """Every figure a chapter's code draws is a PNG of at least 150 dots per inch (book/matplotlibrc)."""
    from PIL import Image

    _, html_root = site
    seen = 0
    for path in toc_pages():
        for src in re.findall(r'<img[^>]+src="([^"]+\.png)"', (html_root / path).read_text()):
            image = Image.open((html_root / path).parent / unquote(src))
            dpi = image.info.get("dpi")
            if dpi is None:  # not drawn by matplotlib (no pHYs chunk)
                continue
            seen += 1
            assert min(dpi) >= 149.5, f"{path}: {src} at {dpi} dpi"
    assert seen, "no matplotlib figure found"


def test_no_underscore_in_an_operator_name():
    r"""MathJax sets ``\operatorname{rotate\_half}`` with a spaced underscore: name such an operator in
    words or in code next to the equation instead (every page of _toc.yml, Markdown and notebooks)."""
    import nbformat

    found = []
    for page in toc_pages():
        source = ROOT / page.removesuffix(".html")
        for path in (source.with_suffix(".md"), source.with_suffix(".ipynb")):
            if not path.exists():
                continue
            if path.suffix == ".md":
                texts = [path.read_text()]
            else:
                texts = [c.source for c in nbformat.read(path, as_version=4).cells]
            for text in texts:
                found += [
                    f"{path.name}: {m}" for m in re.findall(r"\\operatorname\{[^}]*\\_", text)
                ]
    assert not found, found


# ---- navigation, typesetting and exercises as a reader meets them (issue 28) ----------------------
def _open_touch(browser, url: str, width: int, height: int):
    """Load ``url`` in a touch-screen page (a phone: taps, not clicks)."""
    context = browser.new_context(
        viewport={"width": width, "height": height}, has_touch=True, is_mobile=True
    )
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(url, wait_until="networkidle")
    return page, problems


# the chapter list: the chapters' links in the primary sidebar (in its drawer once opened)
CHAPTER_LINKS = "nav.bd-docs-nav a.reference.internal"


def test_the_visible_menu_button_opens_the_chapter_list_on_a_phone(site, browser):
    """At 390 x 844 a tap on the ☰ in view (the article header's; the page header's, the one the
    themes wire, is hidden) opens the chapter list in its drawer, and a chapter can be picked."""
    base, _ = site
    page, problems = _open_touch(browser, f"{base}/{chapter_pages()[0]}", *PHONE)
    try:
        buttons = page.locator("button.primary-toggle")
        visible = [b for b in buttons.all() if b.is_visible()]
        assert len(visible) == 1, f"{len(visible)} chapter-list buttons in view"
        dialog = page.locator("#pst-primary-sidebar-modal")
        assert not dialog.evaluate("d => d.open")
        visible[0].tap()
        page.wait_for_function(
            "document.getElementById('pst-primary-sidebar-modal').open", timeout=5000
        )
        links = dialog.locator(CHAPTER_LINKS)
        links.first.wait_for(state="visible", timeout=5000)
        titles = [t.strip() for t in links.all_inner_texts()]
        pages = toc_files(ROOT, with_root=True)  # one edition's
        assert len(titles) >= len(pages) - 1, titles  # every page but the root
        target = dialog.locator(CHAPTER_LINKS, has_text="GSM8K").first
        target.tap()
        page.wait_for_url("**/gsm8k.html", timeout=10000)
        assert not problems, problems
    finally:
        page.context.close()


def test_the_menu_button_hides_and_shows_the_chapter_list_on_the_desktop(site, browser):
    """At 1280 x 800 the chapter list is a column beside the article; the ☰ in view hides it (more
    room for the code) and a second click brings it back."""
    base, _ = site
    page, problems = open_page(browser, f"{base}/{chapter_pages()[0]}", 1280, 800)
    try:
        sidebar = page.locator("#pst-primary-sidebar")
        assert sidebar.locator(CHAPTER_LINKS).first.is_visible()
        button = page.locator(".bd-header-article button.primary-toggle")
        assert button.is_visible()
        button.click()
        sidebar.locator(CHAPTER_LINKS).first.wait_for(state="hidden", timeout=5000)
        button.click()
        sidebar.locator(CHAPTER_LINKS).first.wait_for(state="visible", timeout=5000)
        assert not page.evaluate("document.getElementById('pst-primary-sidebar-modal').open")
        assert not problems, problems
    finally:
        page.close()


def test_the_page_contents_drawer_closes_once_a_section_is_picked(site, browser):
    """ "On this page" opens as a drawer that greys the page; picking a section closes it and scrolls
    to the section (it stayed open, covering the page)."""
    base, _ = site
    page, problems = _open_touch(browser, f"{base}/{chapter_pages()[0]}", *PHONE)
    try:
        page.locator(".bd-header-article button.secondary-toggle").tap()
        dialog = page.locator("#pst-secondary-sidebar-modal")
        link = dialog.locator("nav.page-toc a", has_text="Exercises").first
        link.wait_for(state="visible", timeout=5000)
        link.tap()
        page.wait_for_function(
            "!document.getElementById('pst-secondary-sidebar-modal').open", timeout=5000
        )
        assert page.evaluate("location.hash") == "#exercises"
        near_top = "(() => { const t = document.getElementById('exercises')"
        near_top += f".getBoundingClientRect().top; return t >= 0 && t < {PHONE[1] // 3}; }})()"
        page.wait_for_function(near_top, timeout=5000)  # the theme scrolls smoothly
        assert not problems, problems
    finally:
        page.context.close()


# Every token MathJax typeset (identifiers, operators, numbers, text): a backslash in one is TeX
# that was not expanded (\textbackslash or \_ inside \text{}, an unknown macro's name shown as text).
RAW_TEX_JS = """() => {
  const out = [];
  for (const item of MathJax.startup.document.math) {
    const mml = MathJax.startup.toMML(item.root);
    const tokens = [...mml.matchAll(/<(mi|mo|mn|mtext|ms)\\b[^>]*>([^<]*)</g)].map(m => m[2]);
    const raw = tokens.filter(t => t.includes('\\\\'));
    if (raw.length || mml.includes('<merror')) out.push(`${item.math.trim().slice(0, 80)} -> ${raw}`);
  }
  return out;
}"""


def test_raw_tex_detector_finds_unexpanded_macros(site, browser):
    """The check below can fail: typeset on a chapter page by the book's own MathJax, three forms
    issue 28 found and an unknown macro are reported; the same name in \\mathtt is not."""
    base, _ = site
    page, _ = open_page(browser, f"{base}/{chapter_pages()[0]}", *DESKTOP)
    try:
        wait_for_math(page)
        page.evaluate(
            r"""async () => {
              const box = document.createElement('p');
              box.textContent = String.raw`\(\text{acc\_norm}\) \(\texttt{"\textbackslash n"}\)
                \(\text{rotary\_pct}\) \(x \unknownmacro\) \(\mathtt{acc\_norm}\)`;
              document.body.append(box);
              await MathJax.typesetPromise([box]);
            }"""
        )
        found = [f.split(" -> ")[0] for f in page.evaluate(RAW_TEX_JS)]
        assert sorted(found) == sorted(
            [
                r"\text{acc\_norm}",
                r'\texttt{"\textbackslash n"}',
                r"\text{rotary\_pct}",
                r"x \unknownmacro",
            ]
        ), found
    finally:
        page.close()


def _raw_tex(page) -> list[str]:
    """RAW_TEX_JS's findings on a page with math (none without); call once MathJax is done."""
    return page.evaluate(RAW_TEX_JS) if page.locator("div.math, span.math").count() else []


@pytest.mark.parametrize("path", toc_pages())
def test_no_raw_tex_on_the_page(loaded, path):
    """No equation shows a TeX command or an escaped underscore as text (MathJax expands no macro
    inside \\text{}: write a name in \\mathtt{} or in code next to the equation)."""
    load = loaded(path, "desktop")
    load.require("math")  # measured once MathJax was done
    raw = load["raw tex"]
    assert not raw, f"{path}: raw TeX in {len(raw)} equations: {raw}"


EXERCISE_OUTPUTS_JS = """() => [...document.querySelectorAll('main div.cell')]
  .filter(c => !c.classList.contains('tag_solution'))
  .filter(c => (c.querySelector('.cell_input')?.textContent || '').includes('your code here'))
  .map(c => (c.querySelector('.cell_output')?.innerText || '').trim())"""


@pytest.mark.parametrize("path", _chapter_pages())
def test_exercises_say_how_to_answer_instead_of_failing(loaded, path):
    """An exercise on the web page cannot be answered: its checker's output says what to do (write
    the answer in the cell, run it again), with no red ❌."""
    outputs = loaded(path, "desktop")["exercise outputs"]
    assert outputs, f"{path}: no exercise cell (with '# your code here') on a chapter page"
    for i, text in enumerate(outputs):
        assert "❌" not in text, f"{path}: exercise {i + 1} shows {text[:120]!r}"
        assert text.startswith("✏️") and "run the cell again" in text, (
            f"{path}: exercise {i + 1} does not say how to answer: {text[:160]!r}"
        )


# ---- reading aids on a phone (issue 28) ------------------------------------------------------------
PHONE_AIDS_JS = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  await new Promise(r => setTimeout(r, 50));  // field_guide.js marks the boxes after typesetting
  const shown = el => el.getClientRects().length > 0 && !el.closest('details:not([open])');
  const figures = [...document.querySelectorAll('main img')].filter(shown)
    .filter(img => { const a = img.closest('a'); return !a || a.href !== img.src; })
    .map(img => img.getAttribute('src'));
  const uncued = [...document.querySelectorAll(
      ".pst-scrollable-table-container, mjx-container[display='true'], main pre")]
    .filter(shown)
    .filter(box => box.scrollWidth > box.clientWidth + 1)
    .filter(box => {
      const block = (box.matches('mjx-container') && box.closest('div.math')) || box;
      const cue = block.previousElementSibling;
      return !box.classList.contains('fg-scrolls') || !cue || !cue.classList.contains('fg-scroll-cue')
        || cue.hidden || cue.getClientRects().length === 0;
    })
    .map(box => `${box.tagName.toLowerCase()}: ${box.textContent.trim().slice(0, 50)}`);
  // wrapped code lines whose continuation starts left of their own indentation + 2 columns
  const lost = [];
  let wrapped = 0;
  for (const pre of [...document.querySelectorAll('main div.highlight pre')].filter(shown)) {
    const probe = document.createElement('span');
    probe.textContent = '0'.repeat(20);
    pre.append(probe);
    const ch = probe.getBoundingClientRect().width / 20;
    probe.remove();
    const lines = pre.querySelectorAll('.fg-line');
    const units = lines.length ? [...lines] : [pre];
    for (const line of units) {
      const range = document.createRange();
      range.selectNodeContents(line);
      const rects = [...range.getClientRects()].filter(r => r.width > 0);
      if (rects.length < 2) continue;
      const top = rects[0].top;
      const next = rects.filter(r => r.top > top + 2);
      if (!next.length) continue;
      wrapped += 1;
      const indent = line.textContent.match(/^ */)[0].length;
      const left = line === pre  // no line spans: the listing as the theme left it
        ? pre.getBoundingClientRect().left + parseFloat(getComputedStyle(pre).paddingLeft)
        : line.getBoundingClientRect().left;
      const start = left + (line === pre ? 2 : indent + 2) * ch;
      if (next.some(r => r.left < start - 1)) lost.push(line.textContent.trim().slice(0, 50));
    }
  }
  // the listings' text (what the copy button copies) is the code as the server sent it
  const sent = new DOMParser().parseFromString(await (await fetch(location.href)).text(), 'text/html');
  const original = [...sent.querySelectorAll('main div.highlight pre')].map(p => p.textContent);
  const now = [...document.querySelectorAll('main div.highlight pre')].map(p => p.textContent);
  const changed = now.filter((text, i) => text !== original[i]).map(t => t.slice(0, 50));
  return {figures, uncued, lost, wrapped, changed};
}"""


@pytest.mark.parametrize("path", toc_pages())
def test_a_phone_reader_can_enlarge_figures_see_what_scrolls_and_read_wrapped_code(loaded, path):
    """At 390 px: every figure is a link to its full-size image; every table, equation or listing
    wider than the screen carries a visible cue that it scrolls; a wrapped line of code continues
    under its own indentation, further in (Python's indentation is not lost), and the listing's
    text, which the copy button copies, is the code unchanged."""
    found = loaded(path, "phone")["phone aids"]
    print(f"{path}: {found['wrapped']} wrapped code lines, {len(found['lost'])} lose their indent")
    assert not found["figures"], (
        f"{path}: figures that do not link to their image: {found['figures']}"
    )
    assert not found["uncued"], f"{path}: boxes that scroll with no cue: {found['uncued']}"
    assert not found["changed"], f"{path}: listings whose text changed: {found['changed']}"
    assert not found["lost"], (
        f"{path}: {len(found['lost'])} of {found['wrapped']} wrapped code lines continue left of "
        f"their indentation: {found['lost'][:5]}"
    )


def test_search_finds_chinese_words_in_the_chinese_edition(site, browser):
    """Sphinx indexes the Chinese edition with jieba (requirements.txt): a word finds its pages."""
    base, _ = site
    page, problems = open_page(browser, f"{base}/zh/search.html?q=注意力")
    try:
        page.locator("#search-results ul.search li").first.wait_for(timeout=15000)
        links = [
            a.get_attribute("href") for a in page.locator("#search-results ul.search li a").all()
        ]
        assert any("mistral" in (href or "") for href in links), (
            f"search for 滑动窗口 found {links}"
        )
        assert not problems, problems
    finally:
        page.close()


@pytest.mark.parametrize(("edition", "label"), [("", "中文"), ("zh/", "English")])
@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1280px", "390px"])
def test_the_language_link_opens_the_same_page_in_the_other_language(
    site, browser, edition, label, size
):
    base, _ = site
    page, problems = open_page(browser, f"{base}/{edition}book/mistral.html", *size)
    try:
        link = page.locator("a.fg-language")
        assert link.is_visible() and link.inner_text().strip() == label
        link.click()
        page.wait_for_load_state("networkidle")
        other = "zh/" if edition == "" else ""
        assert page.url == f"{base}/{other}book/mistral.html", page.url
        assert page.locator("html").get_attribute("lang") == ("zh-CN" if other else "en")
        assert not problems, problems
    finally:
        page.close()


# ---- figures a phone reader can read (issue 28) ---------------------------------------------------
@pytest.mark.parametrize("path", toc_pages())
def test_figure_text_is_at_least_9_css_px_on_a_phone(loaded, path):
    """At 390 px, the smallest text of every figure is at least 9 CSS px: its smallest font size as
    drawn (recorded in the PNG by demos.display.record_figure_text_sizes) x dpi / 72 x the width
    Chromium shows it at / its natural width (scripts/figure_text_sizes.py, which measures). A figure
    wider than the screen at that size scrolls sideways in its own box, with a visible cue, and links
    to its full-size image; the page itself never scrolls sideways."""
    sizes = _figure_text_sizes()
    load = loaded(path, "touch")
    figures = load["figures"]
    found = load["figure problems"]
    unmeasured = [f["image"] for f in figures if f["smallest_text_px"] is None]
    assert not unmeasured, f"{path}: figures with no recorded font size: {unmeasured}"
    small = [
        f"{f['image']}: {f['smallest_text_px']} px ({f['smallest_pt']} pt, shown "
        f"{f['shown_px']} of {f['natural_px']} px)"
        for f in figures
        if f["smallest_text_px"] < sizes.LEGIBLE_PX
    ]
    assert not small, f"{path}: figure text under {sizes.LEGIBLE_PX} CSS px at 390 px: {small}"
    assert not found["uncued"], f"{path}: figures that scroll with no cue: {found['uncued']}"
    assert not found["unlinked"], f"{path}: figures not linked to their image: {found['unlinked']}"
    assert found["page_width"] <= sizes.PHONE[0] + 1, (
        f"{path}: the page is {found['page_width']} px wide: a figure widens it"
    )
