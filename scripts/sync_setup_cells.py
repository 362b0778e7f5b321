"""Write the first and last cells of every notebook in book/ from one template.

    python scripts/sync_setup_cells.py          # rewrite the notebooks in place
    python scripts/sync_setup_cells.py --check  # exit 1 if any notebook is out of date

First code cell (the Colab setup cell): installs what the notebook imports, only when it is
missing: the book's package `demos` from the repository URL in `_config.yml` (one place to
change it), and each other third-party module at the version pinned in `requirements.txt`.
It is tagged ``remove-cell``: it runs in Jupyter and Colab, and the book's pages do not show it.

Which `demos`: the release tag ``v<version>``, the version read from `pyproject.toml`. The cell
must not follow `main` (a chapter written against one release would break on the next), and it
must not carry the commit (`git rev-parse HEAD` changes with every commit, so every commit would
rewrite every notebook and `--check` could never pass on the commit it describes). The version
changes only when a release is cut; then tag the commit ``v<version>``, rerun this script, and
every notebook installs exactly that release.

While `repository.url` is a placeholder (owner ``OWNER``), the cell cannot install `demos` from
anywhere: where `demos` is missing it raises one error that says so and how to fix it, instead of
a git error followed by ModuleNotFoundError in every later cell.
Last cell: prints the page's measured CPU time and peak memory (``demos.display.report_budget``),
hidden from the rendered page's input.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
SETUP_MARK = "# Setup for Colab or any fresh environment"
BUDGET_SOURCE = "from demos.book import report_budget\n\nreport_budget()"
DIST_NAMES = {
    "yaml": "PyYAML",
    "sklearn": "scikit-learn",
    "lm_eval": "lm-eval",
    "PIL": "pillow",
    "fastchat": "fschat",
}
NOT_PIP = {"demos", "IPython", "booktools", "mutation_report", "parity_record"}
# demos comes from the repository; IPython is the kernel itself; booktools and parity_record are
# book/*.py next to the back-matter pages that import them (the book's tooling, not in demos)
# modules of demos that build transformers models for the page (the catalogue's reference models):
# a page importing them compares against transformers and needs its pinned version
BUILDS_REFERENCES = {"demos.catalog": "transformers", "demos.testing": "transformers"}
# what of demos drives a reference library of the `references` extra (pyproject.toml), which
# `pip install demos` alone does not install: a page importing one of these (a module, or a name from
# a module) declares that it compares against that library, and its cell installs demos[references]
DRIVES_REFERENCES = {
    "demos.eval.harness_reference": ("lm_eval",),
    "demos.eval.gsm8k.harness_gsm8k": ("lm_eval",),
    "demos.training.trl_reference": ("trl",),
    "demos.eval.arena.bradley_terry_sklearn": ("sklearn",),
    "demos.traps.arc": ("lm_eval",),
    "demos.traps.hellaswag": ("lm_eval",),
    "demos.traps.mmlu": ("lm_eval",),
    "demos.traps.open_llm_leaderboard": ("lm_eval",),
    "demos.traps.truthfulqa": ("lm_eval",),
    "demos.traps.winogrande": ("lm_eval",),
    "demos.traps.gsm8k": ("lm_eval",),
    "demos.traps.chatbot_arena": ("sklearn",),
    "demos.traps.chatgpt": ("trl",),
    "demos.traps.all_traps": ("lm_eval", "sklearn", "trl"),  # measures every chapter's traps
}
REFERENCES_EXTRA = ("lm_eval", "sklearn", "trl")  # the modules of pyproject's `references` extra


PLACEHOLDER_OWNER = "OWNER"  # _config.yml's repository.url before the repository is public


def repository_url() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def is_placeholder(url: str) -> bool:
    """Whether ``url`` is the placeholder ``https://github.com/OWNER/...``."""
    return PLACEHOLDER_OWNER in url.removeprefix("https://").split("/")[1:2]


def release_tag() -> str:
    """The git tag of the release the notebooks install `demos` from: ``v`` + pyproject's version."""
    text = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', text, re.MULTILINE)
    if version is None:
        raise SystemExit("pyproject.toml has no [project] version")
    return f"v{version.group(1)}"


