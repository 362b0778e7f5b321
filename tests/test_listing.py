"""The rule a listing on a page follows: a function's leading checks folded into one comment, the rest
kept as written, and the result still Python."""

from __future__ import annotations

import ast
import textwrap

import pytest

from demos.listing import (
    MIN_FOLDED_LINES,
    first_paragraph_docstring,
    fold_checks,
    strip_docstring,
)

ROPE_LIKE = '''\
def rotate(x, cos, sin):
    """Rotate x.

    More words.
    """
    check_floating(x=x, cos=cos)  # integer tables round
    t, d = x.shape[-2:]
    # an odd head cannot be split into pairs
    if d % 2:
        raise ValueError(f"d ({d}) must be even")

    if cos.shape != sin.shape:
        raise ValueError(
            f"cos and sin differ: {cos.shape} and {sin.shape}"
        )

    if cos.dim() == 3:
        cos = cos[:, None]
    return x * cos + sin
'''


def test_the_leading_checks_become_one_comment_and_the_rest_stays():
    listing = fold_checks(ROPE_LIKE, first_line=101)
    lines = listing.source.splitlines()
    ast.parse(listing.source)
    assert (
        lines[5:]
        == [
            "    # checks of x, cos, sin (folded; see the full source)",
            "    t, d = x.shape[-2:]",  # an assignment among the checks stays, in its place
            "    if cos.dim() == 3:",  # the first statement that is not a check ends them; no blank above
            "        cos = cos[:, None]",
            "    return x * cos + sin",
        ]
    )
    assert "raise" not in listing.source and "check_floating" not in listing.source
    assert "an odd head" not in listing.source  # a check's comment goes with it
    # the file's lines 106 (the call) and 108-115 (comment, both ifs and the blank line between)
    assert listing.lines == ((106, 106), (108, 115))
    assert listing.checks == ("check_floating", "if … raise", "if … raise")
    source_lines = ROPE_LIKE.splitlines()
    folded = [source_lines[n - 101] for a, b in listing.lines for n in range(a, b + 1)]
    assert folded[0].strip().startswith("check_floating(") and folded[-1].strip() == ")"


CHECKS = {
    "assert": "assert x > 0, 'x must be positive'",
    "helper": "check_positive_int('x', x)",
    "private helper": "_check_beta(x)",
    "validate": "validate_x(x)",
    "a module's helper": "validation.check_qkv(x, x, x)",
    "if ... raise": "if x < 0:\n    raise ValueError('x')",
    "if/elif/else all raise": "if x < 0:\n    raise ValueError('a')\nelif x > 9:\n    raise ValueError('b')\n"
    "else:\n    raise TypeError('c')",
    "a body ending in raise": "if x < 0:\n    message = f'x ({x})'\n    raise ValueError(message)",
    "an if holding checks": "if x is not None:\n    check_finite_number('x', x)\n    check_window(x)",
    "a for over checks": "for value in (x, 1):\n    if value < 0:\n        raise ValueError(value)",
}

NOT_CHECKS = {
    "work": "x.add_(1)\nx.mul_(2)",
    "an early return": "if x is None:\n    return 0",
    "work in the else": "if x < 0:\n    raise ValueError('x')\nelse:\n    x = -x",
    "a call that is not a check": "checkpoint(x)\ncheckpoint(x)",
    "a for that works": "for i in range(3):\n    x = x + i",
    "a loop with else": "for i in range(3):\n    check_window(i)\nelse:\n    x = 1",
}


def _function(statements: str, after: str = "return x") -> str:
    body = textwrap.indent(f"{statements}\n{after}", "    ")
    return f"def f(x, y=None):\n{body}\n"


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_each_kind_of_check_is_folded(check):
    source = _function(f"{check}\n{check}")  # twice, to pass MIN_FOLDED_LINES
    listing = fold_checks(source)
    assert (
        listing.source
        == "def f(x, y=None):\n    # checks of x (folded; see the full source)\n    return x\n"
    )
    assert len(listing.checks) == 2
    assert listing.lines == ((2, len(source.splitlines()) - 1),)


