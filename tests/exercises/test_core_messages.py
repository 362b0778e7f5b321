"""How a check words what it found: counts with their right number, a case of a function of no
arguments, the line of the learner's code that raised, and the case that isolates a mistake."""

from __future__ import annotations

import linecache
from pathlib import Path

import pytest
import torch

from demos.exercises.compare import compare
from demos.exercises.core import Mistake, check_function, isolating_case
from demos.exercises.describe import counted, describe_error, in_case

HERE = Path(__file__)


def line_of(marker: str) -> int:
    """The line number of this file's only line that holds ``marker``."""
    lines = [i for i, text in enumerate(HERE.read_text().splitlines(), 1) if marker in text]
    assert len(lines) == 1, (marker, lines)
    return lines[0]


# ---------------------------------------------------------------------------- counts


@pytest.mark.parametrize(
    "n, noun, plural, words",
    [
        (1, "case", None, "1 case"),
        (0, "case", None, "0 cases"),
        (3, "case", None, "3 cases"),
        (1024, "element", None, "1,024 elements"),
        (2, "axis", "axes", "2 axes"),
        (1, "axis", "axes", "1 axis"),
    ],
)
def test_counted_puts_the_noun_in_the_number_the_count_asks(n, noun, plural, words):
    assert counted(n, noun, plural) == words


def test_a_check_of_one_case_says_one_case():
    result = check_function(lambda x: x * 2, lambda x: x + x, {"only": (torch.ones(2),)}, ("x",))
    assert result.ok and "on 1 case: only." in result.message, result.message
    two = check_function(abs, abs, {"a": (1,), "b": (-1,)}, ("x",))
    assert "on 2 cases: a; b." in two.message, two.message


def test_one_differing_element_is_singular_and_a_tensor_of_one_element_too():
    got, want = torch.tensor([1.0, 5.0, 3.0]), torch.tensor([1.0, 2.0, 3.0])
    assert "1 of 3 elements differs;" in compare(got, want)
    assert "3 of 3 elements differ;" in compare(got * 10, want)
    assert "1 of 1 element differs;" in compare(torch.tensor([5.0]), torch.tensor([2.0]))
    nan = compare(torch.tensor([float("nan")]), torch.tensor([2.0]))
    assert "1 NaN of 1 element (" in nan, nan


def test_a_function_of_no_arguments_gets_no_empty_brackets():
    assert in_case("by hand", (), ()) == "In case 'by hand'"
    assert in_case("small", ("x",), (2,)) == "In case 'small' (x = 2)"
    result = check_function(lambda: 4, lambda: 3, {"worked by hand": ()}, ())
    assert result.message.startswith("In case 'worked by hand': the result: expected 3, got 4")
    assert "()" not in result.message
    raised = check_function(lambda: 1 / 0, lambda: 3, {"worked by hand": ()}, ())
    assert raised.message.startswith("In case 'worked by hand' it raised ZeroDivisionError")


# ---------------------------------------------------------------------------- the line that raised


def halves(x):
    total = int(x.sum()) * 0
    return x / (1 / total)  # raises: ZeroDivisionError


def helper(x):
    return x[10]  # raises: IndexError in the helper


def calls_the_helper(x):
    return helper(x) + 1


def calls_torch_badly(x):
    return torch.einsum("ij->k", x)  # raises: inside torch, called from here


def test_the_message_names_the_learners_line_that_raised():
    cases = {"three": (torch.tensor([1.0, 2.0, 3.0]),)}
    message = check_function(halves, lambda x: x / 2, cases, ("x",)).message
    line = line_of("# raises" + ": ZeroDivisionError")
    assert message.startswith(
        "In case 'three' (x of shape (3,)) it raised ZeroDivisionError: division by zero, "
        f"at line {line} of {HERE.name}, in `halves`: `return x / (1 / total)"
    ), message


def test_the_line_is_the_innermost_of_the_learners_code_not_torchs():
    x = torch.ones(3)
    try:
        calls_the_helper(x)
    except IndexError as error:
        words = describe_error(error)
    line = line_of("# raises" + ": IndexError in the helper")
    assert words.startswith("raised IndexError: index 10 is out of bounds"), words
    assert f"at line {line} of {HERE.name}, in `helper`: `return x[10]" in words, words
    try:
        calls_torch_badly(x)
    except RuntimeError as error:
        words = describe_error(error)
    assert "site-packages" not in words and "functional.py" not in words, words
    line = line_of("# raises" + ": inside torch, called from here")
    assert f"at line {line} of {HERE.name}, in `calls_torch_badly`" in words, words


