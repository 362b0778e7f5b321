"""What a listing in the book leaves out of a function's source, so that it shows the idea.

Every public function of ``demos`` starts by checking its arguments (``demos.validation``: bad input
fails early with a ``ValueError`` naming the value and the rule). A chapter that prints such a
function wants the idea, not the checks: :func:`fold_checks` folds them into one comment naming what
they check, and reports which lines it took out so that the page can point to the full source. The
rule reads the syntax tree, never the text, so the listing stays valid Python.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

__all__ = ["FoldedListing", "first_paragraph_docstring", "fold_checks", "strip_docstring"]

CHECK_HELPER = re.compile(
    r"_?(check|validate)(_\w+)?"
)  # check_floating, _check_beta; not checkpoint
MIN_FOLDED_LINES = 2  # a one-line check reads as well as the comment that would replace it
MAX_NAMED = 5  # names a fold's comment lists before it says "and N more"
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class FoldedListing:
    """A listing with its leading checks folded: the text, and what was taken out of it.

    ``source`` is valid Python; ``checks`` names each folded statement in order (the helper it calls,
    ``if … raise``, ``for … raise``, ``assert``); ``lines`` are the folded lines as ``(first, last)``
    pairs, numbered as in the file when :func:`fold_checks` was given the listing's first line.
    """

    source: str
    checks: tuple[str, ...] = ()
    lines: tuple[tuple[int, int], ...] = ()


def fold_checks(source: str, first_line: int = 1) -> FoldedListing:
    """Fold the checks at the start of each function in ``source`` into one comment line.

    The rule: a function's checks are its leading statements (after the docstring) that call a
    ``check*``, ``_check*`` or ``validate*`` helper, ``assert``, ``raise``, or are an ``if`` whose
    branches each end in ``raise`` or hold only checks, or a ``for`` whose body holds only checks.
    Plain assignments among them (``t, d = x.shape[-2:]``) stay in the listing; the first other
    statement ends the checks. The checks, with the comment lines just above each, become one comment
    where the first one was, naming the arguments they test:
    ``# checks of x, cos, sin (folded; see the full source)``. A class's methods are folded one by
    one. A function keeps its checks where they take fewer than ``MIN_FOLDED_LINES`` lines, or where
    they are all it does.
    """
    lines = source.splitlines()
    tree = ast.parse(source)
    functions = [node for node in tree.body if isinstance(node, _FUNCTIONS)]
    for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
        functions += [node for node in cls.body if isinstance(node, _FUNCTIONS)]
    edits: list[tuple[int, int, list[str]]] = []  # (first line, last line, replacement), 1-based
    folded: list[tuple[int, int]] = []
    checks: list[str] = []
    for function in functions:
        statements = _leading_checks(function)
        spans = _spans(statements, lines)
        if sum(last - first + 1 for first, last in spans) < MIN_FOLDED_LINES:
            continue
        indent = " " * statements[0].col_offset
        names = _checked_names(function, statements)
        comment = f"{indent}# checks of {names} (folded; see the full source)"
        cut = [[first, last, []] for first, last in spans]
        cut[0][2] = [comment]
        # the blank line that closed the checks goes, so that the comment heads the code after them
        more = function.body[-1].end_lineno > cut[-1][1]
        if more and not lines[cut[-1][1]].strip():
            cut[-1][1] += 1
        edits += [(first, last, replacement) for first, last, replacement in cut]
        folded += spans
        checks += [_label(statement) for statement in statements]
    if not edits:
        return FoldedListing(source)
    for first, last, replacement in sorted(edits, reverse=True):
        lines[first - 1 : last] = replacement
    listing = "\n".join(lines) + ("\n" if source.endswith("\n") else "")
    ast.parse(listing)  # whole statements went and each function kept one: still Python
    offset = first_line - 1
    spans = tuple((first + offset, last + offset) for first, last in sorted(folded))
    return FoldedListing(listing, tuple(checks), spans)


def _is_check(statement: ast.stmt) -> bool:
    """Whether ``statement`` only checks (see :func:`fold_checks` for the rule)."""
    if isinstance(statement, (ast.Assert, ast.Raise)):
        return True
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        return CHECK_HELPER.fullmatch(_call_name(statement.value)) is not None
    if isinstance(statement, ast.If):
        return all(
            isinstance(branch[-1], ast.Raise) or all(map(_is_check, branch))
            for branch in (statement.body, statement.orelse)
            if branch
        )
    if isinstance(statement, ast.For):
        return not statement.orelse and all(map(_is_check, statement.body))
    return False


def _call_name(call: ast.Call) -> str:
    """``check_qkv`` for ``check_qkv(...)``, ``validation.check_qkv(...)``, ``self.check_qkv(...)``."""
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _leading_checks(function: _Function) -> list[ast.stmt]:
    """The checks among a function's leading statements; [] where folding them would leave nothing."""
    body = function.body[1:] if docstring_node(function) else function.body
    checks: list[ast.stmt] = []
    for statement in body:
        if _is_check(statement):
            checks.append(statement)
        elif not isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            break
    kept = [statement for statement in body if statement not in checks]
    kept_lines = {line for s in kept for line in (s.lineno, s.end_lineno)}
    shared = any(line in kept_lines for s in checks for line in range(s.lineno, s.end_lineno + 1))
    if not kept or shared:  # it only checks, or a check shares a line: ``a = f(x); check(a)``
        return []
    return checks