@pytest.mark.parametrize("statements", NOT_CHECKS.values(), ids=NOT_CHECKS.keys())
def test_other_statements_stay_and_end_the_checks(statements):
    check = "if y is None:\n    raise ValueError('y')"
    before = _function(f"{statements}\n{check}")  # after work, a check is part of the work
    assert fold_checks(before).source == before
    after = fold_checks(_function(f"{check}\n{statements}"))  # before it, it is folded
    assert after.checks == ("if … raise",)
    assert textwrap.indent(statements, "    ") in after.source


def test_a_function_that_only_checks_or_checks_in_one_line_is_left_as_written():
    only_checks = "def check(x):\n    if x < 0:\n        raise ValueError('x')\n"
    assert fold_checks(only_checks).source == only_checks
    one_line = _function("check_positive_int('x', x)")
    assert MIN_FOLDED_LINES == 2 and fold_checks(one_line).source == one_line
    shared = _function("y = x; check_window(x)\ncheck_window(y)")  # a check on a kept line
    assert fold_checks(shared).source == shared


def test_a_classs_methods_are_folded_one_by_one_and_indented():
    source = textwrap.dedent(
        '''\
        class Block:
            """A block."""

            def __init__(self, width):
                if width < 1:
                    raise ValueError("width")
                self.width = width

            def forward(self, x):
                check_floating(x=x)
                check_same_device(x=x, w=self.w)
                if self.width > 3:
                    raise ValueError("too wide")
                return x
        '''
    )
    listing = fold_checks(source)
    ast.parse(listing.source)
    assert (
        "        # checks of width (folded; see the full source)\n        self.width = width"
        in (listing.source)
    )
    assert "        # checks of x (folded; see the full source)\n        return x" in listing.source
    assert listing.checks == ("if … raise", "check_floating", "check_same_device", "if … raise")
    assert listing.lines == ((5, 6), (10, 13))


def test_the_comment_names_what_the_checks_test():
    def names(source: str) -> str:
        comment = next(
            line for line in fold_checks(source).source.splitlines() if "# checks" in line
        )
        return (
            comment.strip()
            .removeprefix("# checks of ")
            .removesuffix(" (folded; see the full source)")
        )

    three = "def f(a, b, c, d):\n    check_x(c)\n    check_x(a, b)\n    return d\n"
    assert names(three) == "a, b, c"  # the signature's order
    many = (
        "def f(a, b, c, d, e, f, g):\n    check_x(a, b, c, d, e, f)\n    check_x(a)\n    return g\n"
    )
    assert names(many) == "a, b, c, d and 2 more"
    every = "def f(a, b, c, d, e, f):\n    check_x(a, b, c)\n    check_x(d, e, f)\n    return 0\n"
    assert names(every) == "every argument"
    message_only = (
        "def f(a, b):\n    if a < 0:\n        raise ValueError(f'{a} {b}')\n    return b\n"
    )
    assert names(message_only) == "a"  # what the error message prints is not what is tested
    own = "def f(self):\n    check_x(self.width)\n    check_x(self.depth, 2)\n    return 0\n"
    assert names(own) == "self.width, self.depth"
    local = (
        "def f(a):\n    n = len(a)\n    if n > LIMIT:\n        raise ValueError(n)\n    return n\n"
    )
    assert names(local) == "n"  # not the constant LIMIT


def test_a_long_docstring_is_cut_to_its_first_paragraph_and_stays_python():
    source = 'def f(x):\n    r"""First line\n    still first, \\d.\n\n    Second.\n    """\n    return x\n'
    cut, shortened = first_paragraph_docstring(source)
    assert shortened and "Second" not in cut and "still first, \\d." in cut
    assert ast.get_docstring(ast.parse(cut).body[0]) == "First line\nstill first, \\d."
    one = 'def f(x):\n    """One paragraph\n    on two lines."""\n    return x\n'
    assert first_paragraph_docstring(one) == (one, False)


def test_stripping_the_docstring_takes_the_blank_line_after_it():
    source = 'class A:\n    """Doc."""\n\n    x = 1\n'
    assert strip_docstring(source) == "class A:\n    x = 1"
    only = 'def f():\n    """Only a docstring."""\n'
    assert strip_docstring(only) == only
