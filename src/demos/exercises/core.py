"""Checkers for the chapters' exercises: compare a learner's answer with the reference, explain a mismatch.

One routine, :func:`check_recorded`, runs a learner's function on named cases and compares what
comes back (a tensor, a tuple of tensors, or a number) with what the reference returned there, as
recorded (:class:`Recorded`, shipped in ``demos/exercises/data``: the package holds no reference's
code). A chapter's checker is a declaration on top of it: the recorded cases, results and known
mistakes' results, and the tolerance. :func:`check_function` is the same with the reference and the
mistakes as code, recorded first (:func:`record`): what ``tests/exercise_references`` and
``scripts/exercise_data.py`` use.

A checker never raises on a learner's answer; it returns a :class:`Check` whose message says what
was expected, what came back, where they first differ and, when the answer behaves like a known
mistake on every case, its likely cause, shown on the case that isolates that mistake (see
:func:`isolating_case`). When the answer raises, the message names the exception and the line of
the learner's code that raised it. Each call gets fresh copies of the inputs, so an answer
that modifies them in place is reported and cannot spoil the next call. A correct answer in
another floating dtype is accepted: a wider one is rounded to the reference's dtype, a narrower
one (float16, bfloat16) is compared with a tolerance suited to its precision.

Over ~300 lines on purpose: the one routine every chapter's checker is built on, with the types it
returns (:class:`Check`, :class:`Mistake`); comparing values and naming them live apart
(:mod:`demos.exercises.compare`, :mod:`~demos.exercises.describe`, :mod:`~demos.exercises.hints`).
"""

from __future__ import annotations

import ast
import copy
import inspect
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

from demos.exercises.compare import compare
from demos.exercises.describe import counted, describe, describe_error, in_case

# What an exercise's cell prints before the learner has answered: on the web page (where nobody can
# answer) and in a fresh notebook this is instructions, not a failure, so it carries no red mark.
NOT_ATTEMPTED = "✏️ Not attempted yet."


@dataclass(frozen=True)
class Check:
    """The verdict of a checker: ``ok``, a message for the learner, and ``attempted`` (False while
    the answer is still the exercise's untouched template)."""

    ok: bool
    message: str
    attempted: bool = True

    def __str__(self) -> str:
        if self.ok:
            return "✅ Correct. " + self.message
        if not self.attempted:  # the exercise as the page shows it: say how to answer, no red mark
            return f"{NOT_ATTEMPTED} " + self.message
        return "❌ Not yet. " + self.message

    def _repr_markdown_(self) -> str:
        return str(self)

    def __repr__(self) -> str:
        return str(self)


class Mistake(NamedTuple):
    """A known wrong implementation (same arguments as the reference) and the cause to name;
    ``case``, when given, names the case written to isolate this mistake (the message shows it).
    In a :class:`Recorded` declaration ``implementation`` is ``{case: its result}``, not code."""

    implementation: Callable[..., Any]
    why: str
    case: str | None = None


class Raised(NamedTuple):
    """What a recorded implementation did instead of returning: the exception, as ``Type: text``."""

    error: str


@dataclass(frozen=True)
class Recorded:
    """A checker's declaration as data: the cases' arguments, the reference's result on each
    (``expected``) and the known mistakes, each a :class:`Mistake` whose ``implementation`` is
    ``{case: its result}`` (a :class:`Raised` where it raised). What the package ships instead of
    the reference's code (see :mod:`demos.exercises.recorded`)."""

    cases: dict[str, tuple]
    expected: dict[str, Any]
    mistakes: list[Mistake]


def _result(implementation: Callable[..., Any], args: tuple) -> Any:
    try:
        return implementation(*_fresh(args))
    except Exception as error:  # a known mistake may raise: that is its result
        return Raised(f"{type(error).__name__}: {error}")


def record(
    reference: Callable[..., Any],
    cases: Mapping[str, tuple],
    mistakes: Sequence[Mistake | tuple] = (),
) -> Recorded:
    """Run ``reference`` and each known mistake on every case and keep what they return."""
    cases = dict(cases)
    expected = {case: reference(*_fresh(args)) for case, args in cases.items()}
    kept = [
        Mistake(
            {case: _result(m.implementation, args) for case, args in cases.items()}, m.why, m.case
        )
        for m in (Mistake(*m) for m in mistakes)
    ]
    return Recorded(cases, expected, kept)


class Convention(NamedTuple):
    """Another way to write the right answer: ``convert`` maps an answer written that way back to
    the expected convention (None when the answer is not written that way); ``why`` names it."""

    convert: Callable[[Any], Any]
    why: str


# ---------------------------------------------------------------------------- the template

