"""The Llama 2 chapter's checkers: repeat_kv and the KV cache's size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from demos.exercises.llama2 import check_gqa_attention, check_kv_cache_bytes, check_repeat_kv
from demos.layers.attention import attention


def repeat_kv(x, n_rep):  # written here: insert an axis, expand it, fold it into the heads
    b, g, s, d = x.shape
    return x[:, :, None].expand(b, g, n_rep, s, d).reshape(b, g * n_rep, s, d)


def tiled_and_zeroed(x, n_rep):  # the tiling mistake, and the input wiped afterwards
    out = x.repeat(1, n_rep, 1, 1)
    x.zero_()
    return out


def right_then_zeroed(x, n_rep):
    out = repeat_kv(x, n_rep).clone()
    x.zero_()
    return out


@pytest.mark.parametrize(
    "answer",
    [
        repeat_kv,
        lambda x, n: torch.repeat_interleave(x, n, dim=1),
        lambda x, n: repeat_kv(x.double(), n),  # float64
        lambda x, n: repeat_kv(x, n).half(),  # float16
        lambda x, n: repeat_kv(x, n).bfloat16(),
    ],
    ids=["expand", "repeat_interleave", "float64", "float16", "bfloat16"],
)
def test_repeat_kv_checker_accepts_right_answers(answer):
    result = check_repeat_kv(answer)
    assert result.ok, result.message


REPEAT_KV_WRONG = {
    "tiled heads": (lambda x, n: x.repeat(1, n, 1, 1), ["tiled", "expected", "index"]),
    "tiled, in float16": (lambda x, n: x.repeat(1, n, 1, 1).half(), ["tiled", "float16"]),
    "no copies": (lambda x, n: x, ["shape (1, 2, 3, 4), expected (1, 4, 3, 4)"]),
    "copies on the sequence axis": (
        lambda x, n: torch.repeat_interleave(x, n, dim=2),
        ["shape (1, 2, 6, 4), expected (1, 4, 3, 4)"],
    ),
    "axes swapped": (lambda x, n: repeat_kv(x, n).transpose(2, 3), [".transpose(2, 3) fixes it"]),
    "integer dtype": (lambda x, n: repeat_kv(x, n).long(), ["int64", "floating-point"]),
    "NaN": (lambda x, n: repeat_kv(x, n) * float("nan"), ["NaN"]),
    "a little off": (lambda x, n: repeat_kv(x, n) + 1e-3, ["differ", "index"]),
    "float16 of a value a little off": (
        lambda x, n: (repeat_kv(x, n) + 1e-2).half(),
        ["float16", "tolerance"],
    ),
    "numpy array": (lambda x, n: repeat_kv(x, n).numpy(), ["numpy", "values are right"]),
    "mutates x": (lambda x, n: repeat_kv(x.mul_(2), n), ["modified its input x"]),
    "right, but wipes x": (right_then_zeroed, ["result is right", "modified its input x"]),
    "tiled, and wipes x": (tiled_and_zeroed, ["modified its input x", "tiled"]),
}


@pytest.mark.parametrize("answer, words", REPEAT_KV_WRONG.values(), ids=list(REPEAT_KV_WRONG))
def test_repeat_kv_checker_explains_wrong_answers(explain, answer, words):
    explain(check_repeat_kv, answer, words)


def test_repeat_kv_checker_names_no_cause_for_an_unknown_mistake(explain):
    result = explain(check_repeat_kv, lambda x, n: repeat_kv(x, n) + 1e-3, [])
    assert "Likely cause" not in result.message


def test_repeat_kv_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_repeat_kv, *any_wrong_answer)


def kv_bytes(layers, g, d, seq_len, batch, nbytes):  # 2 for K and V
    return 2 * layers * g * d * seq_len * batch * nbytes


@pytest.mark.parametrize(
    "answer",
    [
        kv_bytes,
        lambda *a: float(kv_bytes(*a)),  # 1234.0
        lambda *a: np.int64(kv_bytes(*a)),
        lambda *a: np.float64(kv_bytes(*a)),
        lambda *a: torch.tensor(kv_bytes(*a)),  # 0-d int64 tensor
        lambda *a: torch.tensor(float(kv_bytes(*a)), dtype=torch.float64),
    ],
    ids=["int", "float", "numpy int", "numpy float", "0-d tensor", "0-d float64 tensor"],
)
def test_kv_cache_checker_accepts_right_answers_of_any_number_type(answer):
    result = check_kv_cache_bytes(answer)
    assert result.ok, result.message


LLAMA2_7B = f"{2 * 32 * 32 * 128 * 4096 * 1 * 2:,}"  # the first case, computed here
KV_WRONG = {
    "keys only": (lambda *a: kv_bytes(*a) // 2, ["only keys or only values", LLAMA2_7B]),
    "factor 2 counted twice": (lambda *a: kv_bytes(*a) * 2, ["2x too large"]),
    "no batch": (lambda L, g, d, s, b, n: kv_bytes(L, g, d, s, 1, n), ["batch is missing"]),
    "no bytes_per_value": (
        lambda L, g, d, s, b, n: kv_bytes(L, g, d, s, b, 1),
        ["values, not bytes"],
    ),
    "no layers": (
        lambda L, g, d, s, b, n: kv_bytes(1, g, d, s, b, n),
        ["num_hidden_layers is missing"],
    ),
    "one byte off": (lambda *a: kv_bytes(*a) + 1, ["expected", LLAMA2_7B]),
    "half a byte off": (lambda *a: kv_bytes(*a) + 0.5, ["expected", LLAMA2_7B]),
    "str": (lambda *a: str(kv_bytes(*a)), ["got a str", "not its text"]),
    "list": (lambda *a: [kv_bytes(*a)], ["got a list"]),
    "dict": (lambda *a: {"bytes": kv_bytes(*a)}, ["got a dict"]),
    "2-element tensor": (lambda *a: torch.tensor([kv_bytes(*a), 0]), ["2 elements"]),
    "1-element numpy array": (lambda *a: np.array([kv_bytes(*a)]), ["1 element"]),
    "bool": (lambda *a: True, ["bool"]),
    "NaN": (lambda *a: float("nan"), ["nan"]),
    "inf": (lambda *a: float("inf"), ["inf"]),
    "None": (lambda *a: None, ["None"]),
}


@pytest.mark.parametrize("answer, words", KV_WRONG.values(), ids=list(KV_WRONG))
def test_kv_cache_checker_explains_wrong_answers(explain, answer, words):
    explain(check_kv_cache_bytes, answer, words)


def test_kv_cache_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_kv_cache_bytes, *any_wrong_answer)


# ---------------------------------------------------------------------------- GQA without copies


def gqa_by_reshape(q, k, v, offset=None):  # the queries grouped, k and v broadcast by matmul
    b, h, t, d = q.shape
    g, s = k.shape[1], k.shape[2]
    offset = s - t if offset is None else offset  # the queries' first position
    qg = q.reshape(b, g, h // g, t, d)  # (b, g, r, t, d)
    scores = qg @ k[:, :, None].transpose(-1, -2) / d**0.5  # (b, g, r, t, s)
    visible = torch.arange(s)[None, :] <= torch.arange(offset, offset + t)[:, None]  # (t, s)
    scores = scores.masked_fill(~visible, float("-inf"))
    return (torch.softmax(scores, dim=-1) @ v[:, :, None]).reshape(b, h, t, d)


def my_gqa_attention(q, k, v):
    # your code here: return a tensor of shape (b, h, t, d)
    return q


def test_gqa_checker_accepts_the_reshape_answer():
    result = check_gqa_attention(gqa_by_reshape)
    assert result.ok, result.message


GQA_WRONG = {
    "the stub": (my_gqa_attention, ["still the template", "q of shape (1, 4, 3, 8)"]),
    "copies k and v (values right)": (
        lambda q, k, v: attention(q, k, v),
        ["values are right", "expand", "reshape q to (b, g, h / g, t, d)"],
    ),
    "repeat_interleave (values right)": (
        lambda q, k, v: gqa_by_reshape(q, k, v) + 0 * k.repeat_interleave(1, dim=1).sum(),
        ["repeat_interleave"],
    ),
    "no mask": (lambda q, k, v: attention(q, k, v, causal=False), ["causal mask"]),
    "queries from position 0": (
        lambda q, k, v: gqa_by_reshape(q, k, v, offset=0),
        ["positions 0 .. t - 1", "last t of the s"],
    ),
    "groups tiled": (
        lambda q, k, v: (
            gqa_by_reshape(
                q.reshape(q.shape[0], -1, k.shape[1], *q.shape[2:]).transpose(1, 2).flatten(1, 2),
                k,
                v,
            )
            .reshape(q.shape[0], k.shape[1], -1, *q.shape[2:])
            .transpose(1, 2)
            .flatten(1, 2)
        ),
        ["j // (h / g)"],
    ),
    "unscaled": (lambda q, k, v: gqa_by_reshape(q * k.shape[-1] ** 0.5, k, v), ["sqrt(d)"]),
}


@pytest.mark.parametrize("answer, words", GQA_WRONG.values(), ids=list(GQA_WRONG))
def test_gqa_checker_explains_wrong_answers(explain, answer, words):
    explain(check_gqa_attention, answer, words)


def test_gqa_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_gqa_attention, *any_wrong_answer)


def test_kv_cache_stub_is_not_attempted():
    def my_kv_cache_bytes(
        num_hidden_layers, num_key_value_heads, head_dim, seq_len, batch, bytes_per_value
    ):
        # your code here
        return 0

    result = check_kv_cache_bytes(my_kv_cache_bytes)
    assert not result.ok and not result.attempted, result
