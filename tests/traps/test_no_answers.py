"""No trap prints an exercise's answer: a trap's wrong or right line, as the chapter and the "Nearly
right" appendix print it, must not be a formula of the same chapter's exercise reference.

The Mamba trap once printed ``B_bar = (exp(delta * A) - 1) / A * B``, which is, up to broadcasting
indices and ``expm1``, the body of ``zoh_reference``, the answer to the chapter's zero-order-hold
exercise. The comparison is deliberately simple: both sides are parsed, indexing that only adds or
selects axes (``x[:, :, None]``) and the ``torch.``/``F.``/``math.`` prefixes are dropped, and
``expm1(x)`` is read as ``exp(x) - 1``; then a trap line's expression (at least two operations: a
one-operation line such as ``delta * B`` gives nothing away) may not equal any sub-expression of the
references. It catches a formula copied from the answer; it does not judge prose or paraphrase.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from functools import cache

import pytest

from demos.traps import all_traps

TRAPS = all_traps()
# A trap line that matches a reference's expression and yet gives no exercise away, with why
NOT_AN_ANSWER: dict[tuple[str, str], str] = {}
PREFIXES = {"torch", "F", "math", "np", "nn"}
OPERATIONS = (ast.BinOp, ast.Call, ast.UnaryOp, ast.Compare, ast.BoolOp)


class _Normalise(ast.NodeTransformer):
    def visit_Attribute(self, node):
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and node.value.id in PREFIXES:
            return ast.Name(node.attr, ast.Load())
        return node

    def visit_Subscript(self, node):
        self.generic_visit(node)
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if all(
            isinstance(p, ast.Slice)
            and p.lower is p.upper is p.step is None
            or isinstance(p, ast.Constant)
            and p.value in (None, Ellipsis)
            for p in parts
        ):
            return node.value  # x[:, :, None]: broadcasting, not part of the formula
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "expm1" and len(node.args) == 1:
            exp = ast.Call(ast.Name("exp", ast.Load()), node.args, [])
            return ast.BinOp(exp, ast.Sub(), ast.Constant(1))
        return node


def _operations(node: ast.AST) -> int:
    return sum(isinstance(n, OPERATIONS) for n in ast.walk(node))


def normalised_expressions(source: str, at_least: int = 2) -> set[str]:
    """Every sub-expression of ``source`` with ``at_least`` operations, normalised and unparsed."""
    tree = _Normalise().visit(ast.parse(textwrap.dedent(source)))
    return {
        ast.unparse(n)
        for n in ast.walk(tree)
        if isinstance(n, ast.expr) and _operations(n) >= at_least
    }


def line_expressions(line: str) -> set[str]:
    """The expression a trap line prints (the right-hand side of ``x = ...``, or the line itself),
    normalised; empty when the line is not Python (a few traps print a config value or prose)."""
    try:
        tree = ast.parse(line.split("  #")[0].strip())
    except SyntaxError:
        return set()
    tops = []
    for statement in tree.body:
        if isinstance(statement, ast.Assign | ast.AugAssign | ast.AnnAssign):
            tops.append(statement.value)
        elif isinstance(statement, ast.Expr):
            tops.append(statement.value)
    out = set()
    for top in tops:
        if top is not None and _operations(top) >= 2:
            out.add(ast.unparse(_Normalise().visit(top)))
    return out


def _helpers_called(fn, module: str) -> list:
    """The functions of the exercises ``module`` that ``fn`` calls by name (one level): a private
    helper such as mamba's ``_zoh_B`` holds the formula. Library functions a reference calls
    (``extract_flexible``, ``exact_match``) are the chapter's tools, which the exercise text names."""
    called = []
    for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(fn)))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            obj = fn.__globals__.get(node.func.id)
            if inspect.isfunction(obj) and obj.__module__ == module:
                called.append(obj)
    return called


@cache
def reference_expressions(chapter: str) -> frozenset[str]:
    """The normalised formulas of ``tests/exercise_references/<chapter>.py``'s references: functions named
    ``*_reference``, the ``reference`` argument of every ``check_function`` call, and the demos
    functions they call."""
    try:
        module = importlib.import_module(f"exercise_references.{chapter}")
    except ModuleNotFoundError:
        return frozenset()
    references = [
        obj
        for name, obj in vars(module).items()
        if inspect.isfunction(obj) and name.endswith("_reference")
    ]
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "check_function"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Name)
        ):
            obj = getattr(module, node.args[1].id, None)
            if inspect.isfunction(obj):
                references.append(obj)
    found: set[str] = set()
    helpers = [h for fn in references for h in _helpers_called(fn, module.__name__)]
    for fn in references + helpers:
        found |= normalised_expressions(inspect.getsource(fn))
    return frozenset(found)


def test_the_check_catches_the_formula_the_mamba_trap_once_printed():
    """The detector itself: the old Mamba line is the answer, up to indices and expm1."""
    old = "B_bar = (exp(delta * A) - 1) / A * B  # Eq. (4)"
    assert line_expressions(old) & reference_expressions("mamba")
    assert not line_expressions("B_bar = delta * B") & reference_expressions("mamba")


@pytest.mark.parametrize("trap", TRAPS, ids=[f"{t.chapter}: {t.title}" for t in TRAPS])
def test_no_trap_line_is_an_exercise_answer(trap):
    answers = reference_expressions(trap.chapter)
    for side, line in (("wrong", trap.wrong), ("right", trap.right)):
        if (trap.chapter, line.split("  #")[0].strip()) in NOT_AN_ANSWER:
            continue
        shared = line_expressions(line) & answers
        assert not shared, (
            f"{trap.chapter}: the trap {trap.title!r} prints, as its {side} line, {sorted(shared)}, "
            f"a formula of an exercise's reference answer in exercise_references.{trap.chapter}"
        )
