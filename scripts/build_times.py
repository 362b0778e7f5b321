"""Measure the book build and both test lanes, and write ``results/build_times.txt``.

    python scripts/build_times.py            # deletes _build first: a cold build, then a cached one
    python scripts/build_times.py --no-tests # the build only

1. Cold: ``_build`` removed, then ``scripts/build_book.py`` (notebooks executed two at a time, then
   Jupyter Book renders the pages). Each notebook's execution seconds are read from jupyter-cache's
   records, where the build stores them.
2. Cached rebuild: the HTML and Sphinx's saved environment removed, the notebook cache kept; the same
   script must execute nothing and only render.
3. The tests (unless ``--no-tests``): the fast lane, ``make check``'s pytest
   (``-m "not book and not notebooks"``), then the full lane, ``make test``'s pytest, which reads the
   build just made. Wall seconds and the CPU seconds of pytest and everything it started.

Times depend on the machine and on what else runs on it, so the file records the load average and the
core count next to them. Speed is tracked here, not asserted in the tests.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "build_times.txt"
TARGET_S = 20  # per notebook, on a 2-core CPU (README.md)


def _build_book_module():
    spec = importlib.util.spec_from_file_location("build_book", ROOT / "scripts" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_book"] = module
    spec.loader.exec_module(module)
    return module


def timed_build(jobs: int) -> tuple[float, str]:
    """Run scripts/build_book.py; return its wall seconds and output (exit on failure)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_book.py"), "--jobs", str(jobs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"build failed:\n{proc.stdout[-8000:]}")
    return seconds, proc.stdout


def notebook_seconds(build_book) -> dict[str, float]:
    """Execution seconds of each notebook's current cache record."""
    import nbformat
    from jupyter_cache import get_cache

    cache = get_cache(str(build_book.CACHE))
    seconds = {}
    for path in build_book.toc_notebooks():
        record = cache.match_cache_notebook(nbformat.read(path, as_version=4))
        seconds[path.stem] = record.data["execution_seconds"]
    return seconds


LANES = {  # name -> pytest's arguments (Makefile: make check, make test)
    "fast lane (make check's pytest)": ["-m", "not book and not notebooks"],
    "full lane (make test's pytest)": [],
}


def timed_pytest(args: list[str]) -> tuple[float, float, str]:
    """Run pytest with ``args``; return its wall seconds, its CPU seconds (with its children) and its
    summary line (exit on failure)."""
    before = os.times()
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seconds = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    if proc.returncode != 0:
        sys.exit(f"pytest {' '.join(args)} failed:\n{proc.stdout[-8000:]}")
    return seconds, cpu, proc.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-tests", action="store_true", help="time the build only")
    options = parser.parse_args()
    jobs = options.jobs
    build_book = _build_book_module()

    load_before = os.getloadavg()
    shutil.rmtree(ROOT / "_build", ignore_errors=True)
    cold_s, cold_log = timed_build(jobs)
    seconds = notebook_seconds(build_book)
    load_cold = os.getloadavg()

    shutil.rmtree(ROOT / "_build" / "html")
    shutil.rmtree(ROOT / "_build" / ".doctrees", ignore_errors=True)
    build_book.BOOK_STAMP.unlink()
    cached_s, cached_log = timed_build(jobs)
    if "executing " in cached_log or "Executing notebook using" in cached_log:
        sys.exit(f"the cached rebuild executed a notebook:\n{cached_log[-8000:]}")
    load_cached = os.getloadavg()

    tests = []
    for name, args in ({} if options.no_tests else LANES).items():
        wall, cpu, summary = timed_pytest(args)
        tests.append(
            f"{name + ':':<36} {wall:6.1f} s wall, {cpu:6.1f} s CPU; "
            f"load after {_load(os.getloadavg())}; {summary}"
        )

    executed = next((line for line in cold_log.splitlines() if "executed in" in line), "")
    lines = [
        f"# python scripts/build_times.py (--jobs {jobs}); {datetime.date.today().isoformat()}",
        f"# machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "# load average (1, 5, 15 min): "
        f"before {_load(load_before)}; after cold build {_load(load_cold)}; "
        f"after cached rebuild {_load(load_cached)}",
        "# Other work on a shared machine slows every number below; compare with care.",
        "",
        f"cold build (no _build):                       {cold_s:6.1f} s",
        f"  of which executing notebooks ({jobs} at a time): {executed.split(' in ')[-1]}",
        f"cached rebuild (cache kept, nothing executed): {cached_s:6.1f} s",
        "",
        *([*tests, ""] if tests else []),
        f"notebook execution seconds (target {TARGET_S} s each):",
        *(
            f"  {name:<16} {s:6.1f}{'   over target' if s > TARGET_S else ''}"
            for name, s in sorted(seconds.items(), key=lambda kv: -kv[1])
        ),
        f"  {'sum':<16} {sum(seconds.values()):6.1f}",
    ]
    OUT.write_text("\n".join(lines) + "\n")
    print(OUT.read_text())


def _load(avg: tuple[float, float, float]) -> str:
    return ", ".join(f"{x:.2f}" for x in avg)


if __name__ == "__main__":
    main()
