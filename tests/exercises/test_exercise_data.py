"""The checkers' recorded data (``src/demos/exercises/data/<chapter>.pt``) is what the references
in ``tests/exercise_references/`` return: recorded again here, in memory, and compared with the
files the package ships, so a reference and the data cannot drift apart."""

from __future__ import annotations

import copy
import importlib.util
import inspect
import math
import pkgutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import tomllib
import torch

import demos.exercises
from demos.exercises import core, recorded

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("exercise_data", ROOT / "scripts/exercise_data.py")
exercise_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(exercise_data)

CHAPTERS = exercise_data.chapters()
# compares with its planted bug, not with a reference's results (no answer in it: a location)
NO_DATA = {"llama2.check_planted_mistake"}


def same(a: Any, b: Any) -> bool:
    """Equal as data: tensors in value, dtype and shape (NaN equal to NaN), containers item by
    item, namespaces by their fields, floats with NaN equal to NaN."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and bool(torch.equal(a.isnan(), b.isnan()) if a.is_floating_point() else True)
            and torch.equal(a.nan_to_num(), b.nan_to_num())
        )
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, SimpleNamespace):
        return same(vars(a), vars(b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def test_same_tells_a_changed_result_apart():
    """The comparison below can fail: one value, dtype or case name changed is another record."""
    data = recorded.chapter_data("yi")
    assert same(data, copy.deepcopy(data))
    changed = copy.deepcopy(data)
    first = changed["check_kv_bytes"][0]["expected"]
    first[next(iter(first))] += 1
    assert not same(data, changed)
    tensors = copy.deepcopy(recorded.chapter_data("mistral"))
    mask = tensors["check_dilated_window_mask"][0]["expected"]
    key = next(iter(mask))
    mask[key] = mask[key].to(torch.uint8)
    assert not same(recorded.chapter_data("mistral"), tensors)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_shipped_data_is_what_the_references_record(chapter):
    shipped = torch.load(
        ROOT / "src/demos/exercises/data" / f"{chapter}.pt", weights_only=False
    )  # our own file
    assert same(exercise_data.chapter_data(chapter), shipped), (
        f"data/{chapter}.pt differs from what tests/exercise_references/{chapter}.py records: "
        "run scripts/exercise_data.py"
    )


def _package_checkers() -> set[str]:
    found = set()
    for info in pkgutil.iter_modules(demos.exercises.__path__):
        module = importlib.import_module(f"demos.exercises.{info.name}")
        if module is core:
            continue
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("check_") and fn.__module__ == module.__name__:
                found.add(f"{info.name}.{name}")
    return found


def test_every_checker_has_its_data_and_every_record_its_checker():
    checkers = _package_checkers()
    recorded_names = {
        f"{chapter}.{name}" for chapter in CHAPTERS for name in recorded.chapter_data(chapter)
    }
    assert len(checkers) >= 70, sorted(checkers)
    assert checkers - NO_DATA == recorded_names, (checkers - NO_DATA) ^ recorded_names
    assert set(CHAPTERS) == {name.split(".")[0] for name in checkers}


def test_the_data_files_are_in_the_wheel():
    """pyproject's package-data ships every data file (setuptools leaves out what it names not)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["demos"]
    package = ROOT / "src/demos"
    shipped = {p for g in globs for p in package.glob(g)}
    files = sorted((package / "exercises/data").glob("*"))
    assert files and all(f in shipped for f in files), [f for f in files if f not in shipped]


def test_a_missing_record_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match=r"yi\.check_nothing"):
        recorded.recorded("demos.exercises.yi", "check_nothing")
