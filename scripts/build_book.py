"""Build the book: execute the notebooks that need it, two at a time, then render every page.

    python scripts/build_book.py             # what `make book` runs; does nothing if _build is current
    python scripts/build_book.py --jobs 4    # notebooks executed at once (default 2)

Jupyter Book executes notebooks one after another inside Sphinx. Here jupyter-cache's own functions
execute them in parallel worker processes, into the cache Jupyter Book reads (``_build/.jupyter_cache``,
the same record myst-nb writes: outputs and ``execution_seconds``); then ``jupyter-book build . -W
--keep-going`` finds every notebook in the cache and executes nothing.

What is re-executed:

* a notebook whose code cells or their metadata changed (jupyter-cache matches on that hash);
* every notebook, when something the hash cannot see changed: ``src/demos``, ``tests`` (the parity
  report page runs them), ``results/``, ``requirements.txt`` or ``pyproject.toml``. Their fingerprint
  is kept in ``_build/.execution_inputs.sha256``; the re-executed notebooks' mtimes are bumped so that
  Sphinx reads them again.

A cell error (outside cells tagged ``raises-exception``) fails the build before Sphinx starts; a
failed Sphinx build drops its saved environment so that the next build reads every page again
(otherwise an unchanged page with a warning would pass the second time). After Sphinx, the learners'
download ``_build/html/_downloads/field-guide-notebooks.zip`` (every notebook with the package as a
wheel beside it, scripts/notebook_download.py: about 2 s) is written, and then the Chinese edition
is built into ``_build/html/zh/`` from the same cache (scripts/build_zh.py; no notebook runs again).
After a successful build the fingerprint of every input is written to
``_build/.book_inputs.sha256``; a later call whose inputs match does nothing (the tests'
``built_book`` fixture relies on this to reuse ``make book``'s build).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))  # booktools: the book's tooling, outside the package
from booktools import toc_files  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
import build_zh  # noqa: E402
from notebook_download import DOWNLOAD_NAME, write_download  # noqa: E402

from demos.registry.citations import BOOK_BUILD  # noqa: E402

BUILD = ROOT / "_build"
CACHE = BUILD / ".jupyter_cache"  # where myst-nb looks: the parent of the HTML output folder
EXECUTION_STAMP = BUILD / ".execution_inputs.sha256"
BOOK_STAMP = BUILD / ".book_inputs.sha256"
DOWNLOADS = (
    BUILD / "html" / "_downloads"
)  # the learners' zip of notebooks and wheel (intro links it)
EXECUTION_INPUTS = [
    "src/demos",
    "book/booktools.py",  # the back-matter pages import it
    "book/parity_record.py",
    "book/mutation_report.py",
    "tests",
    "results",
    "requirements.txt",
    "pyproject.toml",
]
BOOK_INPUTS = ["book", "_toc.yml", "_config.yml", "references.bib", "locales", *EXECUTION_INPUTS]
SKIP = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".hypothesis"}
BUDGET_MIME = "application/vnd.field-guide.budget+json"  # demos.display.report_budget's output
NOT_READ = {  # written after a build from the built pages, read by no page
    "results/build_times.txt",  # scripts/build_times.py
    "results/figure_text_sizes.json",  # scripts/figure_text_sizes.py
    "results/figure_text_sizes_before.json",  # its record before issue 28's figure fixes
}


def toc_notebooks(root: Path = ROOT) -> list[Path]:
    """The notebooks in ``_toc.yml``, in its order."""
    files = toc_files(root, with_root=True)
    return [root / f"{f}.ipynb" for f in files if (root / f"{f}.ipynb").exists()]


def fingerprint(paths: list[str], root: Path = ROOT) -> str:
    """sha256 over the relative path and bytes of every file under ``paths`` (caches left out)."""
    digest = hashlib.sha256()
    for name in paths:
        top = root / name
        files = [top] if top.is_file() else sorted(top.rglob("*")) if top.is_dir() else []
        for f in files:
            relative = f.relative_to(root)
            if (
                f.is_file()
                and not SKIP.intersection(relative.parts)
                and relative.as_posix() not in NOT_READ
            ):
                digest.update(relative.as_posix().encode() + b"\0")
                digest.update(hashlib.sha256(f.read_bytes()).digest())
    return digest.hexdigest()


def page_cost(nb) -> tuple[float, float] | None:
    """(CPU seconds, peak MiB) that an executed notebook's ``report_budget()`` cell recorded, or None.

    The cell's output is build data, not shown on the page (see ``demos.display.report_budget``).
    """
    for cell in reversed(nb.cells):
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get(BUDGET_MIME)
            if data is not None:
                return float(data["cpu_s"]), float(data["peak_mib"])
    return None


def _execute_one(uri: str, cache_path: str, timeout: int, allow_errors: bool):
    """Worker: execute one project notebook and cache it (success) or record its traceback."""
    from jupyter_cache import get_cache
    from jupyter_cache.cache.db import NbProjectRecord
    from jupyter_cache.executors.utils import create_cache_bundle, single_nb_execution

    cache = get_cache(cache_path)
    project_nb = cache.get_project_notebook(uri)
    result = single_nb_execution(
        project_nb.nb, cwd=str(Path(uri).parent), timeout=timeout, allow_errors=allow_errors
    )
    if result.err is not None:
        NbProjectRecord.set_traceback(uri, result.exc_string, cache.db)
        return uri, result.time, result.exc_string or repr(result.err), None
    bundle = create_cache_bundle(project_nb, result.cwd, None, result.time, None)
    cache.cache_notebook_bundle(bundle, check_validity=False, overwrite=True)
    return uri, result.time, None, page_cost(project_nb.nb)


def execute(
    notebooks: list[Path],
    cache_path: Path = CACHE,
    jobs: int = 2,
    timeout: int = 300,
    allow_errors: bool = False,
    force: bool = False,
) -> dict[str, tuple[float, str | None]]:
    """Execute the notebooks with no up-to-date cache entry (all of them if ``force``), ``jobs`` at once.

    Returns ``{path: (seconds, traceback or None)}`` for the notebooks executed.
    """
    from jupyter_cache import get_cache

    if jobs < 1:
        raise ValueError(f"jobs ({jobs}) must be at least 1")
    cache = get_cache(str(cache_path))
    uris = [str(cache.add_nb_to_project(str(p)).uri) for p in notebooks]
    if force:
        records = cache.list_project_records(filter_uris=uris)
    else:
        records = cache.list_unexecuted(filter_uris=uris)
    last = {r.uri: r.data.get("execution_seconds", 0.0) for r in cache.list_cache_records()}
    todo = sorted((r.uri for r in records), key=lambda u: -last.get(u, 1e9))  # longest first
    if not todo:
        return {}
    # One thread per kernel (torch reads OMP_NUM_THREADS), set here so that no chapter has to say so.
    # The book's tensors are tiny: a second thread saves nothing, and on shared busy cores it costs a
    # lot (two kernels with two threads each made a chapter's tiny training loop 5x slower than one
    # thread each; Mamba's parity cell ran 10x slower with two threads on the 2-core build machine).
    at_once = min(jobs, len(todo))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Nothing is downloaded: a cell that reaches for the Hugging Face Hub fails here, as it would for
    # a learner offline, instead of passing on a machine that happens to be online (issue 28).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    print(
        f"executing {len(todo)} notebook(s), {at_once} at a time, "
        f"{os.environ['OMP_NUM_THREADS']} thread(s) each: {[Path(u).name for u in todo]}"
    )
    results = {}
    with ProcessPoolExecutor(max_workers=at_once) as pool:
        futures = [
            pool.submit(_execute_one, u, str(cache_path), timeout, allow_errors) for u in todo
        ]
        for future in futures:
            uri, seconds, error, cost = future.result()
            spent = f" ({cost[0]:.1f} s of CPU, peak {cost[1]:,.0f} MiB)" if cost else ""
            print(
                f"  {Path(uri).name}: {'FAILED' if error else 'ok'} in {seconds:.1f} s{spent}",
                flush=True,
            )
            results[uri] = (seconds, error)
    return results


def execution_settings(root: Path = ROOT) -> tuple[int, bool]:
    """(timeout, allow_errors) from ``_config.yml``'s ``execute`` section."""
    execute_cfg = yaml.safe_load((root / "_config.yml").read_text()).get("execute", {})
    return int(execute_cfg.get("timeout", 300)), bool(execute_cfg.get("allow_errors", False))


