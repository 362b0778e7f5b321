"""The package a learner installs holds no exercise's answer: the checkers compare with recorded
results (``demos/exercises/data``), and the references live in ``tests/exercise_references/``.

The rule, checked for every recorded exercise (every ``check_*`` but Llama 2's planted-bug
checker, whose answer is a location): no callable that a module under ``demos.exercises``
defines or imports from ``demos`` (every module-level name whose object comes from a ``demos``
module, private helpers included), the ``check_*`` functions and the checking machinery of
``core``/``compare``/``describe``/``hints``/``recorded`` aside, returns the expected result on
every case of the exercise when called with the case's arguments; and no module under
``demos.exercises`` defines a function named as a reference or a known mistake of
``tests/exercise_references``. Each rule is shown to fail on a planted reference. The first
rule is checked again on the wheel a learner installs, with the student edition's imports.
"""

from __future__ import annotations

import ast
import collections.abc
import contextlib
import copy
import functools
import importlib
import importlib.util
import inspect
import io
import json
import os
import pkgutil
import subprocess
import sys
import types
import typing
from pathlib import Path

import nbformat
import pytest
import torch

import demos.exercises
from demos.exercises import recorded
from demos.exercises.compare import compare

ROOT = Path(__file__).resolve().parents[2]
MACHINERY = {"core", "compare", "describe", "hints", "recorded"}
CHAPTERS = [
    info.name
    for info in pkgutil.iter_modules(demos.exercises.__path__)
    if info.name not in MACHINERY
]


def callables(chapter: str) -> dict[str, object]:
    """``{name: object}``: what a learner can call from ``demos.exercises.<chapter>``, checkers
    aside: its functions and classes, and those it imports from ``demos``."""
    module = importlib.import_module(f"demos.exercises.{chapter}")
    found = {}
    for name, obj in vars(module).items():
        home = getattr(obj, "__module__", "") or ""
        if not (inspect.isfunction(obj) or inspect.isclass(obj)) or not home.startswith("demos"):
            continue
        if name.startswith("check_") or home.rsplit(".", 1)[-1] in MACHINERY:
            continue
        found[name] = obj
    return found


def reproduces(fn, declaration) -> bool:
    """Whether ``fn`` returns the recorded result (to 1e-5) on every case of a declaration."""
    for case, args in declaration.cases.items():
        fresh = copy.deepcopy(args)
        try:
            got = fn(*fresh)
        except Exception:  # the callable's error: it does not produce the answer
            return False
        if compare(got, declaration.expected[case], 1e-5, 1e-5) is not None:
            return False
    return True


def answers_found(chapter: str, module_callables: dict[str, object]) -> list[str]:
    found = []
    for checker in recorded.chapter_data(chapter):
        for index in range(len(recorded.chapter_data(chapter)[checker])):
            declaration = recorded.recorded(chapter, checker, index)
            found += [
                f"{chapter}.{name} answers {checker}"
                for name, fn in module_callables.items()
                if reproduces(fn, declaration)
            ]
    return found


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_name_in_the_chapters_exercises_module_computes_an_answer(chapter):
    assert answers_found(chapter, callables(chapter)) == []


def test_the_rule_finds_a_planted_reference():
    from exercise_references import mistral, yi

    planted = {**callables("yi"), "kv_bytes": yi.kv_bytes}
    assert answers_found("yi", planted) == ["yi.kv_bytes answers check_kv_bytes"]
    planted = {"slot_positions": mistral.slot_positions_reference}
    assert answers_found("mistral", planted) == [
        "mistral.slot_positions answers check_slot_positions"
    ]


@functools.cache
def package_functions() -> dict[str, object]:
    """``{"demos.module.name": function}``: every function a module of the installed ``demos``
    package defines, outside ``demos.exercises`` (the checkers themselves): what a learner who
    has the package can call instead of writing an answer."""
    found = {}
    for info in pkgutil.walk_packages(demos.__path__, "demos."):
        if info.name.startswith("demos.exercises"):
            continue
        module = importlib.import_module(info.name)
        for name, fn in vars(module).items():
            if inspect.isfunction(fn) and fn.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = fn
    return found


def _accepts(hint: object, value: object) -> bool:
    """Whether ``value`` fits the annotation ``hint``, as far as a plain check can tell: a class,
    a union, ``None``, ``Literal`` and the origin of a generic (``list[int]`` → ``list``) are
    checked; ``float`` takes an int (PEP 484); anything else (``Any``, a ``TypeVar``, ...) fits."""
    if hint is typing.Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(h, value) for h in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is float:
        return isinstance(value, (int, float))
    target = origin if origin is not None else hint
    if target is collections.abc.Callable:
        return callable(value)
    if isinstance(target, type):
        try:
            return isinstance(value, target)
        except TypeError:  # a special form isinstance does not take: it fits
            return True
    return True


