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

Which `demos`, first: a wheel beside the notebook (``llm_field_guide_demos-*.whl``, which the book's
download ``field-guide-notebooks.zip`` puts next to every notebook, see scripts/notebook_download.py),
so that a learner with no clone and no public repository can still install it. Without a wheel,
while `repository.url` is a placeholder (owner ``OWNER``), there is nothing to install from: the
cell raises one error that tells the learner, step by step, how to get the package (the download,
or a copy of the book), instead of a git error followed by ModuleNotFoundError in every later cell.
After any install the cell stops and asks for a kernel restart (Colab: Runtime → Restart session;
Jupyter: Kernel → Restart Kernel): a package installed into a running kernel is not reliably
importable (an editable install's path, a torch already loaded) until the kernel starts again.
The messages are written for a learner; nothing in them speaks of this script or _config.yml.
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


# The file the book's download (scripts/notebook_download.py) puts beside the notebooks, and the
# setup cell installs when it finds one there: pip's wheel name for pyproject's project name
WHEEL_PATTERN = "llm_field_guide_demos-*.whl"
DOWNLOAD_NAME = "field-guide-notebooks.zip"
RESTART = "Colab: Runtime → Restart session; Jupyter: Kernel → Restart Kernel"
# The setup cell's messages, written for a learner: what to do, in order, and the restart that a
# package installed into a running kernel needs before `import demos` finds it. One tuple item is
# one line of the cell (Python joins adjacent string literals).
LEARNER_NO_PACKAGE = (
    "This notebook needs the book's Python package `demos`, which is not installed. ",
    "To get it: (1) on the first page of the HTML book, download ",
    f"{DOWNLOAD_NAME} and unzip it. (2) Open this notebook from the unzipped ",
    "book/ folder: the package is there beside it, as a file named ",
    f"{WHEEL_PATTERN}. In Colab, upload that .whl file into the Files panel ",
    "(the folder icon on the left) instead. (3) Run this cell again: it installs the ",
    "wheel. (If you have a copy of the book's source folder instead, run ",
    "`%pip install -e <that folder>` in a cell.) ",
    "(4) Restart the kernel ",
    f"({RESTART})",
    " and run the notebook again.",
)
LEARNER_RESTART = (
    "Installed what this notebook needs. Now restart the kernel ",
    f"({RESTART})",
    " and run the notebook again: Python finds a package ",
    "installed while it runs only after a restart. This cell will then find ",
    "everything installed and do nothing.",
)


def literal(line: str) -> str:
    """``line`` as a double-quoted Python string literal, as ruff format writes it."""
    return '"' + line.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
    # where the repository URL is a placeholder there is nothing to send a learner to: the cell
    # names the two routes that work without it (the book's download, or a copy of the book)
    no_wheel_no_repo = [
        '    elif "OWNER" in REPO:',
        "        raise RuntimeError(",
        *(f"            {literal(line)}" for line in LEARNER_NO_PACKAGE),
        "        )",
    ]
    return "\n".join(
        [
            f"{SETUP_MARK}: installs what this page imports, only if it is missing.",
            "# Written by scripts/sync_setup_cells.py from _config.yml (repository.url),",
            "# pyproject.toml (the release tag of demos) and requirements.txt.",
            "import glob",
            "import importlib.util",
            "import subprocess",
            "import sys",
            "",
            f'REPO = "{url}"',
            f'REF = "{release_tag()}"  # the release of demos this page was written for',
            "NEEDS = {  # importable module -> what pip installs when it is missing",
            *needs,
            "}",
            "# the book's download puts the package beside the notebooks as a wheel: install that one",
            f'WHEELS = sorted(glob.glob("{WHEEL_PATTERN}"))',
            'if importlib.util.find_spec("demos") is None:',
            "    if WHEELS:",
            f'        NEEDS["demos"] = f"./{{WHEELS[-1]}}{extra}"',
            *(no_wheel_no_repo if is_placeholder(url) else []),
            "missing = [req for module, req in NEEDS.items() if importlib.util.find_spec(module) is None]",
            "if missing:",
            '    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)',
            "    raise RuntimeError(",
            *(f"        {literal(line)}" for line in LEARNER_RESTART),
            "    )",
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
