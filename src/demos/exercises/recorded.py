"""The checkers' declarations as data: each case's arguments, the reference's result and each known
mistake's result, recorded by ``scripts/exercise_data.py`` from the references in
``tests/exercise_references/`` (which the package does not ship) into ``data/<chapter>.pt``.

A checker loads its declaration with :func:`recorded` and compares with
:func:`~demos.exercises.core.check_recorded`: the package holds what the answers return, never the
code that computes them. ``tests/exercises/test_exercise_data.py`` records the data again from the
references and asserts it equals the files shipped, so the two cannot drift apart.
"""

from __future__ import annotations

import copy
import functools
from importlib import resources
from typing import Any

import torch

from demos.exercises.core import Mistake, Recorded


def to_plain(recorded: Recorded) -> dict[str, Any]:
    """A declaration as plain dicts (what the data files hold)."""
    return {
        "cases": dict(recorded.cases),
        "expected": dict(recorded.expected),
        "mistakes": [
            {"why": m.why, "case": m.case, "results": dict(m.implementation)}
            for m in recorded.mistakes
        ],
    }


def from_plain(plain: dict[str, Any]) -> Recorded:
    mistakes = [Mistake(m["results"], m["why"], m["case"]) for m in plain["mistakes"]]
    return Recorded(dict(plain["cases"]), dict(plain["expected"]), mistakes)


@functools.cache
def chapter_data(chapter: str) -> dict[str, list[dict[str, Any]]]:
    """``{checker name: [declaration, ...]}`` (one per comparison the checker makes, in order) of
    ``data/<chapter>.pt``."""
    path = resources.files("demos.exercises") / "data" / f"{chapter}.pt"
    with path.open("rb") as file:
        return torch.load(file, weights_only=False)  # our own file: tensors, namespaces, dicts


def recorded(module: str, checker: str, index: int = 0) -> Recorded:
    """The ``index``-th declaration of ``checker`` in the chapter whose checkers are in ``module``
    (``demos.exercises.yi`` or ``yi``): a fresh copy, so nothing a check does can change it."""
    chapter = module.rsplit(".", 1)[-1]
    try:
        plain = chapter_data(chapter)[checker][index]
    except (KeyError, IndexError) as error:
        raise ValueError(
            f"no recorded declaration {index} of {chapter}.{checker} in data/{chapter}.pt: "
            "run scripts/exercise_data.py after changing a reference"
        ) from error
    return from_plain(copy.deepcopy(plain))
