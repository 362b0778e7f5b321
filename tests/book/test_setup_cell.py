"""The Colab setup cell that scripts/sync_setup_cells.py writes into every notebook: it installs
`demos` from a wheel beside the notebook (the book's download) or at the release tag (pyproject's
version), tells a learner step by step what to do while _config.yml's repository URL is a
placeholder, asks for a kernel restart after every install, stays off the page, and `--check` is
stable (the cell does not change from commit to commit, and ruff format leaves it as written)."""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).with_name("ruff")


@pytest.fixture
def sync():
    spec = importlib.util.spec_from_file_location(
        "sync_setup_cells", ROOT / "scripts" / "sync_setup_cells.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter")] + [
        nbformat.v4.new_code_cell(s) for s in sources
    ]
    return nb


def run_setup(
    source: str, present: set[str], files: tuple[str, ...] = ()
) -> tuple[BaseException | None, list[list[str]]]:
    """Execute a setup cell with only ``present`` importable and ``files`` in its folder; return
    (its error, pip calls)."""
    calls: list[list[str]] = []

    class FakeUtil:
        @staticmethod
        def find_spec(name):
            return object() if name in present else None

    class FakeSubprocess:
        @staticmethod
        def run(args, check):
            calls.append(list(args))

    class FakeGlob:
        @staticmethod
        def glob(pattern):
            return [f for f in files if fnmatch.fnmatch(f, pattern)]

    code = source
    for module in ("importlib.util", "subprocess", "glob"):
        code = code.replace(f"import {module}\n", "")
    namespace = {
        "importlib": type("I", (), {"util": FakeUtil}),
        "subprocess": FakeSubprocess,
        "glob": FakeGlob,
    }
    try:
        exec(compile(code, "<setup cell>", "exec"), namespace)
    except Exception as error:
        return error, calls
    return None, calls


def test_release_tag_is_pyprojects_version(sync):
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert sync.release_tag() == f"v{version.group(1)}"


RESTART_WORDS = ("estart the kernel", "Runtime → Restart session", "Kernel → Restart Kernel")


def test_placeholder_url_tells_a_learner_how_to_get_the_package(sync, monkeypatch):
    monkeypatch.setattr(sync, "repository_url", lambda: "https://github.com/OWNER/llm-field-guide")
    source = sync.setup_source(notebook("import torch"))
    error, calls = run_setup(source, present={"torch"})
    assert isinstance(error, RuntimeError), error
    message = str(error)
    steps = [message.index(f"({n})") for n in (1, 2, 3, 4)]
    assert steps == sorted(steps), message  # the steps, in order
    for words in (
        sync.DOWNLOAD_NAME,
        sync.WHEEL_PATTERN,
        "Colab",
        "pip install -e",
        *RESTART_WORDS,
    ):
        assert words in message, (words, message)
    # words for the book's maintainers, not for a learner, and no link to the placeholder
    for words in ("_config.yml", "repository.url", "sync_setup", "OWNER", "placeholder"):
        assert words not in message, (words, message)
    assert calls == []  # nothing half-installed, no git error
    # where demos is installed (a local clone, the book's build) the cell does nothing
    error, calls = run_setup(source, present={"torch", "demos"})
    assert error is None and calls == []


@pytest.mark.parametrize("url", ["https://github.com/OWNER/llm-field-guide", "https://x.org/a/b"])
def test_a_wheel_beside_the_notebook_is_installed_then_a_restart_asked(sync, monkeypatch, url):
    monkeypatch.setattr(sync, "repository_url", lambda: url)
    source = sync.setup_source(notebook("import torch\nfrom demos.traps.gsm8k import x"))
    wheel = "llm_field_guide_demos-0.1.0-py3-none-any.whl"
    error, calls = run_setup(source, present={"torch", "lm_eval"}, files=(wheel, "gsm8k.ipynb"))
    [call] = calls
    assert call[-1] == f"./{wheel}[references]", call  # the chapter's extra, from the wheel
    assert "git+" not in " ".join(call)
    assert isinstance(error, RuntimeError)
    for words in RESTART_WORDS:
        assert words in str(error), str(error)
    # the same pattern the book's download names its wheel with
    assert f'glob.glob("{sync.WHEEL_PATTERN}")' in source
    assert fnmatch.fnmatch(wheel, sync.WHEEL_PATTERN)


def test_real_url_installs_demos_at_the_release_tag(sync, monkeypatch):
    monkeypatch.setattr(sync, "repository_url", lambda: "https://github.com/someone/guide")
    source = sync.setup_source(notebook("import torch\nimport demos"))
    assert '"OWNER" in REPO' not in source
    error, calls = run_setup(source, present=set())
    assert isinstance(error, RuntimeError)  # installed: now restart
    for words in RESTART_WORDS:
        assert words in str(error), str(error)
    [call] = calls
    tag = sync.release_tag()
    assert f"llm-field-guide-demos @ git+https://github.com/someone/guide@{tag}" in call
    assert "torch==2.13.0" in call and "@main" not in " ".join(call)
    error, calls = run_setup(source, present={"torch", "demos"})
    assert error is None and calls == []  # only what is missing


def test_is_placeholder(sync):
    assert sync.is_placeholder("https://github.com/OWNER/llm-field-guide")
    assert not sync.is_placeholder("https://github.com/owner-of-it/llm-field-guide")
    assert not sync.is_placeholder("https://github.com/someone/OWNER")


def test_setup_cell_runs_in_jupyter_but_is_not_on_the_page(sync):
    nb = sync.synced(notebook("import torch"))
    setup = nb.cells[1]
    assert setup.source.startswith(sync.SETUP_MARK)
    assert setup.metadata["tags"] == ["remove-cell"]  # no toggle, no input, no output on the page
    again = sync.synced(nb)
    assert sync.comparable(again) == sync.comparable(nb)  # --check is stable


def test_setup_cell_is_as_ruff_formats_it(sync, tmp_path):
    """`make test` runs ruff format --check and sync --check: the cell must satisfy both."""
    for url in ("https://github.com/OWNER/llm-field-guide", "https://github.com/someone/guide"):
        sync.repository_url = lambda url=url: url
        source = sync.setup_source(notebook("import torch\nimport transformers")) + "\n"
        path = tmp_path / "cell.py"
        path.write_text(source)
        subprocess.run([str(RUFF), "format", "--quiet", str(path)], check=True, cwd=ROOT)
        assert path.read_text() == source, url


def test_committed_notebooks_carry_the_current_setup_cell(sync):
    stale = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sync_setup_cells.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert stale.returncode == 0, stale.stdout
