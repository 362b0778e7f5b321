"""What issue 14 asks of every checker's message: the inputs named, the untouched template
recognised as "not attempted yet", shape hints (a reshape or a transpose away; copies along the
wrong axis; tiled instead of repeated in place) and the dtype named when only rounding differs."""

from __future__ import annotations

import torch

from demos.exercises.compare import compare, describe_args
from demos.exercises.core import check_function, untouched_template
from demos.layers.attention import repeat_kv


def check_repeat_kv(fn):
    """A repeat_kv checker built on check_function, the machinery of every chapter's checker:
    exact, float32."""
    gen = torch.Generator().manual_seed(0)
    cases = {
        f"g={g}, n_rep={n}": (torch.randn(b, g, s, d, generator=gen), n)
        for b, g, s, d, n in [(1, 2, 3, 4, 2), (2, 3, 5, 8, 4), (2, 4, 1, 2, 1)]
    }
    return check_function(fn, repeat_kv, cases, ("x", "n_rep"))


def my_repeat_kv(x, n_rep):
    # your code here: return a tensor of shape (b, g * n_rep, s, d)
    return x


def my_loss(a, b):
    """A stub with a docstring."""
    # your code here
    return torch.zeros_like(a)


def my_pass(x):
    # your code here
    pass


def started(x, n_rep):
    # your code here: the learner kept the comment and wrote code below it
    y = x.repeat(1, n_rep, 1, 1)
    return y


def one_line(x, n_rep):
    # your code here
    return torch.repeat_interleave(x, n_rep, dim=2)


def test_the_inputs_are_named_with_their_shapes_and_values():
    args = (torch.zeros(1, 2, 3, 4), 2, torch.tensor(0.5), torch.zeros(2, dtype=torch.int64))
    words = describe_args(("x", "n_rep", "beta", "ids"), args)
    assert words == "x of shape (1, 2, 3, 4), n_rep = 2, beta = 0.5, ids of shape (2,) (int64)"
    message = check_repeat_kv(lambda x, n: x * 0).message
    assert "(x of shape (1, 2, 3, 4), n_rep = 2)" in message, message


def test_the_untouched_template_is_recognised():
    assert untouched_template(my_repeat_kv) == "return x"
    assert untouched_template(my_loss) == "return torch.zeros_like(a)"
    assert untouched_template(my_pass) == "None"
    result = check_repeat_kv(my_repeat_kv)
    assert not result.ok and not result.attempted
    assert str(result).startswith("✏️ Not attempted yet.")
    for words in ("`my_repeat_kv` is still the template (`return x`)", "# your code here"):
        assert words in result.message, result.message
    assert "(x of shape (1, 2, 3, 4), n_rep = 2) it should return a float32 tensor of shape" in (
        result.message
    )


def test_an_edited_answer_is_an_attempt_even_with_the_comment_left_in():
    assert untouched_template(started) is None
    assert untouched_template(one_line) is None  # a real expression, not a placeholder
    assert untouched_template(lambda x: x) is None  # no template comment
    assert untouched_template(torch.ones) is None  # no Python source
    for answer in (started, one_line):
        result = check_repeat_kv(answer)
        assert not result.ok and result.attempted
        assert str(result).startswith("❌ Not yet."), result


def test_a_right_answer_that_kept_the_template_comment_passes():
    def right(x, n_rep):
        # your code here
        return torch.repeat_interleave(x, n_rep, dim=1)

    assert check_repeat_kv(right).ok


def test_a_transposed_answer_is_told_which_axes_to_swap():
    x = torch.randn(2, 3, 4, 5)
    problem = compare(x.transpose(1, 2), x)
    assert ".transpose(1, 2) fixes it" in problem, problem
    problem = compare(x.permute(0, 2, 3, 1), x)
    assert ".permute(0, 3, 1, 2) fixes it" in problem, problem


