"""Build the Chinese edition (中文版) into ``_build/html/zh/``, from the English sources and ``locales/``.

    python scripts/build_zh.py      # what scripts/build_book.py runs after the English edition

1. ``write_sources`` writes a Chinese copy of the book's source tree into ``_build/zh/``: every page of
   ``_toc.yml`` with its prose from ``locales/zh_CN/LC_MESSAGES/<page>.po`` (book/translations.py), its code
   cells the English cells unchanged; ``_config.yml`` and ``_toc.yml`` with the title and captions
   translated (catalog ``_book``), ``language: zh_CN`` and the English build's execution cache; and
   links to everything else the pages use (``book/_ext``, ``book/_static``, ``references.bib``,
   ``results/``, ``src/``).
2. ``jupyter-book build _build/zh -W --keep-going --all`` renders it. jupyter-cache finds each page
   under the hash of its code cells, which are the English ones, so no notebook runs a second time;
   a build that executes one fails (its code differs from the English: a bug here).
3. The HTML is copied to ``_build/html/zh/``, with the Chinese notebooks' download beside it
   (``_build/html/zh/_downloads/field-guide-notebooks.zip``).

A message with no current translation stays English on the Chinese page, and the build says how many;
``tests/book/test_translation.py`` (``make test``) fails on it, naming page and message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))
sys.path.insert(0, str(ROOT / "scripts"))
import translations  # noqa: E402
from notebook_download import write_download  # noqa: E402

BUILD = ROOT / "_build"
ZH_ROOT = BUILD / "zh"  # the Chinese source tree (generated; never edited)
ZH_HTML = BUILD / "html" / "zh"
CACHE = BUILD / ".jupyter_cache"
# what the pages, the build and the download read beside the pages, linked from the source tree
LINKED = ["references.bib", "results", "src", "pyproject.toml", "README.md", "requirements.txt"]


def _link(target: Path, link: Path) -> None:
    if link.is_symlink() or link.exists():
        link.unlink() if link.is_symlink() or link.is_file() else shutil.rmtree(link)
    link.symlink_to(os.path.relpath(target, link.parent))


def book_table() -> dict[str, str]:
    """The translations of the book's own strings (title, captions, card labels)."""
    return translations.translations(translations.BOOK_CATALOG)


def write_sources(out: Path = ZH_ROOT, root: Path = ROOT) -> dict[str, list[str]]:
    """Write the Chinese source tree into ``out``; returns ``{page: [messages kept English]}``."""
    book = out / "book"
    if book.exists():
        for old in book.iterdir():  # pages of a previous build, and the links
            old.unlink() if old.is_symlink() or old.is_file() else shutil.rmtree(old)
    book.mkdir(parents=True, exist_ok=True)
    pages = translations.pages(root)
    missing = {page: translations.write_page(page, book, root) for page in pages}
    written = {p.name for p in book.iterdir()}
    for item in (root / "book").iterdir():
        if item.name not in written and item.name not in {"__pycache__", ".ipynb_checkpoints"}:
            _link(item, book / item.name)
    for name in LINKED:
        if (root / name).exists():
            _link(root / name, out / name)

    table = book_table()
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    config["title"] = table.get(config["title"], config["title"])
    config.setdefault("execute", {})["cache"] = str(CACHE)  # the English build's executions
    sphinx_config = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx_config["language"] = translations.LANGUAGE
    for key, english in translations.CODE_PROMPTS.items():  # a folded cell's toggle
        sphinx_config[key] = table.get(english, english)
    config.setdefault("launch_buttons", {})["colab_url"] = ""  # Colab would open the English page
    (out / "_config.yml").write_text(
        "# Written by scripts/build_zh.py from the English _config.yml: do not edit\n"
        + yaml.safe_dump(config, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    for part in toc.get("parts", []):
        part["caption"] = table.get(part["caption"], part["caption"])
    (out / "_toc.yml").write_text(
        "# Written by scripts/build_zh.py from the English _toc.yml: do not edit\n"
        + yaml.safe_dump(toc, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    return {page: m for page, m in missing.items() if m}


def render(root: Path) -> tuple[int, bool]:
    """``jupyter-book build root -W --keep-going --all``, its log printed as it comes; returns its exit
    status and whether it executed a notebook (which a build from a full cache never does).

    --all writes every page, even when Sphinx finds no source changed (else an edit to the style sheet
    alone ends in "no targets are out of date", and Sphinx copies no static file); pages are still
    read again only when they changed. A failed build forgets its saved environment: a page with a
    warning is not read again by an incremental build, so the next build would pass it silently.
    """
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(root), "-W", "--keep-going", "--all"]
    executed_inside = False
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        for line in proc.stdout:
            print(line, end="", flush=True)
            executed_inside |= "Executing notebook using" in line
    if proc.returncode != 0:
        (root / "_build" / ".doctrees" / "environment.pickle").unlink(missing_ok=True)
    return proc.returncode, executed_inside


def build(out: Path = ZH_ROOT) -> int:
    """Write the sources, render them, copy the HTML to ``_build/html/zh``; returns an exit status."""
    start = time.perf_counter()
    missing = write_sources(out)
    if missing:
        count = sum(map(len, missing.values()))
        print(f"中文版: {count} message(s) on {len(missing)} page(s) have no current translation "
              f"and stay English: {sorted(missing)} (scripts/i18n.py check lists them)")  # fmt: skip
    returncode, executed_inside = render(out)
    if returncode != 0:
        return returncode
    if executed_inside:
        print(
            "中文版: the Sphinx build executed a notebook: its code cells differ from the English "
            "ones, which book/translations.py must copy unchanged",
            file=sys.stderr,
        )
        return 1
    if ZH_HTML.exists():
        shutil.rmtree(ZH_HTML)
    shutil.copytree(out / "_build" / "html", ZH_HTML)
    write_download(ZH_HTML / "_downloads", out)
    print(f"中文版: built into {ZH_HTML.relative_to(ROOT)} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(build())
