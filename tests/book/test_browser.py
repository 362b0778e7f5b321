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
import yaml

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


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [f"{f}.html" for f in files]


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


@pytest.mark.parametrize("path", toc_pages())
def test_page_loads_cleanly_with_math_and_images(site, browser, path):
    base, _ = site
    page, problems = open_page(browser, f"{base}/{path}")
    try:
        assert not problems, f"{path}: {problems}"
        body = page.inner_text("main")
        assert "Traceback (most recent call last)" not in body, f"{path} shows a traceback"
        assert page.locator(".output.error, .output.traceback").count() == 0, (
            f"{path} shows error output"
        )
        math = page.locator("div.math, span.math").count()
        if math:  # MathJax replaces each math element's content with an mjx-container
            page.wait_for_function(
                f"document.querySelectorAll('mjx-container').length >= {math}", timeout=15000
            )
            assert page.locator("mjx-merror").count() == 0, (
                f"{path}: MathJax could not typeset some math"
            )
        for img in page.locator("main img").all():
            src = img.get_attribute("src")
            assert img.evaluate("i => i.complete && i.naturalWidth > 0"), (
                f"{path}: image {src} did not load"
            )
            assert (img.get_attribute("alt") or "").strip(), f"{path}: image {src} has no alt text"
    finally:
        page.close()


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
    for name, width, height in (("desktop", 1280, 900), ("phone", 390, 844)):
        page, problems = open_page(browser, f"{base}/{chapter}", width, height)
        try:
            assert not problems, problems
            shot = out / f"{Path(chapter).stem}-{name}.png"
            page.screenshot(path=str(shot), full_page=False)
            assert shot.stat().st_size > 10_000, f"{shot} looks empty"
            # nothing overflows the phone's width but scrollable code and tables
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{name}: the page is {overflow}px wider than the window"
        finally:
            page.close()


def _chapter_pages() -> list[str]:
    """The pages of _toc.yml's chapters (every part but "Overview" and "Back matter")."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [
        f"{c['file']}.html"
        for part in toc["parts"]
        if part["caption"] not in ("Overview", "Back matter")
        for c in part["chapters"]
    ]


@pytest.mark.parametrize("path", _chapter_pages())
def test_solutions_are_folded_until_clicked(site, browser, path):
    """Issue 14: every solution cell (tag ``solution``) is a closed toggle; neither its code nor its
    printed answers show without a click, and one click opens it. The Colab setup cell is not on
    the page at all (tag ``remove-cell``)."""
    base, _ = site
    page, problems = open_page(browser, f"{base}/{path}")
    try:
        assert not problems, f"{path}: {problems}"
        assert "Setup for Colab" not in page.content(), f"{path}: the setup cell is on the page"
        cells = page.locator("main div.cell.tag_solution").all()
        assert cells, f"{path}: no solution cell (tag 'solution') on a chapter page"
        visible = page.inner_text("main")  # innerText: only what is rendered
        assert "def solution_" not in visible, f"{path}: a solution's code shows without a click"
        for i, cell in enumerate(cells):
            details = cell.locator("details")
            assert details.count() == 1, f"{path}: solution {i + 1} is not a toggle (hide-cell)"
            assert details.evaluate("d => !d.open"), f"{path}: solution {i + 1} is open"
            assert not cell.locator(".cell_input").is_visible(), f"{path}: solution {i + 1}"
            outputs = cell.locator(".cell_output")
            printed = outputs.first.text_content() if outputs.count() else ""
            for line in (printed or "").splitlines():
                line = line.strip()
                assert len(line) < 20 or line not in visible, (
                    f"{path}: solution {i + 1}'s answer {line!r} shows without a click"
                )
        first = cells[0]
        first.locator("details > summary").click()
        first.locator(".cell_input").wait_for(state="visible", timeout=5000)
        assert "def solution_" in first.inner_text()
    finally:
        page.close()