TEMPLATE_MARK = "your code here"  # the comment every exercise stub carries
_PLACEHOLDER_CALLS = {"zeros", "ones", "zeros_like", "ones_like", "empty", "empty_like", "full"}


def _placeholder(node: ast.expr | None) -> bool:
    """Whether a returned expression is a template's placeholder: a name, a constant, a tuple of
    them, or a call making zeros/ones (``torch.zeros_like(x)``)."""
    if node is None or isinstance(node, ast.Name | ast.Constant):
        return True
    if isinstance(node, ast.Tuple | ast.List):
        return all(_placeholder(e) for e in node.elts)
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name in _PLACEHOLDER_CALLS
    return False


def untouched_template(fn: Any) -> str | None:
    """The placeholder ``return`` of an exercise stub nobody has edited yet, else None.

    A stub is a function whose source still holds the comment ``# your code here`` and whose body
    is one ``return`` of a placeholder (``return x``, ``return None``, ``return torch.zeros(...)``).
    A learner who writes code, even keeping the comment, is past the template.
    """
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    if not tree.body or not isinstance(tree.body[0], ast.FunctionDef):
        return None
    return template_return(tree.body[0], source)


def template_return(func: ast.FunctionDef, source: str) -> str | None:
    """For a function's syntax tree and the source holding it: its placeholder ``return`` if it is
    an untouched exercise template (see :func:`untouched_template`), else None."""
    if TEMPLATE_MARK not in (ast.get_source_segment(source, func) or ""):
        return None
    body = [
        stmt
        for stmt in func.body
        if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant))
    ]  # a docstring, or a string left as a note
    if not body or (len(body) == 1 and isinstance(body[0], ast.Pass)):
        return "None"
    if len(body) == 1 and isinstance(body[0], ast.Return) and _placeholder(body[0].value):
        value = body[0].value
        return "return" + (f" {ast.unparse(value)}" if value is not None else "")
    return None


def _what(expected: Any, names: Sequence[str] | None = None) -> str:
    """What kind of value to return, without giving the answer away: a tensor's dtype and shape,
    "an int" or "a number", a tuple's items."""
    if isinstance(expected, tuple):
        names = list(names or [])
        items = [
            f"{names[i]}: {_what(item)}" if i < len(names) else _what(item)
            for i, item in enumerate(expected)
        ]
        return f"a tuple of {len(expected)} ({'; '.join(items)})"
    if isinstance(expected, torch.Tensor):
        return describe(expected)
    if isinstance(expected, bool):
        return "a bool"
    if isinstance(expected, int):
        return "an int"
    if isinstance(expected, float):
        return "a number"
    return describe(expected)


def _not_attempted(fn: Any, placeholder: str, context: str, expected: Any, names) -> Check:
    name = getattr(fn, "__name__", "the function")
    return Check(
        False,
        f"`{name}` is still the template (`{placeholder}`): write your answer in this cell in "
        f"place of `# {TEMPLATE_MARK}` and the placeholder, then run the cell again; the checker "
        f"will tell you whether it matches the reference. {context} it should return "
        f"{_what(expected, names)}.",
        attempted=False,
    )


# ---------------------------------------------------------------------------- describing values


def _fresh(args: tuple) -> tuple:
    return tuple(a.clone() if isinstance(a, torch.Tensor) else copy.deepcopy(a) for a in args)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return (
            isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and torch.equal(a.nan_to_num(), b.nan_to_num())
            and torch.equal(a.isnan(), b.isnan())
        )
    if isinstance(a, list | tuple):  # a list of tensors: == on it would compare tensors elementwise
        return (
            type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))  # type: ignore[arg-type]
        )
    try:
        return bool(a == b)
    except Exception:
        return False


def _both_nan(a: Any, b: Any) -> bool:
    """Two NaN numbers: an answer that gives NaN where a known mistake does (0/0 in both). Tensors
    need no such test: their comparison counts NaN against NaN as equal."""
    return isinstance(a, float) and isinstance(b, float) and a != a and b != b


@dataclass
class _Run:
    value: Any = None
    error: Exception | None = None
    modified: list[str] = field(default_factory=list)


def _call(fn: Callable[..., Any], args: tuple, arg_names: Sequence[str]) -> _Run:
    """Call ``fn`` on fresh copies of ``args``; note an exception and the arguments it modified."""
    fresh = _fresh(args)
    try:
        value = fn(*fresh)
    except Exception as error:  # the learner's code: report, don't crash the notebook
        return _Run(error=error)
    modified = [n for n, a, f in zip(arg_names, args, fresh, strict=False) if not _same(a, f)]
    return _Run(value=value, modified=modified)


