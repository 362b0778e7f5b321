"""Write the book's download for learners: every chapter notebook with the package beside it.

    python scripts/notebook_download.py _build/html/_downloads   # what scripts/build_book.py runs

A learner with no clone (and, while _config.yml's repository URL is a placeholder, no public
repository to install from) downloads ``field-guide-notebooks.zip`` from the book's first page:

    field-guide-notebooks/
        README.txt                                   what to do, in order
        book/<every notebook of _toc.yml>.ipynb      as committed (no outputs), MyST as plain Markdown
        book/llm_field_guide_demos-<version>-py3-none-any.whl
        book/booktools.py, parity_record.py, mutation_report.py, matplotlibrc   what the notebooks import or read
        results/<the files a notebook reads as ../results/...>

Each notebook's setup cell (scripts/sync_setup_cells.py) finds the wheel beside it
(``WHEEL_PATTERN``) and installs it, then asks for a kernel restart.

The wheel is built offline: ``pip wheel --no-deps --no-build-isolation`` with the setuptools already
in the environment, from a copy of ``pyproject.toml``, ``README.md`` and ``src/`` (so that no
``build/`` or ``*.egg-info`` is left in the source tree). ``python -m build`` is not installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))  # booktools: the one reading of _toc.yml
sys.path.insert(0, str(ROOT / "scripts"))
from sync_setup_cells import DOWNLOAD_NAME, RESTART, WHEEL_PATTERN  # noqa: E402

from booktools import toc_files  # noqa: E402
from plain_markdown import plain_notebook  # noqa: E402

TOP = "field-guide-notebooks"  # the folder the zip unpacks into
BESIDE = (
    "book/booktools.py",
    "book/parity_record.py",
    "book/mutation_report.py",
    "book/matplotlibrc",
)
READS = re.compile(r"\.\./(results/[A-Za-z0-9_./-]+)")  # a notebook's path to a shipped file

README = f"""The LLM field guide: the chapter notebooks, to run without a copy of the book's source.

1. Unzip this file. Open a notebook from the book/ folder in Jupyter (or upload it to Colab).
2. Run its first cell. It installs the book's package `demos` from the wheel beside the notebook
   ({WHEEL_PATTERN}), with what the chapter needs. In Colab, first upload that .whl file
   into the Files panel (the folder icon on the left), next to the notebook.
3. Restart the kernel ({RESTART}) and run the notebook again (Run All).
   Every chapter then runs top to bottom on a CPU, with nothing to download.
"""


def build_wheel(out: Path, root: Path = ROOT) -> Path:
    """Build the package's wheel into ``out``, offline; return its path."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source"
        source.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(root / name, source / name)
        shutil.copytree(
            root / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
            + ["--no-index", str(source), "--wheel-dir", str(out)],
            check=True,
        )
    [wheel] = sorted(out.glob(WHEEL_PATTERN))
    return wheel


def notebooks(root: Path = ROOT) -> list[Path]:
    """Every notebook of ``_toc.yml``, in its order."""
    files = toc_files(root, with_root=True)
    return [root / f"{f}.ipynb" for f in files if (root / f"{f}.ipynb").exists()]


def write_download(dest: Path, root: Path = ROOT) -> Path:
    """Write ``dest / DOWNLOAD_NAME`` (see the module docstring); return its path."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / DOWNLOAD_NAME
    with tempfile.TemporaryDirectory() as tmp:
        wheel = build_wheel(Path(tmp), root)
        shipped = set()
        with zipfile.ZipFile(target.with_suffix(".tmp"), "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{TOP}/README.txt", README)
            zf.write(wheel, f"{TOP}/book/{wheel.name}")
            for notebook in notebooks(root):
                relative = notebook.relative_to(root).as_posix()
                plain = plain_notebook(nbformat.read(notebook, as_version=4))  # Jupyter, Colab
                zf.writestr(f"{TOP}/{relative}", nbformat.writes(plain))
                shipped.update(READS.findall(notebook.read_text()))
            for name in sorted(shipped) + list(BESIDE):
                if (root / name).is_file():
                    zf.write(root / name, f"{TOP}/{name}")
    target.with_suffix(".tmp").replace(target)
    return target


if __name__ == "__main__":
    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_build" / "html" / "_downloads"
    print(write_download(dest))