@functools.cache
def _hints(fn) -> dict[str, object]:
    """``fn``'s resolved annotations, read once per function; ``{}`` when one does not resolve
    (then only its signature says what it takes)."""
    try:
        return typing.get_type_hints(fn)
    except Exception:  # e.g. a name imported only for type checking
        return {}


# Results a checker may take in another form than the reference's (a 0-d tensor for a float, a
# list for a tuple): a function annotated to return one of these is not ruled out by its type.
LOOSE_RESULTS = (int, float, bool, list, tuple, torch.Tensor)


def _may_return(fn, expected: object) -> bool:
    """Whether ``fn``'s return annotation allows ``expected``: a function annotated to return a
    record (a dict, a dataclass of the package, a string) cannot return a tensor an exercise asks
    for; numbers, sequences, tensors and unannotated results are never ruled out."""
    hint = _hints(fn).get("return", typing.Any)
    options = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType)
        else (hint,)
    )
    for option in options:
        target = typing.get_origin(option) or option
        if not isinstance(target, type) or issubclass(target, LOOSE_RESULTS):
            return True
        if _accepts(option, expected):
            return True
    return False


def _binds(fn, args: tuple) -> bool:
    """Whether ``fn`` takes ``args``: its signature binds them, and each fits its parameter's
    annotation (a function typed for a config or a model is not handed a tensor; it would not
    answer, and some of the package's functions train a toy model before they fail)."""
    try:
        bound = inspect.signature(fn).bind(*args)
    except (TypeError, ValueError):  # another signature: not a candidate answer
        return False
    hints = _hints(fn)
    return all(_accepts(hints[n], v) for n, v in bound.arguments.items() if n in hints)


# Looser than any checker's tolerance (at most 1e-4): a function that misses a case's result by
# more cannot pass that checker, so only the others are handed to it.
NEAR = 1e-2


def _near_first_case(fn, declaration) -> bool:
    """Whether ``fn`` takes the first case's arguments and returns about its recorded result."""
    case, args = next(iter(declaration.cases.items()))
    if not _binds(fn, args) or not _may_return(fn, declaration.expected[case]):
        return False
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            got = fn(*copy.deepcopy(args))
    except Exception:  # the function's own error: not this answer
        return False
    try:
        return compare(got, declaration.expected[case], NEAR, NEAR) is None
    except Exception:  # a result compare cannot read: let the checker itself judge it
        return True


def functions_passing(chapter: str, functions: dict[str, object]) -> list[str]:
    """``"name passes chapter.check_x"`` for every function of ``functions`` that the checker
    itself accepts (✅) when handed in as the answer. Only a function that returns about the
    recorded result on the first case of one of the checker's comparisons is handed in: the
    checker compares every case, so no other function can pass it."""
    module = importlib.import_module(f"demos.exercises.{chapter}")
    passing = []
    for checker_name, declarations in recorded.chapter_data(chapter).items():
        checker = getattr(module, checker_name)
        comparisons = [
            recorded.recorded(chapter, checker_name, i) for i in range(len(declarations))
        ]
        for name, fn in functions.items():
            if not any(_near_first_case(fn, d) for d in comparisons):
                continue
            with contextlib.redirect_stdout(io.StringIO()):
                accepted = checker(fn).ok
            if accepted:
                passing.append(f"{name} passes {chapter}.{checker_name}")
    return passing


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_function_of_the_package_passes_a_checker(chapter, tmp_path, monkeypatch):
    """No exercise asks for what the package already has: no function of ``demos`` (the layers,
    the evaluation code, the toys, ...), which a chapter may show with ``show_source``, passes a
    checker when handed in as the learner's answer. (Run in a scratch directory: a function
    called with a case's arguments must not write into the repository.)"""
    monkeypatch.chdir(tmp_path)
    assert functions_passing(chapter, package_functions()) == []


def test_the_package_rule_finds_a_planted_answer(tmp_path, monkeypatch):
    from exercise_references import yi

    monkeypatch.chdir(tmp_path)
    planted = {"demos.layers.planted.kv_bytes": yi.kv_bytes, "demos.layers.other.abs": abs}
    assert functions_passing("yi", planted) == [
        "demos.layers.planted.kv_bytes passes yi.check_kv_bytes"
    ]


def reference_names(chapter: str) -> set[str]:
    """The names of the functions a reference module defines for its answers and mistakes: every
    function of ``tests/exercise_references/<chapter>.py`` that is not a checker."""
    module = importlib.import_module(f"exercise_references.{chapter}")
    return {
        name
        for name, fn in vars(module).items()
        if inspect.isfunction(fn)
        and fn.__module__ == module.__name__
        and not name.startswith("check_")
    }