def _spans(checks: list[ast.stmt], lines: list[str]) -> list[tuple[int, int]]:
    """The lines the checks take with the comment lines just above each; checks apart only by blank
    lines make one span."""
    spans: list[tuple[int, int]] = []
    for statement in checks:
        first = statement.lineno
        while first > 1 and lines[first - 2].lstrip().startswith("#"):
            first -= 1
        if spans and all(not line.strip() for line in lines[spans[-1][1] : first - 1]):
            spans[-1] = (spans[-1][0], statement.end_lineno)
        else:
            spans.append((first, statement.end_lineno))
    return spans


def _label(statement: ast.stmt) -> str:
    """A folded statement as the line under the listing names it: ``check_qkv``, ``if … raise``."""
    if isinstance(statement, ast.Expr):
        return _call_name(statement.value)
    if isinstance(statement, (ast.If, ast.For)):
        keyword = "if" if isinstance(statement, ast.If) else "for"
        if any(isinstance(node, ast.Raise) for node in ast.walk(statement)):
            return f"{keyword} … raise"
        calls = (node for node in ast.walk(statement) if isinstance(node, ast.Expr))
        return f"{keyword} … " + ", ".join(dict.fromkeys(_call_name(node.value) for node in calls))
    return type(statement).__name__.lower()  # assert, raise


def _checked_names(function: _Function, checks: list[ast.stmt]) -> str:
    """What the checks test (their error messages aside), for the comment: the function's arguments
    in the signature's order; where they test none, the object's attributes (``self.window``) or the
    local names."""
    arguments = function.args
    params = [a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)]
    params += [a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None]
    params = [name for name in params if name not in ("self", "cls")]
    nodes = [node for statement in checks for node in _tested(statement)]
    read = {node.id for node in nodes if isinstance(node, ast.Name)}
    names = [name for name in params if name in read]
    if not names:  # checks of the object's own state
        attributes = (n for n in nodes if isinstance(n, ast.Attribute))
        names = list(dict.fromkeys(ast.unparse(n) for n in attributes if _is_name(n.value, "self")))
    if not names:  # checks of what the function computed first
        local = {
            n.id
            for n in ast.walk(function)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        bound = {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        tested = (n.id for n in nodes if isinstance(n, ast.Name) and n.id in local - bound)
        names = list(dict.fromkeys(tested))
    if not names:
        return "the inputs"
    if len(names) <= MAX_NAMED:
        return ", ".join(names)
    if names == params:
        return "every argument"
    return f"{', '.join(names[: MAX_NAMED - 1])} and {len(names) - MAX_NAMED + 1} more"


def _tested(node: ast.AST) -> list[ast.AST]:
    """The nodes under ``node`` that a check tests, leaving out what only its error message reads."""
    if isinstance(node, ast.Raise):
        return []
    return [node] + [n for child in ast.iter_child_nodes(node) for n in _tested(child)]


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def docstring_node(node: ast.AST) -> ast.Expr | None:
    """The statement holding the docstring of a function or class node, or None."""
    first = node.body[0] if getattr(node, "body", None) else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        return first if isinstance(first.value.value, str) else None
    return None


def strip_docstring(source: str) -> str:
    """Remove the docstring of the (single) function or class defined in ``source``, and a blank line
    after it."""
    node = ast.parse(source).body[0]
    doc = docstring_node(node)
    if doc is None or len(node.body) == 1:
        return source
    lines = source.splitlines()
    last = doc.end_lineno + (doc.end_lineno < len(lines) and not lines[doc.end_lineno].strip())
    del lines[doc.lineno - 1 : last]
    return "\n".join(lines)


def first_paragraph_docstring(source: str) -> tuple[str, bool]:
    """``source`` with the docstring of its (single) function or class cut to its first paragraph,
    and whether it was cut (it had more than one)."""
    doc = docstring_node(ast.parse(source).body[0])
    if doc is None:
        return source, False
    lines = source.splitlines()
    blank = next((i for i in range(doc.lineno, doc.end_lineno) if not lines[i - 1].strip()), None)
    if blank is None:  # one paragraph
        return source, False
    quotes = lines[doc.lineno - 1].lstrip().lstrip("rRuU")[:3]  # its own: double or single
    lines[blank - 1 : doc.end_lineno] = [" " * doc.col_offset + quotes]
    return "\n".join(lines), True