@dataclass
class _Spec:
    expected: dict[str, Any]
    cases: dict[str, tuple]
    arg_names: Sequence[str]
    atol: float
    rtol: float
    names: Sequence[str] | None
    where: Callable[[tuple, tuple], str] | None
    exact_dtype: bool = False

    def compare(self, got: Any, expected: Any, args: tuple) -> str | None:
        where = (lambda index: self.where(index, args)) if self.where else None
        return compare(
            got,
            expected,
            self.atol,
            self.rtol,
            names=self.names,
            where=where,
            exact_dtype=self.exact_dtype,
        )

    def behaves_like(self, runs: dict[str, _Run], target: dict, convert=lambda v: v) -> bool:
        """Whether the converted answers equal ``target``'s recorded results on every case."""
        for case, args in self.cases.items():
            run, want = runs[case], target[case]
            if run.error is not None or isinstance(want, Raised):
                return False
            try:
                got = convert(run.value)
            except Exception:
                return False
            if got is None or not (_both_nan(got, want) or self.compare(got, want, args) is None):
                return False
        return True

    def differs(self, results: dict, case: str) -> bool:
        """Whether a recorded implementation's result on ``case`` differs from the reference's
        (an exception counts as another result)."""
        got = results[case]
        return (
            isinstance(got, Raised)
            or self.compare(got, self.expected[case], self.cases[case]) is not None
        )


def isolating_case(
    mistake: Mistake,
    mistakes: Sequence[Mistake],
    cases: Mapping[str, tuple],
    differs: Callable[[Callable, tuple], bool],
) -> str | None:
    """The case that isolates ``mistake``: the one its ``case`` names, when the mistake's result
    differs from the reference's there; else, of the cases where it differs, the one where the
    fewest other known mistakes differ too (the first of those). None when it differs nowhere.

    ``differs(implementation, args)`` says whether an implementation's result differs from the
    reference's on one case's arguments. A case where several mistakes differ at once shows a
    learner a mix of causes; the isolating case shows the one named.
    """
    if mistake.case in cases and differs(mistake.implementation, cases[mistake.case]):
        return mistake.case
    best: tuple[int, str] | None = None
    for case, args in cases.items():
        if not differs(mistake.implementation, args):
            continue
        others = sum(
            differs(other.implementation, args) for other in mistakes if other is not mistake
        )
        if best is None or others < best[0]:
            best = (others, case)
    return best[1] if best else None


def _likely_cause(
    runs: dict[str, _Run],
    spec: _Spec,
    mistakes: Sequence[Mistake],
    conventions: Sequence[Convention],
) -> tuple[str | None, Mistake | None]:
    """(the likely cause, the known mistake the answer behaves like when it is one, else None)."""
    for mistake in mistakes:
        if spec.behaves_like(runs, mistake.implementation):
            return mistake.why, mistake
    for convention in conventions:
        if not all(_written_in(convention, run) for run in runs.values()):
            continue
        if spec.behaves_like(runs, spec.expected, convention.convert):
            return f"{convention.why} Read that way, the answer is otherwise right.", None
        for wrong, why, _ in mistakes:
            if spec.behaves_like(runs, wrong, convention.convert):
                return f"{convention.why} Read that way, it still differs: {why}", None
        return f"{convention.why} Read that way, it still differs from the reference.", None
    return None, None


def _mismatch(case: str, args: tuple, run: _Run, problem: str | None, spec: _Spec) -> str:
    """What went wrong on one case: how the result differs, and any input modified in place."""
    message = f"{in_case(case, spec.arg_names, args)}: {problem or 'the result is right.'}"
    if run.modified:
        message += (
            f" It modified its input {', '.join(run.modified)} in place (the checker "
            "passed fresh copies; a caller's tensors would change): use out-of-place "
            "operations (x * 2, not x.mul_(2) or x[...] = ...)."
        )
    return message


def _written_in(convention: Convention, run: _Run) -> bool:
    try:
        return run.error is None and convention.convert(run.value) is not None
    except Exception:
        return False


def check_function(
    fn: Any,
    reference: Callable[..., Any],
    cases: Mapping[str, tuple],
    arg_names: Sequence[str],
    *,
    mistakes: Sequence[Mistake | tuple[Callable, str]] = (),
    **options: Any,
) -> Check:
    """Run ``fn`` and ``reference`` on each named case and explain the first difference: the
    reference and the mistakes are run first (:func:`record`), then :func:`check_recorded`
    compares. Used where the reference's code is at hand (tests, ``scripts/exercise_data.py``);
    the package's checkers compare with the recorded data.

    Args:
        reference: the right answer, called with the same arguments.
        mistakes: known wrong implementations (:class:`Mistake`).
        fn, cases, arg_names, options: as for :func:`check_recorded`.

    Raises:
        ValueError: ``cases`` is empty (a check of nothing would pass any answer).
    """
    _nonempty(cases)
    try:
        recorded = record(reference, cases, mistakes)
    except Exception as error:  # the reference or a case is broken: say so, don't crash
        return Check(False, f"The answer could not be compared: {type(error).__name__}: {error}")
    return check_recorded(fn, recorded, arg_names, **options)