# helpers that read or word a result, shared by a reference module and the package (no answer)
SHARED_HELPERS = {
    "mistral": {"_from_inverted", "_from_additive", "_from_zero_one", "_where"},
    "mmlu": {"_from_letter"},
    "phi3": {"_integer_codes"},
    "qwen": {"_not_int"},
    "stripedhyena": {"_int_only"},
    "xgen": {"_int_only"},
    "yi": {"_config"},
    "llama2": {"planted_mistake_models", "_read_answer", "_hint"},
    "orca2": {
        "_text_case",
        "_text_mismatch",
        "_first_difference",
        "_same_as",
        "_text_differs",
        "_int64_required",
    },
    "vicuna": {"_wrong_axis", "_update_cases", "_label_cases", "_not_in_chunks"},
}


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_exercises_module_defines_a_reference_or_a_mistake(chapter):
    module = importlib.import_module(f"demos.exercises.{chapter}")
    defined = {
        n
        for n, f in vars(module).items()
        if inspect.isfunction(f) and f.__module__ == module.__name__
    }
    shared = defined & reference_names(chapter) - SHARED_HELPERS.get(chapter, set())
    assert not shared, f"demos.exercises.{chapter} defines {sorted(shared)}, as its references do"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def student_imports(edition: Path) -> dict[str, set[str]]:
    """``{module: names}`` that the student edition's chapters import from ``demos.exercises``."""
    found: dict[str, set[str]] = {}
    for path in sorted((edition / "book").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:  # a cell of IPython magics only
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "demos.exercises."
                ):
                    found.setdefault(node.module, set()).update(a.name for a in node.names)
    return found


# What the installed package is asked, in a fresh interpreter that sees only the wheel's files
# (and the libraries), never src/ or tests/: the same rule as above, over every chapter.
INSTALLED_CHECK = """
import copy, importlib, inspect, json, pkgutil, sys
import demos, demos.exercises
from demos.exercises import recorded
from demos.exercises.compare import compare
MACHINERY = {machinery!r}
{source}
chapters = [i.name for i in pkgutil.iter_modules(demos.exercises.__path__) if i.name not in MACHINERY]
found = [a for chapter in chapters for a in answers_found(chapter, callables(chapter))]
kv = recorded.recorded("yi", "check_kv_bytes")
def planted(config, tokens):  # a positive control: returns the recorded answers
    return next(kv.expected[c] for c, a in kv.cases.items() if vars(a[0]) == vars(config) and a[1] == tokens)
control = answers_found("yi", {{"planted": planted}})
imported = {{}}
for module, names in {imports!r}.items():
    imported.update({{f"{{module}}.{{n}}": getattr(importlib.import_module(module), n).__module__
                      for n in names}})
try:
    import exercise_references
    references = exercise_references.__file__
except ModuleNotFoundError:
    references = None
print(json.dumps({{"demos": demos.__file__, "chapters": chapters, "found": found, "control": control,
                  "imported": imported, "references": references}}))
"""


@pytest.mark.notebooks  # writes an edition, a wheel or reads every notebook: full lane
def test_the_student_edition_with_the_installed_package_reaches_no_answer(tmp_path):
    """The wheel a learner installs (scripts/notebook_download.py builds it), installed alone, and
    the student edition (scripts/student_edition.py): every name the edition's chapters import
    from demos.exercises comes from the wheel, the rule above finds no answer in any chapter of
    the installed package, the data files are installed, and the references are not there."""
    wheel = _load("notebook_download").build_wheel(tmp_path / "wheel")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
        + ["--target", str(target), str(wheel)],
        check=True,
    )
    assert sorted(p.name for p in (target / "demos/exercises/data").glob("*.pt")) == sorted(
        f"{c}.pt" for c in CHAPTERS
    )
    assert not list(target.rglob("exercise_references"))
    edition = tmp_path / "student"
    assert _load("student_edition").main(["--out", str(edition)]) == 0
    imports = student_imports(edition)
    assert {n for names in imports.values() for n in names} >= {"check_kv_bytes", "check_zoh"}
    source = "\n\n".join(inspect.getsource(f) for f in (callables, reproduces, answers_found))
    code = INSTALLED_CHECK.format(machinery=MACHINERY, source=source, imports=imports)
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["demos"].startswith(str(target)), result["demos"]  # the wheel's copy
    assert result["chapters"] == CHAPTERS
    assert result["control"] == ["yi.planted answers check_kv_bytes"]  # the rule can fail there
    assert result["found"] == [], result["found"]
    assert result["references"] is None, result["references"]
    not_checkers = {
        name
        for name, home in result["imported"].items()
        if not name.rsplit(".", 1)[1].startswith("check_")
    }
    # Llama 2's planted-bug exercise: the models with the bug in them, the question not its answer
    assert not_checkers <= {"demos.exercises.llama2.planted_mistake_models"}, not_checkers
