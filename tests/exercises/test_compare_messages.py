"""Messages a learner can act on: wrong dimensions, rounding-level differences, off-by-one numbers,
unusual tensor layouts and a forgotten ``return``, for every kind of expected value."""

from __future__ import annotations

import pytest
import torch

from demos.exercises.compare import compare
from demos.exercises.core import check_function
from demos.exercises.mistral import check_dilated_window_mask
from demos.layers.attention import repeat_kv
from demos.layers.kv_cache import kv_cache_bytes_per_token


# Two checkers built on check_function (the machinery every chapter's checker uses), for the
# messages below: a tensor answer and an int answer.
def check_repeat_kv(fn):
    gen = torch.Generator().manual_seed(0)
    cases = {
        f"g={g}, n_rep={n}": (torch.randn(b, g, s, d, generator=gen), n)
        for b, g, s, d, n in [(1, 2, 3, 4, 2), (2, 3, 5, 8, 4)]
    }
    return check_function(fn, repeat_kv, cases, ("x", "n_rep"))


def kv_cache_bytes(layers, g, d, seq_len, batch, nbytes):
    return kv_cache_bytes_per_token(layers, g, d, nbytes) * seq_len * batch


def check_kv_cache_bytes(fn):
    cases = {"Llama 2 7B, 4,096 tokens, fp16": (32, 32, 128, 4096, 1, 2)}
    names = ("num_hidden_layers", "num_key_value_heads", "head_dim", "seq_len", "batch")
    return check_function(fn, kv_cache_bytes, cases, (*names, "bytes_per_value"))


# ---------------------------------------------------------------------------- dimensions


def test_extra_size_one_axes_are_named_and_squeeze_suggested():
    problem = compare(torch.ones(1, 1, 3, 4, dtype=torch.bool), torch.ones(3, 4, dtype=torch.bool))
    assert "order of the axes" not in problem, problem
    assert "4 dimensions instead of 2" in problem, problem
    assert "squeeze" in problem and "axes 0 and 1" in problem, problem


def test_a_kept_dimension_is_named():
    problem = compare(torch.zeros(2, 3, 1), torch.zeros(2, 3))
    assert "order of the axes" not in problem, problem
    assert "axis 2" in problem and "squeeze" in problem and "keepdim" in problem, problem


def test_a_missing_size_one_axis_is_named():
    problem = compare(torch.zeros(2, 3), torch.zeros(2, 3, 1))
    assert "2 dimensions" in problem and "unsqueeze" in problem and "axis 2" in problem, problem


def test_axes_to_merge_are_named():
    problem = compare(torch.zeros(2, 3, 4, 5), torch.zeros(2, 12, 5))
    assert "order of the axes" not in problem, problem
    assert "reshape" in problem and "axes 1 and 2" in problem and "(3, 4)" in problem, problem
    problem = compare(torch.zeros(2, 12, 5), torch.zeros(2, 3, 4, 5))
    assert "reshape" in problem and "axis 1" in problem, problem


def test_a_different_number_of_dimensions_and_elements_says_the_dimensions():
    problem = compare(torch.zeros(2, 3, 4), torch.zeros(5, 7))
    assert "3 dimensions instead of 2" in problem, problem
    assert "order of the axes" not in problem and "squeeze" not in problem, problem


def test_same_number_of_dimensions_keeps_the_axis_order_hint():
    assert "order of the axes" in compare(torch.ones(3, 2), torch.zeros(2, 3))
    # when the values are the expected ones transposed, the hint says how to fix it instead
    assert ".transpose(0, 1) fixes it" in compare(torch.zeros(3, 2), torch.zeros(2, 3))


def test_repeat_kv_expanded_without_reshape_is_told_to_reshape():
    message = check_repeat_kv(lambda x, n: x[:, :, None].expand(-1, -1, n, -1, -1)).message
    assert "order of the axes" not in message, message
    assert "5 dimensions" in message and "reshape" in message, message


