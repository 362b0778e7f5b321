"""Record the exercises' checkers' data from their references: ``src/demos/exercises/data/<chapter>.pt``.

    python scripts/exercise_data.py [CHAPTER ...]     # default: every chapter with references

The references (the right answers, the cases and the known mistakes' code) live in
``tests/exercise_references/<chapter>.py``, outside the package a learner installs. Each of their
``check_*`` functions declares what it compares with by calling
:func:`demos.exercises.core.check_function`; this script runs each checker on a dummy answer,
catches those calls, runs the reference and every mistake on every case
(:func:`demos.exercises.core.record`; a checker that compares on its own, Orca 2's text checker,
is declared in its module's ``OWN_DECLARATIONS``), and saves ``{checker: [declaration, ...]}`` as plain dicts
with ``torch.save``. The package's checker of the same name replays them with
:func:`demos.exercises.core.check_recorded`.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
REFERENCES = "exercise_references"
sys.path.insert(0, str(ROOT / "tests"))

from exercise_references import check_function_calls  # noqa: E402

from demos.exercises import core  # noqa: E402
from demos.exercises.recorded import to_plain  # noqa: E402

DATA = ROOT / "src" / "demos" / "exercises" / "data"


def chapters() -> list[str]:
    """The chapters with references (every module of ``tests/exercise_references``)."""
    package = importlib.import_module(REFERENCES)
    return sorted(info.name for info in pkgutil.iter_modules(package.__path__))


def checkers(module: Any) -> dict[str, Any]:
    """The ``check_*`` functions a references module defines."""
    return {
        name: fn
        for name, fn in inspect.getmembers(module, inspect.isfunction)
        if name.startswith("check_") and fn.__module__ == module.__name__
    }


def declarations(module: Any, checker: Any) -> list[core.Recorded]:
    """What ``checker`` passes to check_function, recorded while it checks a dummy answer."""
    return [
        core.record(reference, cases, options.get("mistakes", ()))
        for reference, cases, _, options in check_function_calls(module, checker)
    ]


def chapter_data(chapter: str) -> dict[str, list[dict[str, Any]]]:
    """``{checker: [declaration as plain dicts, ...]}`` for one chapter, recorded now."""
    module = importlib.import_module(f"{REFERENCES}.{chapter}")
    own = getattr(module, "OWN_DECLARATIONS", {})  # checkers that compare on their own
    data = {name: [to_plain(d) for d in declare()] for name, declare in own.items()}
    for name, checker in checkers(module).items():
        found = declarations(module, checker)
        if found:  # llama2's planted-bug checker compares with its planted bug: nothing recorded
            data[name] = [to_plain(d) for d in found]
    return dict(sorted(data.items()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="default: every chapter with references")
    args = parser.parse_args(argv)
    DATA.mkdir(parents=True, exist_ok=True)
    for chapter in args.chapters or chapters():
        data = chapter_data(chapter)
        torch.save(data, DATA / f"{chapter}.pt")
        count = sum(len(d) for d in data.values())
        print(f"{chapter}: {len(data)} checkers, {count} declarations -> {DATA / chapter}.pt")


if __name__ == "__main__":
    main()