def test_a_flattened_answer_is_told_to_reshape():
    x = torch.randn(2, 3, 4, 5)
    problem = compare(x.flatten(2), x)
    assert "values are right in memory order: .reshape(2, 3, 4, 5)" in problem, problem
    # heads and time swapped, and the heads merged: (b, t, h*d) for (b, h, t, d)
    problem = compare(x.transpose(1, 2).reshape(2, 4, 15), x)
    assert "laid out differently: .reshape(2, 4, 3, 5).permute(0, 2, 1, 3)" in problem, problem
    # a reshape of wrong values gets no such hint
    assert "values are right" not in compare(x.flatten(2) + 1, x)


def test_copies_along_the_wrong_axis_are_named():
    x = torch.randn(1, 2, 3, 4)
    problem = compare(torch.repeat_interleave(x, 2, dim=2), torch.repeat_interleave(x, 2, dim=1))
    assert "were the copies made along axis 2 instead of axis 1?" in problem, problem


def test_tiled_and_repeated_in_place_are_told_apart_both_ways():
    x = torch.randn(2, 3, 4)
    interleaved, tiled = torch.repeat_interleave(x, 2, dim=1), x.repeat(1, 2, 1)
    problem = compare(tiled, interleaved)
    assert "Along axis 1 the answer tiles the copies" in problem, problem
    assert "the reference repeats each entry in place" in problem
    problem = compare(interleaved, tiled)
    assert "Along axis 1 the answer repeats each entry in place" in problem, problem
    assert "tiles" not in compare(tiled + 1, interleaved)  # other values: no such hint


def test_rounding_through_a_narrower_dtype_is_named():
    x = torch.randn(4, 5)
    for narrow, name in ((torch.float16, "float16"), (torch.bfloat16, "bfloat16")):
        problem = compare(x.to(narrow).float(), x, atol=1e-6, rtol=1e-6)
        assert f"within {name}'s rounding" in problem, problem
        assert "Compute in float32 throughout" in problem
    # an exact check that fails by float32 rounding says so, naming the dtype
    problem = compare(x * 3 / 3 + torch.finfo(torch.float32).eps * x, x)
    assert problem is None or "float32 rounding" in problem
    # a real error is not called rounding
    assert "rounding" not in compare(x + 0.1, x, atol=1e-6, rtol=1e-6)


def test_a_float32_answer_off_by_a_formula_is_not_called_narrow_rounding():
    # torch.exp in float32 where the reference is a Taylor polynomial: differences of ~1e-4,
    # within bfloat16's tolerance, but nothing was rounded through bfloat16
    w = 0.1 * torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    problem = compare(torch.exp(w), 1 + w + w**2 / 2, atol=1e-6, rtol=1e-6)
    assert problem and "differ" in problem, problem
    assert "rounding" not in problem and "throughout" not in problem, problem


def test_a_value_computed_in_bfloat16_and_returned_wide_is_named():
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    computed_low = (x.bfloat16() * 2).float()  # representable in bfloat16, near 2x
    problem = compare(computed_low, x * 2, atol=1e-6, rtol=1e-6)
    assert "within bfloat16's rounding" in problem, problem


def test_exact_dtype_names_the_dtype_and_whether_the_values_are_right():
    x = torch.randn(3, 4)
    assert compare(x.double(), x) is None  # by default another floating dtype is accepted
    problem = compare(x.double(), x, exact_dtype=True)
    assert "float64 tensor" in problem and "asks for torch.float32" in problem, problem
    assert "Its values are right" in problem
    problem = compare((x + 1).bfloat16(), x, exact_dtype=True)
    assert "asks for torch.float32" in problem and "differ" in problem, problem
    assert compare(x.clone(), x, exact_dtype=True) is None


def test_a_checker_with_hints_still_never_raises():
    cases = {"one": (torch.randn(2, 3),)}
    result = check_function(lambda x: x.T.contiguous(), lambda x: x, cases, ("x",))
    assert not result.ok and ".transpose(0, 1) fixes it" in result.message