def _nonempty(cases: Any) -> None:
    if not isinstance(cases, Mapping) or not cases:
        raise ValueError(
            f"cases ({cases!r:.60}) must map at least one case name to its arguments: a check "
            "with no cases would pass any answer"
        )


def check_recorded(
    fn: Any,
    recorded: Recorded,
    arg_names: Sequence[str],
    *,
    conventions: Sequence[Convention | tuple[Callable, str]] = (),
    atol: float = 0.0,
    rtol: float = 0.0,
    names: Sequence[str] | None = None,
    where: Callable[[tuple, tuple], str] | None = None,
    exact_dtype: bool = False,
) -> Check:
    """Run ``fn`` on each recorded case and explain the first difference from the recorded result.

    Args:
        fn: the learner's function (anything: a non-callable is explained, not raised on).
        recorded: the cases (``{case name: argument tuple}``; each call gets fresh copies of the
            arguments), the reference's result on each, and the known mistakes' results: an
            answer that equals one on every case gets its ``why`` as the likely cause, shown on
            the case that isolates it (:func:`isolating_case`).
        arg_names: the arguments' names, for the messages.
        conventions: other ways of writing the answer (an inverted or additive mask), named
            when the answer, converted back, matches the reference or a known mistake.
        atol, rtol: the tolerance for floating-point results (0, 0: exact); numbers and
            narrower dtypes also get the tolerance of their own precision.
        names: the names of the items when the reference returns a tuple (``("q", "k", "v")``).
        where: ``where(index, args)`` puts a tensor index into words (``query 2, key 0``).
        exact_dtype: require tensor results in the reference's dtype (when the exercise names
            the dtype); otherwise a correct answer in another floating dtype is accepted.

    Returns:
        ``Check(True, ...)`` when every case matches and no input was modified, else
        ``Check(False, message)``. Never raises on the learner's answer.

    Raises:
        ValueError: no cases are recorded (a check of nothing would pass any answer): a mistake
            of the exercise's author, not the learner's, so it raises.
    """
    _nonempty(recorded.cases)
    if not callable(fn):
        return Check(
            False,
            f"Expected a function, got {describe(fn)}. Pass the function itself: "
            "check_...(my_function), not check_...(my_function(...)).",
        )
    spec = _Spec(
        dict(recorded.expected),
        dict(recorded.cases),
        arg_names,
        atol,
        rtol,
        names,
        where,
        exact_dtype,
    )
    mistakes = [Mistake(*m) for m in recorded.mistakes]
    conventions = [Convention(*c) for c in conventions]
    by_name = {case: case for case in spec.cases}  # isolating_case reads results by case name
    template = untouched_template(fn)
    try:
        for case, args in spec.cases.items():
            expected = spec.expected[case]
            run = _call(fn, args, arg_names)
            context = in_case(case, arg_names, args)
            if template is not None and (
                run.error is not None or spec.compare(run.value, expected, args) is not None
            ):
                return _not_attempted(fn, template, context, expected, names)
            if run.error is not None:
                return Check(False, f"{context} it {describe_error(run.error)}")
            problem = spec.compare(run.value, expected, args)
            if problem is None and not run.modified:
                continue
            if not problem:
                return Check(False, _mismatch(case, args, run, problem, spec))
            runs = {name: _call(fn, a, arg_names) for name, a in spec.cases.items()}
            cause, mistake = _likely_cause(runs, spec, mistakes, conventions)
            isolating = mistake and isolating_case(mistake, mistakes, by_name, spec.differs)
            if isolating and isolating != case:  # show the mistake where nothing else differs
                other = spec.cases[isolating]
                there = spec.compare(runs[isolating].value, spec.expected[isolating], other)
                if there is not None:
                    case, args, run, problem = isolating, other, runs[isolating], there
            message = _mismatch(case, args, run, problem, spec)
            return Check(False, message + (f" Likely cause: {cause}" if cause else ""))
    except Exception as error:  # a checker never raises on a learner's answer
        return Check(False, f"The answer could not be compared: {type(error).__name__}: {error}")
    return Check(
        True,
        f"Matches the reference on {counted(len(spec.cases), 'case')}: {'; '.join(spec.cases)}.",
    )
