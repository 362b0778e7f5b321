"""How large the smallest text of every figure is on a phone, in CSS pixels, page by page.

    python scripts/figure_text_sizes.py                 # _build/html at 390 px: table + JSON
    python scripts/figure_text_sizes.py --out FILE.json  # somewhere else (the "before" record)

For each page of ``_toc.yml`` in both editions (English at the root, Chinese under ``zh/``), the page
is opened in Chromium (Playwright, a touch screen 390 x 844) and, for each figure, the smallest text
a reader sees is

    smallest font size (pt) x dpi / 72 x displayed width / natural width      (CSS px)

The font size is measured when the figure is drawn, not assumed: ``demos.display.
record_figure_text_sizes`` writes the smallest size any drawn text has into the PNG (text chunk
``demos.display.FONT_KEY``), and its dots per inch are the PNG's pHYs. The displayed width is the
image's width on the page as Chromium lays it out (``getBoundingClientRect``); the natural width is
the PNG's width in pixels. A figure without the size in its PNG (not drawn by a notebook, or drawn
before the hook existed) is listed with no size, and counts as a failure in
``tests/book/test_browser.py``, which uses ``measure_page`` from here.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))
sys.path.insert(0, str(ROOT / "src"))
from booktools import toc_files  # noqa: E402
from demos.display import FONT_KEY  # noqa: E402

EDITIONS = ("", "zh/")
PHONE = (390, 844)
LEGIBLE_PX = 9.0  # the smallest text a figure may show at 390 px (issue 28)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]

# the article's images (not the theme's: the launch buttons' logos live under _static/)
FIGURES = 'article img:not([src*="_static/"])'
# every figure, with its laid-out width and its natural (file) width
FIGURES_JS = """() => [...document.querySelectorAll(__FIGURES__)].map((img) => {
  const box = img.getBoundingClientRect();
  return {src: img.currentSrc || img.src, shown: box.width, natural: img.naturalWidth};
})""".replace("__FIGURES__", repr(FIGURES))


# what a phone reader needs around a figure: a figure wider than its box sits in a box that scrolls
# (.fg-scrolls, book/_static/field_guide.js) after a visible cue, and every figure links to its image
PROBLEMS_JS = """() => {
  const imgs = [...document.querySelectorAll(__FIGURES__)];
  const uncued = imgs.filter((img) => {
    const box = img.closest("a.fg-full-size");
    if (!box || box.scrollWidth <= box.clientWidth + 1) return false;
    const cue = box.previousElementSibling;
    const cued = cue && cue.classList.contains("fg-scroll-cue") && !cue.hidden &&
      cue.getBoundingClientRect().height > 0;
    return !(box.classList.contains("fg-scrolls") && cued);
  });
  const unlinked = imgs.filter((img) => !img.closest("a[href]"));
  return {
    uncued: uncued.map((img) => img.getAttribute("src")),
    unlinked: unlinked.map((img) => img.getAttribute("src")),
    page_width: document.documentElement.scrollWidth,
  };
}""".replace("__FIGURES__", repr(FIGURES))


def phone_figure_problems(page) -> dict:
    """Figures on the loaded ``page`` that scroll with no cue or link to nothing; the page's width."""
    return page.evaluate(PROBLEMS_JS)


def toc_pages(root: Path = ROOT) -> list[str]:
    """Every page of _toc.yml, in both editions."""
    return [f"{e}{f}.html" for e in EDITIONS for f in toc_files(root, with_root=True)]


def png_text_size(path: Path) -> tuple[float | None, float | None]:
    """The smallest font size (pt) recorded in the PNG at ``path``, and its dots per inch."""
    from PIL import Image

    with Image.open(path) as image:
        info = image.info
    size = info.get(FONT_KEY)
    dpi = info.get("dpi")
    return (float(size) if size is not None else None, float(dpi[0]) if dpi else None)


def measure_page(page, html_root: Path, url_path: str) -> list[dict]:
    """The figures of the loaded ``page`` (whose file is ``html_root / url_path``): one dict each."""
    figures = []
    for found in page.evaluate(FIGURES_JS):
        local = html_root / unquote(urlparse(found["src"]).path).lstrip("/")
        pt, dpi = png_text_size(local) if local.suffix == ".png" else (None, None)
        px = None
        if pt is not None and dpi and found["natural"]:
            px = pt * dpi / 72 * found["shown"] / found["natural"]
        figures.append(
            {
                "image": local.relative_to(html_root).as_posix(),
                "smallest_pt": pt,
                "dpi": round(dpi, 1) if dpi else None,
                "shown_px": round(found["shown"], 1),
                "natural_px": found["natural"],
                "smallest_text_px": round(px, 2) if px is not None else None,
            }
        )
    return figures


@contextmanager
def served(html_root: Path) -> Iterator[str]:
    """Serve ``html_root`` on a free loopback port."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address) -> None:
            pass  # the browser dropping a connection it no longer needs (a broken pipe)

    handler = functools.partial(Quiet, directory=str(html_root))
    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def open_phone_page(browser, url: str):
    """``url`` in a touch-screen page 390 px wide, loaded, its images decoded."""
    context = browser.new_context(
        viewport={"width": PHONE[0], "height": PHONE[1]}, has_touch=True, is_mobile=True
    )
    page = context.new_page()
    page.goto(url, wait_until="networkidle")
    page.wait_for_function("[...document.images].every((i) => i.complete)")
    return page


def measure(html_root: Path) -> dict[str, list[dict]]:
    """Every page's figures at 390 px, by page (pages without figures included, with [])."""
    from playwright.sync_api import sync_playwright

    results = {}
    with served(html_root) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            for path in toc_pages():
                page = open_phone_page(browser, f"{base}/{path}")
                try:
                    results[path] = measure_page(page, html_root, path)
                finally:
                    page.context.close()
        finally:
            browser.close()
    return results


def smallest(figures: list[dict]) -> float | None:
    sizes = [f["smallest_text_px"] for f in figures if f["smallest_text_px"] is not None]
    return min(sizes, default=None)


def table(results: dict[str, list[dict]]) -> str:
    lines = [f"{'page':40} {'figures':>7} {'smallest text px':>17} {'below 9 px':>10}"]
    for path, figures in results.items():
        if not figures:
            continue
        low = smallest(figures)
        below = sum(
            1
            for f in figures
            if f["smallest_text_px"] is None or f["smallest_text_px"] < LEGIBLE_PX
        )
        shown = "unknown" if low is None else f"{low:.2f}"
        lines.append(f"{path:40} {len(figures):7d} {shown:>17} {below:10d}")
    every = [f for figures in results.values() for f in figures]
    below = sum(1 for f in every if (f["smallest_text_px"] or 0) < LEGIBLE_PX)
    lines.append(
        f"{len(every)} figures on {sum(map(bool, results.values()))} pages; "
        f"{below} with text under {LEGIBLE_PX:g} CSS px at {PHONE[0]} px"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "figure_text_sizes.json")
    args = parser.parse_args()
    results = measure(args.html.resolve())
    print(table(results))
    record = {
        "width_px": PHONE[0],
        "formula": "smallest_pt * dpi / 72 * shown_px / natural_px",
        "pages": {
            path: {"smallest_text_px": smallest(figures), "figures": figures}
            for path, figures in results.items()
        },
    }
    args.out.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
