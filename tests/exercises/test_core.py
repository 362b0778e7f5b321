"""The compare-and-explain routine every checker is built on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from demos.exercises.compare import compare, describe
from demos.exercises.core import Check, Convention, Mistake, check_function


def double(x):
    return x * 2


CASES = {"three": (torch.tensor([1.0, -2.0, 3.0]),), "two": (torch.tensor([0.5, 4.0]),)}


def check(fn, **kw):
    return check_function(fn, double, CASES, ("x",), **kw)


def test_check_prints_its_verdict():
    assert str(Check(True, "fine")).startswith("✅") and str(Check(False, "no")).startswith("❌")


@pytest.mark.parametrize(
    "value, words",
    [
        (None, "None"),
        (torch.zeros(2, 3), "a float32 tensor of shape (2, 3)"),
        (torch.zeros(2, dtype=torch.int64), "an int64 tensor"),
        (np.zeros(2), "numpy array"),
        ("abc", "a str 'abc'"),
        ([1], "a list of 1 item"),
        ({}, "a dict of 0 items"),
        (1234, "the int 1,234"),
    ],
)
def test_describe_names_the_type(value, words):
    assert words in describe(value)


def test_compare_accepts_equal_answers_in_wider_and_narrower_dtypes():
    x = torch.tensor([1.0, -2.5, 1e-3])
    for got in (x, x.double(), x.half(), x.bfloat16()):
        assert compare(got, x) is None, got.dtype


def test_compare_holds_a_narrow_dtype_to_its_own_precision_and_says_so():
    x = torch.tensor([1.0, -2.5, 3.0])
    off = (x * (1 + 4e-3)).half()  # four float16 roundings away
    problem = compare(off, x)
    assert problem and "float16" in problem and "tolerance" in problem
    assert compare((x * (1 + 4e-3)).bfloat16(), x) is None  # within bfloat16's rounding


def test_compare_reports_the_first_difference_with_its_values():
    problem = compare(torch.tensor([1.0, 2.0, 7.0, 9.0]), torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert "2 of 4 elements differ" in problem and "index (2,)" in problem
    assert "expected 3, got 7" in problem


@pytest.mark.parametrize(
    "got, words",
    [
        (None, ["got None", "return"]),
        ([2.0, 4.0], ["got a list", "values are right"]),
        (np.array([2.0, 4.0]), ["numpy", "values are right"]),
        (torch.tensor([2.0, 4.0, 0.0]), ["shape (3,), expected (2,)"]),
        (torch.tensor([[2.0], [4.0]]), ["shape (2, 1)", "extra size-1 axis 1", "squeeze(1)"]),
        (torch.tensor([2, 4]), ["int64", "floating-point"]),
        (torch.tensor([True, False]), ["bool", "floating-point"]),
        (torch.tensor([2.0, float("nan")]), ["1 NaN of 2", "index (1,)"]),
        (torch.tensor([2.0, float("inf")]), ["got inf"]),
    ],
)
def test_compare_explains_wrong_tensors(got, words):
    problem = compare(got, torch.tensor([2.0, 4.0]))
    assert problem and all(w in problem for w in words), problem


@pytest.mark.parametrize(
    "got",
    [1234, 1234.0, np.int64(1234), np.float32(1234), torch.tensor(1234), torch.tensor(1234.0)],
)
def test_compare_accepts_an_int_as_any_equal_number(got):
    assert compare(got, 1234) is None


@pytest.mark.parametrize(
    "got, words",
    [
        (1234.5, ["expected 1,234, got 1234.5"]),
        (1235, ["expected 1,234, got 1,235"]),
        (True, ["bool"]),
        ("1234", ["str", "not its text"]),
        ([1234], ["list"]),
        ({"n": 1234}, ["dict"]),
        (torch.tensor([1234, 0]), ["2 elements", ".item()"]),
        (np.array([1234]), ["1 element"]),
        (float("nan"), ["nan"]),
    ],
)
def test_compare_explains_wrong_numbers(got, words):
    problem = compare(got, 1234)
    assert problem and all(w in problem for w in words), problem


def test_compare_gives_floats_their_tolerance():
    assert compare(0.30000001, 0.3, rtol=1e-6) is None
    assert "expected 0.3" in compare(0.31, 0.3, rtol=1e-6)


def test_compare_tuples_by_name_structure_first():
    want = (torch.zeros(2), torch.zeros(3))
    assert compare([torch.zeros(2), torch.zeros(3)], want) is None
    assert "got a tuple of 1 item" in compare((torch.zeros(2),), want, names=("a", "b"))
    # a wrong value in a and a wrong shape in b: the shape is reported first
    problem = compare((torch.ones(2), torch.zeros(4)), want, names=("a", "b"))
    assert problem.startswith("b has shape (4,)"), problem
    assert compare((torch.ones(2), torch.zeros(3)), want, names=("a", "b")).startswith("a:")


def test_check_function_accepts_a_right_answer_and_counts_its_cases():
    result = check(lambda x: x + x)
    assert result.ok and "2 cases" in result.message


def test_check_function_never_raises_and_explains():
    assert "Expected a function" in check(42).message
    assert (
        "raised ValueError: nope"
        in check(lambda x: (_ for _ in ()).throw(ValueError("nope"))).message
    )
    assert "In case 'three'" in check(lambda x: x).message


def test_check_function_passes_fresh_copies_and_reports_modified_inputs():
    seen = []

    def reference(x):
        seen.append(x.clone())
        return x * 2

    def answer(x):
        out = x * 2
        x.fill_(100.0)
        return out

    result = check_function(answer, reference, CASES, ("x",))
    assert not result.ok and "modified its input x" in result.message
    assert torch.equal(CASES["three"][0], torch.tensor([1.0, -2.0, 3.0]))  # the case is intact
    assert all((s != 100).all() for s in seen)  # the reference never saw the answer's writes


def test_a_list_of_tensors_left_alone_is_not_reported_modified_and_one_written_to_is():
    cases = {"pairs": ([torch.tensor([1, 2]), torch.tensor([3])],)}

    def total(xs):
        return torch.cat(xs).sum()

    def writes(xs):
        out = torch.cat(xs).sum()
        xs[0].fill_(0)
        return out

    assert check_function(total, total, cases, ("xs",)).ok
    result = check_function(writes, total, cases, ("xs",))
    assert not result.ok and "modified its input xs" in result.message


def test_a_mistake_is_named_only_when_the_answer_matches_it_on_every_case():
    tripled = Mistake(lambda x: x * 3, "tripled")
    assert "Likely cause: tripled" in check(lambda x: x * 3, mistakes=[tripled]).message
    # equal to the mistake on the first case only: no cause named
    only_first = check(lambda x: x * 3 if len(x) == 3 else x, mistakes=[tripled])
    assert not only_first.ok and "Likely cause" not in only_first.message
    # a mistake that raises is skipped, never raised
    broken = Mistake(lambda x: 1 / 0, "broken")
    assert "Likely cause" not in check(lambda x: x, mistakes=[broken]).message


def test_a_convention_is_named_with_or_without_a_mistake():
    negated = Convention(lambda v: -v, "negated.")
    tripled = Mistake(lambda x: x * 3, "tripled")
    right = check(lambda x: -2 * x, conventions=[negated], mistakes=[tripled])
    assert "negated. Read that way, the answer is otherwise right" in right.message
    both = check(lambda x: -3 * x, conventions=[negated], mistakes=[tripled])
    assert "negated. Read that way, it still differs: tripled" in both.message
    neither = check(lambda x: -5 * x, conventions=[negated], mistakes=[tripled])
    assert "still differs from the reference" in neither.message


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=1, max_size=20),
    dtype=st.sampled_from([torch.float64, torch.float16, torch.bfloat16]),
)
def test_a_rounded_answer_is_accepted_and_a_shifted_one_is_not(values, dtype):
    x = torch.tensor(values)
    assert compare(x.to(dtype), x) is None
    shifted = x.clone()
    shifted[-1] += 0.05 * max(1.0, abs(values[-1]))  # beyond any of these dtypes' rounding
    assert compare(shifted.to(dtype), x) is not None
