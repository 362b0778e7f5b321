"""The learners' download (scripts/notebook_download.py): a zip of every notebook of _toc.yml with
the package's wheel beside them, which the build writes into _build/html/_downloads and the intro
page links; the setup cell of each notebook in it looks for that wheel by the same file pattern, and
the wheel, installed alone, gives the package the notebooks import."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def download(tmp_path_factory) -> Path:
    return _load("notebook_download").write_download(tmp_path_factory.mktemp("downloads"))


def _toc_notebooks() -> list[str]:
    sys.path.insert(0, str(ROOT / "book"))
    from booktools import toc_files

    return [f"{f}.ipynb" for f in toc_files(ROOT, with_root=True) if (ROOT / f"{f}.ipynb").exists()]


def check_download(path: Path) -> None:
    """Every notebook of _toc.yml, one wheel in the same folder, and each setup cell names it."""
    sync = _load("sync_setup_cells")
    assert path.name == sync.DOWNLOAD_NAME
    with zipfile.ZipFile(path) as zf:
        names = [PurePosixPath(n) for n in zf.namelist()]
        [top] = {n.parts[0] for n in names}
        inside = {n.relative_to(top).as_posix() for n in names}
        expected = _toc_notebooks()
        assert len(expected) > 25  # the chapters, not a few
        missing = [nb for nb in expected if nb not in inside]
        assert not missing, f"{path.name} lacks {missing}"
        wheels = [n for n in inside if fnmatch.fnmatch(PurePosixPath(n).name, sync.WHEEL_PATTERN)]
        assert len(wheels) == 1, wheels
        folders = {PurePosixPath(nb).parent for nb in expected}
        assert {PurePosixPath(wheels[0]).parent} == folders  # beside every notebook
        for nb in expected:
            cells = json.loads(zf.read(f"{top}/{nb}"))["cells"]
            setup = next("".join(c["source"]) for c in cells if c["cell_type"] == "code")
            assert f'glob.glob("{sync.WHEEL_PATTERN}")' in setup, nb
            for line in "".join("".join(c["source"]) for c in cells).split("../")[1:]:
                if line.startswith("results/"):  # a file the notebook reads ships with it
                    name = line.split('"')[0].split("\\")[0]
                    assert name in inside, (nb, name)
        readme = zf.read(f"{top}/README.txt").decode()
        assert sync.RESTART in readme and sync.WHEEL_PATTERN in readme


@pytest.mark.notebooks  # writes an edition, a wheel or reads every notebook: full lane
def test_download_holds_every_notebook_and_the_wheel_beside_them(download):
    check_download(download)


@pytest.mark.notebooks  # writes an edition, a wheel or reads every notebook: full lane
def test_the_wheel_alone_installs_the_package_the_notebooks_import(download, tmp_path):
    with zipfile.ZipFile(download) as zf:
        [wheel] = [n for n in zf.namelist() if n.endswith(".whl")]
        zf.extract(wheel, tmp_path)
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
        + ["--target", str(target), str(tmp_path / wheel)],
        check=True,
    )
    code = (
        "import demos, demos.registry, demos.layers.attention as a; "
        "from demos.registry import load_registry; load_registry(); "
        "from demos.registry.citations import citation_table; "
        "assert 'touvron2023llama2' in citation_table(); print(demos.__file__)"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().startswith(str(target)), run.stdout  # the wheel's copy, not src/


@pytest.mark.book
def test_built_book_offers_the_download_on_its_first_page(built_book):
    sync = _load("sync_setup_cells")
    path = built_book / "html" / "_downloads" / sync.DOWNLOAD_NAME
    assert path.exists(), "the build did not write the learners' download"
    check_download(path)
    intro = (built_book / "html" / "book" / "intro.html").read_text()
    assert f'href="../_downloads/{sync.DOWNLOAD_NAME}"' in intro