def build(jobs: int = 2) -> int:
    """Bring ``_build`` up to date (see the module docstring); returns an exit status."""
    book_inputs = fingerprint(BOOK_INPUTS)
    if (
        (BUILD / "html" / "index.html").exists()
        and BOOK_STAMP.exists()
        and BOOK_STAMP.read_text().strip() == book_inputs
        and (DOWNLOADS / DOWNLOAD_NAME).exists()
    ):
        print("_build/html is up to date with the sources: nothing to do")
        return 0
    BOOK_STAMP.unlink(missing_ok=True)
    BUILD.mkdir(exist_ok=True)
    # The book renders a cell's Markdown as MyST: its kernels keep the {cite} roles as they are
    # (demos.registry.citations turns them into links in any other kernel).
    os.environ[BOOK_BUILD] = "1"

    notebooks = toc_notebooks()
    execution_inputs = fingerprint(EXECUTION_INPUTS)
    force = not EXECUTION_STAMP.exists() or EXECUTION_STAMP.read_text().strip() != execution_inputs
    if force and CACHE.exists():
        print("src/demos, tests, results or the requirements changed: executing every notebook")
    timeout, allow_errors = execution_settings()
    start = time.perf_counter()
    results = execute(notebooks, CACHE, jobs, timeout, allow_errors, force=force and CACHE.exists())
    failed = {uri: error for uri, (_, error) in results.items() if error}
    for uri, error in failed.items():
        print(f"\n---- {Path(uri).relative_to(ROOT)} failed ----\n{error}", file=sys.stderr)
    if failed:
        return 1
    if force:
        for uri in results:  # unchanged files: make Sphinx read them (and the new outputs) again
            os.utime(uri)
    EXECUTION_STAMP.write_text(execution_inputs + "\n")
    print(f"notebooks executed in {time.perf_counter() - start:.1f} s")

    returncode, executed_inside = build_zh.render(ROOT)  # jupyter-book build . -W --all
    if executed_inside:
        print("note: the Sphinx build executed a notebook the cache did not hold", file=sys.stderr)
    if returncode != 0:
        return returncode
    # after Sphinx, which would not copy a file it did not know; about 2 s (the wheel, then the zip)
    start = time.perf_counter()
    download = write_download(DOWNLOADS)
    print(f"wrote {download.relative_to(ROOT)} in {time.perf_counter() - start:.1f} s")
    # the Chinese edition, from the same executions (scripts/build_zh.py): nothing runs twice
    status = build_zh.build()
    if status != 0:
        return status
    BOOK_STAMP.write_text(book_inputs + "\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed at once")
    return build(parser.parse_args().jobs)


if __name__ == "__main__":
    sys.exit(main())