def test_a_notebook_cell_is_named_as_the_cell():
    """Jupyter (ipykernel) compiles a cell under /tmp/ipykernel_<pid>/<hash>.py and keeps its
    lines in linecache; the message names the line within the cell, as the notebook numbers it."""
    filename = "/tmp/ipykernel_4242/1234567890.py"
    cell = "import math\n\ndef scores(q):\n    return math.log(q - q)\n"
    linecache.cache[filename] = (len(cell), None, cell.splitlines(True), filename)
    namespace: dict = {}
    exec(compile(cell, filename, "exec"), namespace)
    try:
        message = check_function(namespace["scores"], abs, {"one": (2.0,)}, ("q",)).message
    finally:
        del linecache.cache[filename]
    assert message == (
        "In case 'one' (q = 2) it raised ValueError: math domain error, at line 4 of the cell, "
        "in `scores`: `return math.log(q - q)`"
    ), message


def test_a_function_typed_at_an_ipython_prompt_is_named_by_its_cell():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_cell("def doubled(x):\n    y = x * 2\n    return y[10]\n")
    result = check_function(shell.user_ns["doubled"], abs, {"c": (torch.ones(2),)}, ("x",))
    assert result.message == (
        "In case 'c' (x of shape (2,)) it raised IndexError: index 10 is out of bounds for "
        "dimension 0 with size 2, at line 3 of the cell, in `doubled`: `return y[10]`"
    ), result.message


def test_an_error_without_a_learners_frame_or_text_is_named_plainly():
    assert describe_error(StopIteration()) == "raised StopIteration"
    # called with an argument it does not take: the error is raised at the checker's call
    result = check_function(lambda: 3, lambda x: 3, {"c": (1,)}, ("x",))
    assert result.message == (
        "In case 'c' (x = 1) it raised TypeError: "
        "test_an_error_without_a_learners_frame_or_text_is_named_plainly.<locals>.<lambda>() "
        "takes 0 positional arguments but 1 was given"
    ), result.message


# ---------------------------------------------------------------------------- the isolating case


def twice(x):
    return 2 * x


def keeps_negatives_at_zero(x):  # differs where x < 0
    return x + x.abs()


def marks_zeros(x):  # differs where x == 0
    return 2 * x + (x == 0).long()


MISTAKES = [
    Mistake(keeps_negatives_at_zero, "negatives dropped."),
    Mistake(marks_zeros, "zeros marked."),
]
CASES = {  # the first case mixes both mistakes; each of the others shows one
    "mixed": (torch.tensor([-1, 0, 1]),),
    "a zero": (torch.tensor([0, 5]),),
    "a negative": (torch.tensor([-2, 3]),),
}


@pytest.mark.parametrize(
    "answer, case, why",
    [
        (lambda x: torch.where(x < 0, 0, 2 * x), "a negative", "negatives dropped."),
        (lambda x: torch.where(x == 0, 1, 2 * x), "a zero", "zeros marked."),
    ],
)
def test_a_recognised_mistake_is_shown_on_the_case_that_isolates_it(answer, case, why):
    message = check_function(answer, twice, CASES, ("x",), mistakes=MISTAKES).message
    assert message.startswith(f"In case '{case}' (x of shape (2,) (int64)): "), message
    assert message.endswith(f"Likely cause: {why}"), message


def test_an_unrecognised_answer_is_shown_on_its_first_differing_case():
    message = check_function(lambda x: 3 * x, twice, CASES, ("x",), mistakes=MISTAKES).message
    assert message.startswith("In case 'mixed'") and "Likely cause" not in message, message


def test_a_case_the_mistake_names_comes_first_when_the_mistake_differs_there():
    def differs(implementation, args):
        return not torch.equal(implementation(*args), twice(*args))

    named = Mistake(keeps_negatives_at_zero, "negatives dropped.", case="mixed")
    assert isolating_case(named, MISTAKES, CASES, differs) == "mixed"
    misnamed = Mistake(keeps_negatives_at_zero, "negatives dropped.", case="a zero")
    assert isolating_case(misnamed, MISTAKES, CASES, differs) == "a negative"
    harmless = Mistake(lambda x: x * 2, "nothing.")
    assert isolating_case(harmless, MISTAKES, CASES, differs) is None
    message = check_function(
        lambda x: torch.where(x < 0, 0, 2 * x), twice, CASES, ("x",), mistakes=[named, MISTAKES[1]]
    ).message
    assert message.startswith("In case 'mixed'"), message
