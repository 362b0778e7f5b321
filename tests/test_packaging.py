"""What `pip install` of the book's package brings, and what a page must ask for.

`pip install llm-field-guide-demos` (Colab) installs the subject's dependencies only; the libraries
our code is compared with (lm-eval, TRL, scikit-learn) come with the `references` extra, which the
pages that compare against them install from their setup cell (scripts/sync_setup_cells.py).

Checked offline: the dependency closure is read from the metadata of the distributions installed
here (``importlib.metadata``), as pip resolves it without extras, and the package is imported in a
fresh interpreter where importing any reference library fails.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DISTS = {"lm-eval", "trl", "scikit-learn"}
REFERENCE_MODULES = ("lm_eval", "trl", "sklearn")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def closure(requirements: list[str]) -> set[str]:
    """Every distribution pip installs for ``requirements`` (no extras), read from the metadata of
    the installed distributions; a requirement whose marker is false here is left out, as pip does."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            todo += [Requirement(r) for r in metadata.requires(req.name) or []]
        except metadata.PackageNotFoundError:
            pytest.fail(
                f"{req.name} (needed by the package) is not installed: cannot read its needs"
            )
    return seen


def test_plain_install_pulls_no_reference_library():
    pulled = closure(PROJECT["dependencies"])
    assert "torch" in pulled and "transformers" in pulled  # the closure was read at all
    assert not pulled & REFERENCE_DISTS, (
        f"`pip install` alone would pull {pulled & REFERENCE_DISTS}"
    )


def test_the_references_extra_holds_each_reference_library():
    extra = {
        canonicalize_name(Requirement(r).name)
        for r in PROJECT["optional-dependencies"]["references"]
    }
    assert extra == REFERENCE_DISTS
    pulled = closure(PROJECT["optional-dependencies"]["references"])
    assert REFERENCE_DISTS <= pulled


BLOCKER = """
import importlib.abc, pkgutil, sys
BLOCKED = {blocked!r}
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
sys.meta_path.insert(0, Blocker())
import demos
names = [m.name for m in pkgutil.walk_packages(demos.__path__, "demos.")]
for name in names:
    __import__(name)
from demos.eval.arena import bradley_terry_sklearn
try:
    bradley_terry_sklearn([("a", "b", 1.0)])
except ModuleNotFoundError as error:
    print("lazy:", error.name)
print(len(names), "modules imported")
"""


def test_every_module_imports_without_the_reference_libraries():
    code = BLOCKER.format(blocked=set(REFERENCE_MODULES))
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert "lazy: sklearn" in run.stdout  # the reference was really out of reach
    assert int(run.stdout.split()[-3]) > 100  # every module of the package, not a few


def _sync():
    spec = importlib.util.spec_from_file_location(
        "sync_setup_cells", ROOT / "scripts" / "sync_setup_cells.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# names a module may import from a reference driver without using the reference library itself
NO_REFERENCE_NEEDED = {"demos.eval.harness_reference.train_tokenizer"}  # `tokenizers` only


def _users_of_references() -> set[str]:
    """``module`` or ``module.function`` for each place in src/demos that imports a reference
    library, or a name from a reference driver, read from the source."""
    drivers = ("demos.eval.harness_reference", "demos.training.trl_reference")
    users = set()
    for path in sorted((ROOT / "src" / "demos").rglob("*.py")):
        parts = path.relative_to(ROOT / "src").with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if module in drivers:
            continue
        for top in ast.parse(path.read_text()).body:
            where = f"{module}.{top.name}" if isinstance(top, ast.FunctionDef) else module
            for node in ast.walk(top):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [f"{node.module}.{a.name}" for a in node.names]
                    if node.module in drivers:
                        names = [n for n in names if n not in NO_REFERENCE_NEEDED]
                        names = [node.module] if names else []
                else:
                    continue
                if any(n.split(".")[0] in REFERENCE_MODULES or n in drivers for n in names):
                    users.add(where)
    return users


def test_every_use_of_a_reference_is_declared_for_the_setup_cells():
    """A page importing code that needs lm-eval, TRL or scikit-learn gets demos[references]."""
    declared = set(_sync().DRIVES_REFERENCES)
    users = _users_of_references()
    assert "demos.eval.arena.bradley_terry_sklearn" in users  # the scan sees function-level imports
    undeclared = {u for u in users if u not in declared and u.rsplit(".", 1)[0] not in declared}
    assert not undeclared, f"add to DRIVES_REFERENCES in scripts/sync_setup_cells.py: {undeclared}"
    assert set(_sync().REFERENCES_EXTRA) == set(REFERENCE_MODULES)


def test_a_page_that_compares_with_the_harness_installs_the_extra():
    import nbformat

    sync = _sync()
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A chapter"),
        nbformat.v4.new_code_cell("from demos.eval.harness_reference import harness_task"),
    ]
    source = sync.setup_source(nb)
    assert "llm-field-guide-demos[references] @ git+" in source
    assert '"lm_eval": "lm-eval==' in source  # also when demos is there without the extra
    nb.cells[1] = nbformat.v4.new_code_cell("from demos.eval.arena import bradley_terry")
    source = sync.setup_source(nb)
    assert "[references]" not in source and "lm_eval" not in source and "sklearn" not in source