def test_a_mask_with_batch_and_head_axes_is_told_to_squeeze():
    def mask(t, s, window, dilation):
        back = torch.arange(s - t, s)[:, None] - torch.arange(s)[None, :]
        return ((back >= 0) & (back % dilation == 0) & (back // dilation < window))[None, None]

    message = check_dilated_window_mask(mask).message
    assert "order of the axes" not in message and "squeeze" in message, message


# ---------------------------------------------------------------------------- values


def test_close_values_are_printed_with_enough_digits_to_differ():
    expected = torch.tensor([0.0537369], dtype=torch.float64)
    got = expected + 1e-10
    problem = compare(got, expected, rtol=1e-12)
    shown = problem.split("expected ")[1].split(",")[0], problem.split("got ")[1].split(" ")[0]
    assert shown[0] != shown[1].rstrip("."), problem
    assert "differ by" in problem, problem


def test_a_rounding_difference_in_an_exact_checker_is_explained():
    message = check_repeat_kv(lambda x, n: repeat_kv(x, n) * 3 / 3).message
    assert "rounding" in message, message
    expected, got = message.split("expected ")[1].split(", got ")
    assert expected != got.split(" ")[0].rstrip(".;"), message


def test_exact_checks_stay_exact():
    x = torch.tensor([1.0, 2.0, 3.0])
    assert compare(x * 3 / 3 + torch.tensor([0.0, 0.0, 2.4e-7]), x) is not None


def test_a_large_difference_is_not_called_rounding():
    assert "rounding" not in compare(torch.tensor([1.5]), torch.tensor([1.0]))


# ---------------------------------------------------------------------------- numbers


def test_an_off_by_one_number_gives_the_difference_not_the_ratio():
    problem = compare(1234 + 524_288, 1234 + 524_287)
    assert "1x" not in problem and "1 more than expected" in problem, problem
    problem = compare(999, 1000)
    assert "1 less than expected" in problem and "x the expected" not in problem, problem


@pytest.mark.parametrize("got, ratio", [(2468, "2x"), (617, "0.5x")])
def test_a_meaningful_factor_keeps_the_ratio(got, ratio):
    assert f"{ratio} the expected value" in compare(got, 1234)


def test_kv_cache_off_by_one_says_how_much_more():
    def off_by(layers, g, d, seq_len, batch, nbytes):
        return 2 * layers * g * d * (seq_len + 1) * batch * nbytes

    message = check_kv_cache_bytes(off_by).message
    assert "524,288 more than expected" in message and "1x" not in message, message


# ---------------------------------------------------------------------------- unusual tensors


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.eye(2).to_sparse(),
        lambda: torch.eye(2).to_sparse_csr(),
        lambda: torch.empty(2, 2, device="meta"),
        lambda: torch.quantize_per_tensor(torch.eye(2), 0.1, 0, torch.qint8),
    ],
    ids=["sparse coo", "sparse csr", "meta", "quantized"],
)
@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")
def test_unusual_tensors_are_asked_for_a_dense_cpu_tensor(make):
    got = make()
    for expected in (torch.eye(2), (torch.eye(2),), 2):
        problem = compare(got, expected)
        assert problem and "dense tensor on the CPU" in problem, problem
        assert "Facebook" not in problem


def test_a_sparse_repeat_kv_is_asked_for_a_dense_tensor():
    message = check_repeat_kv(lambda x, n: repeat_kv(x, n).to_sparse()).message
    assert "dense tensor on the CPU" in message and "Facebook" not in message, message


# ---------------------------------------------------------------------------- a forgotten return


@pytest.mark.parametrize(
    "expected", [torch.zeros(2), 1234, 0.5, (torch.zeros(2), torch.zeros(3))], ids=str
)
def test_none_asks_whether_return_was_forgotten(expected):
    assert "forget to `return`" in compare(None, expected)


def test_kv_cache_answer_that_prints_asks_about_return():
    message = check_kv_cache_bytes(lambda *args: print(args)).message
    assert "forget to `return`" in message, message


def test_an_infinite_difference_is_not_called_rounding():
    problem = compare(torch.tensor([1.0]), torch.tensor([float("inf")]))
    assert problem and "rounding" not in problem, problem


@pytest.mark.parametrize("got, expected", [(3, 2), (1, 2), (15, 10)])
def test_no_ratio_between_small_or_not_whole_factor_integers(got, expected):
    problem = compare(got, expected)
    assert "than expected" in problem and "x the expected" not in problem, problem