def pinned() -> dict[str, str]:
    """Distribution name (lower case) -> requirement line, from requirements.txt."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            pins[line.split("==")[0].strip().lower()] = line
    return pins


def third_party_imports(nb: nbformat.NotebookNode) -> list[str]:
    """Top-level modules imported by the notebook's code cells, minus the standard library."""
    modules = set()
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.source.startswith(SETUP_MARK):
            continue
        source = "\n".join(
            line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))
        )
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
                if node.module in BUILDS_REFERENCES:
                    modules.add(BUILDS_REFERENCES[node.module])
                for name in [node.module, *(f"{node.module}.{a.name}" for a in node.names)]:
                    modules.update(DRIVES_REFERENCES.get(name, ()))
    return sorted(m for m in modules if m not in sys.stdlib_module_names and m not in NOT_PIP)


def setup_source(nb: nbformat.NotebookNode) -> str:
    pins = pinned()
    modules = third_party_imports(nb)
    extra = "[references]" if set(modules) & set(REFERENCES_EXTRA) else ""
    needs = [f'    "demos": f"llm-field-guide-demos{extra} @ git+{{REPO}}@{{REF}}",']
    for module in modules:
        dist = DIST_NAMES.get(module, module.replace("_", "-"))
        requirement = pins.get(dist.lower())
        if requirement is None:
            raise SystemExit(f"{module} is imported but {dist} is not pinned in requirements.txt")
        needs.append(f'    "{module}": "{requirement}",')
    url = repository_url()
    placeholder = [
        'if "OWNER" in REPO and importlib.util.find_spec("demos") is None:',
        "    raise RuntimeError(",
        '        "This notebook needs the book\'s package `demos`, which is installed from the "',
        "        \"book's repository, but _config.yml's repository.url is still the placeholder \"",
        '        f"{REPO}. Install demos yourself (in a clone of the book: pip install -e .), "',
        '        "or set repository.url in _config.yml to the real repository and run "',
        '        "python scripts/sync_setup_cells.py, which rewrites this cell; then run it again."',
        "    )",
    ]
    return "\n".join(
        [
            f"{SETUP_MARK}: installs what this page imports, only if it is missing.",
            "# Written by scripts/sync_setup_cells.py from _config.yml (repository.url),",
            "# pyproject.toml (the release tag of demos) and requirements.txt.",
            "import importlib.util",
            "import subprocess",
            "import sys",
            "",
            f'REPO = "{url}"',
            f'REF = "{release_tag()}"  # the release of demos this page was written for',
            "NEEDS = {  # importable module -> what pip installs when it is missing",
            *needs,
            "}",
            *(placeholder if is_placeholder(url) else []),
            "missing = [req for module, req in NEEDS.items() if importlib.util.find_spec(module) is None]",
            "if missing:",
            '    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)',
        ]
    )


def synced(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with its setup cell right after the title cell (the first code cell) and its budget cell last."""
    cells = [
        c
        for c in nb.cells
        if not (
            c.cell_type == "code" and (c.source.startswith(SETUP_MARK) or c.source == BUDGET_SOURCE)
        )
    ]
    # an old hand-written setup cell (before this script) is replaced too
    cells = [c for c in cells if not (c.cell_type == "code" and 'find_spec("demos")' in c.source)]
    # remove-cell: it runs in Jupyter, Colab and the build, and the page does not show it
    setup = nbformat.v4.new_code_cell(setup_source(nb), metadata={"tags": ["remove-cell"]})
    budget = nbformat.v4.new_code_cell(BUDGET_SOURCE, metadata={"tags": ["remove-input"]})
    at = 1 if cells and cells[0].cell_type == "markdown" else 0  # right after the title cell
    out = nbformat.from_dict(dict(nb))
    out.cells = cells[:at] + [setup] + cells[at:] + [budget]
    for cell in out.cells:
        cell.pop("id", None)  # ids are optional in nbformat 4.4; leaving them out keeps diffs small
    out.nbformat_minor = 4
    return out


def comparable(nb: nbformat.NotebookNode) -> list[tuple[str, str, list]]:
    return [
        (c.cell_type, c.source, sorted(c.get("metadata", {}).get("tags", []))) for c in nb.cells
    ]


def main() -> int:
    check = "--check" in sys.argv
    stale = []
    for path in sorted((ROOT / "book").rglob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        new = synced(nb)
        if comparable(new) != comparable(nb):
            stale.append(path.relative_to(ROOT))
            if not check:
                nbformat.write(new, path)
    verb = "out of date" if check else "rewritten"
    for path in stale:
        print(f"{path}: {verb}")
    return 1 if (check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
