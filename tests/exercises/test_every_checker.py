"""Every chapter's checker, found by discovery, against its own known mistakes.

A checker names a known :class:`~demos.exercises.core.Mistake` as the likely cause of a wrong
answer. Handed in as the learner's answer, each mistake must get ❌ with its own hint, shown on the
case that isolates it; and each must differ from the reference on at least one case (on the case
it names, when it names one), or no answer could ever be told apart from the reference by it.
An answer that raises gets the line of the learner's code that raised, whichever checker runs it.

The checkers are the ``check_*`` functions of every module of :mod:`demos.exercises`, which
compare with recorded data; their reference, cases and mistakes (as code) are read from the
call that the checker of the same name in ``tests/exercise_references/<chapter>.py`` makes to
:func:`~demos.exercises.core.check_function` (recorded while it runs on a dummy answer), so a new
chapter's checker is covered without a table here. A checker that compares on its own
is declared in ``OWN_COMPARISON``; a test fails when one is neither.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from exercise_references import check_function_calls, orca2

import demos.exercises
from demos.exercises import core
from demos.exercises.compare import compare
from demos.exercises.core import Mistake, isolating_case


@dataclass
class Declared:
    """What a checker compares with: the reference, the cases, the known mistakes, and whether an
    implementation's result differs from the reference's on one case's arguments."""

    reference: Callable[..., Any]
    cases: dict[str, tuple]
    mistakes: list[Mistake]
    options: dict[str, Any] = field(default_factory=dict)  # atol, rtol, names, exact_dtype

    def differs(self, implementation: Callable, args: tuple) -> bool:
        try:
            got = implementation(*copy.deepcopy(args))
        except Exception:  # an exception is another result than the reference's
            return True
        return compare(got, self.reference(*copy.deepcopy(args)), **self.options) is not None


def _orca2_student_text() -> list[Declared]:
    declared = Declared(orca2.student_text, orca2.TEXT_CASES, list(orca2.TEXT_MISTAKES))

    def differs(implementation: Callable, args: tuple) -> bool:  # str answers: equal or not
        try:
            return implementation(*args) != orca2.student_text(*args)
        except Exception:
            return True

    declared.differs = differs
    return [declared]


# Checkers that compare without check_function, and what they compare with (none: no known mistakes).
OWN_COMPARISON: dict[str, Callable[[], list[Declared]]] = {
    "orca2.check_student_text": _orca2_student_text,
    # the answer is a (layer, sub-step) pair, read against the planted bug; no known mistakes
    "llama2.check_planted_mistake": list,
}


def _discover() -> dict[str, tuple[Any, Callable]]:
    """``{"chapter.check_x": (module, checker)}`` for every checker of every chapter module."""
    found = {}
    for info in pkgutil.iter_modules(demos.exercises.__path__):
        module = importlib.import_module(f"demos.exercises.{info.name}")
        for name, checker in inspect.getmembers(module, inspect.isfunction):
            if (
                name.startswith("check_")
                and checker.__module__ == module.__name__
                and module is not core  # check_function, check_recorded: the machinery
            ):
                found[f"{info.name}.{name}"] = (module, checker)
    return found


CHECKERS = _discover()


def _recorded(module: Any, checker: Callable) -> list[Declared]:
    """The declarations the reference checker of the same name passes to check_function,
    recorded on a dummy answer."""
    chapter = module.__name__.rsplit(".", 1)[-1]
    module = importlib.import_module(f"exercise_references.{chapter}")
    checker = getattr(module, checker.__name__)
    keep = ("atol", "rtol", "names", "exact_dtype")
    return [
        Declared(
            reference,
            dict(cases),
            [Mistake(*m) for m in options.get("mistakes", ())],
            {k: options[k] for k in keep if k in options},
        )
        for reference, cases, _, options in check_function_calls(module, checker)
    ]


DECLARED = {
    name: OWN_COMPARISON[name]() if name in OWN_COMPARISON else _recorded(*found)
    for name, found in CHECKERS.items()
}
KNOWN_MISTAKES = [
    pytest.param(name, declared, mistake, id=f"{name}: {mistake.why[:40]}")
    for name, calls in DECLARED.items()
    for declared in calls
    for mistake in declared.mistakes
]


def test_discovery_finds_the_chapters_checkers_and_their_mistakes():
    """A floor, so that a broken discovery cannot pass by finding nothing."""
    assert len(CHECKERS) >= 60, sorted(CHECKERS)
    assert len(KNOWN_MISTAKES) >= 200, len(KNOWN_MISTAKES)
    assert {"mistral.check_dilated_window_mask", "gsm8k.check_any_of_k"} <= set(CHECKERS)


def test_every_checker_declares_what_it_compares_with():
    """Each checker runs check_function or is listed in OWN_COMPARISON, so none escapes below."""
    assert set(OWN_COMPARISON) <= set(CHECKERS), set(OWN_COMPARISON) - set(CHECKERS)
    undeclared = [name for name, calls in DECLARED.items() if not calls]
    assert undeclared == [name for name in OWN_COMPARISON if not DECLARED[name]], undeclared


@pytest.mark.parametrize("name, declared, mistake", KNOWN_MISTAKES)
def test_every_known_mistake_differs_from_the_reference_somewhere(name, declared, mistake):
    differing = [case for case, args in declared.cases.items() if declared.differs(mistake, args)]
    assert differing, f"{name}: no case tells this mistake from the reference: {mistake.why}"
    if mistake.case is not None:
        assert mistake.case in differing, f"{name}: {mistake.case!r} does not isolate it"


@pytest.mark.parametrize("name, declared, mistake", KNOWN_MISTAKES)
def test_a_known_mistake_handed_in_gets_a_red_mark_and_its_hint(name, declared, mistake):
    result = CHECKERS[name][1](mistake.implementation)
    assert str(result).startswith("❌ Not yet."), str(result)
    assert f"Likely cause: {mistake.why}" in result.message, result.message
    differs = declared.differs
    isolating = isolating_case(mistake, declared.mistakes, declared.cases, differs)
    assert f"In case '{isolating}'" in result.message, result.message


def raises_on_its_second_line(*args):
    first = len(args)
    return first / 0  # the line every checker must name


@pytest.mark.parametrize("name", CHECKERS)
def test_every_checker_names_the_line_of_the_learners_code_that_raised(name):
    lines = inspect.getsourcelines(raises_on_its_second_line)
    line = lines[1] + 2
    assert "return first / 0" in lines[0][2]
    result = CHECKERS[name][1](raises_on_its_second_line)
    assert str(result).startswith("❌ Not yet."), str(result)
    assert (
        f"raised ZeroDivisionError: division by zero, at line {line} of test_every_checker.py, in "
        "`raises_on_its_second_line`: `return first / 0"
    ) in result.message, result.message
