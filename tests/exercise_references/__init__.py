"""The exercises' references: the right answers, the cases and the known mistakes' code, kept out of
the package a learner installs. ``scripts/exercise_data.py`` records what they return into
``src/demos/exercises/data/``, which the package' checkers compare with."""

from collections.abc import Callable
from typing import Any


def check_function_calls(module: Any, checker: Callable) -> list[tuple]:
    """The ``(reference, cases, arg_names, options)`` that ``checker``, a references module's
    ``check_*``, passes to ``core.check_function``, caught while it checks a dummy answer (the
    module's ``check_function`` is swapped for a recorder, then put back)."""
    calls: list[tuple] = []
    real = module.check_function

    def recording(fn, reference, cases, arg_names, **options):
        calls.append((reference, cases, arg_names, options))
        return real(fn, reference, cases, arg_names, **options)

    module.check_function = recording
    try:
        checker(lambda *args: None)
    finally:
        module.check_function = real
    return calls
