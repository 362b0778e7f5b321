"""The Llama 2 chapter's checkers: mean-pooling key/value heads, the longest context a KV-cache
budget allows, and grouped-query attention with its weights without copies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from demos.exercises.llama2 import check_gqa_with_weights, check_max_seq_len, check_mean_pool_kv
from demos.layers.attention import attention, attention_weights, repeat_kv

# ---------------------------------------------------------------------------- mean-pooling kv heads


def mean_pool(weight, h, g):  # written here: a loop over the groups, as a learner might
    d = weight.shape[0] // h
    r = h // g
    rows = [
        torch.stack([weight[(i * r + j) * d : (i * r + j + 1) * d] for j in range(r)]).mean(0)
        for i in range(g)
    ]
    return torch.cat(rows)  # (g d, c)


def pooled_by_repeat_kv(weight, h, g):
    """Another route: the heads of a group are the ones repeat_kv lines up with kv head i, so
    average repeat_kv's inverse (the mean of each run of h / g heads)."""
    d, c = weight.shape[0] // h, weight.shape[1]
    heads = weight.reshape(1, h, d, c)
    index = repeat_kv(torch.arange(g, dtype=torch.float64).reshape(1, g, 1, 1), h // g).flatten()
    return torch.stack([heads[0, index == i].mean(0) for i in range(g)]).reshape(g * d, c)


@pytest.mark.parametrize(
    "answer",
    [
        mean_pool,
        pooled_by_repeat_kv,
        lambda w, h, g: mean_pool(w, h, g).sum(0, keepdim=True) * 0 + mean_pool(w, h, g),
    ],
    ids=["loop", "via repeat_kv", "a no-op added"],
)
def test_mean_pool_checker_accepts_right_answers(answer):
    result = check_mean_pool_kv(answer)
    assert result.ok, result.message


def my_mean_pool_kv(weight, num_heads, num_key_value_heads):
    # your code here: return a tensor of shape (num_key_value_heads * head_dim, c)
    return weight


MEAN_POOL_WRONG = {
    "the stub": (my_mean_pool_kv, ["still the template", "float64 tensor of shape (6, 5)"]),
    "interleaved groups": (
        lambda w, h, g: mean_pool(w.reshape(h // g, g, -1).transpose(0, 1).reshape(w.shape), h, g),
        ["j % g", "CONSECUTIVE"],
    ),
    "summed": (lambda w, h, g: mean_pool(w, h, g) * (h // g), ["summed"]),
    "the first head": (
        lambda w, h, g: w.reshape(g, h // g, -1)[:, 0].reshape(-1, w.shape[1]),
        ["'First'"],
    ),
    "a little off": (lambda w, h, g: mean_pool(w, h, g) + 1e-9, ["differ"]),
    "NaN": (lambda w, h, g: mean_pool(w, h, g) * float("nan"), ["NaN"]),
    "computed in float32": (
        lambda w, h, g: mean_pool(w.float(), h, g),
        ["compute in torch.float64"],
    ),
    "integer dtype": (lambda w, h, g: mean_pool(w, h, g).long(), ["int64"]),
    "numpy array": (lambda w, h, g: mean_pool(w, h, g).numpy(), ["numpy"]),
    "mutates the weight": (lambda w, h, g: mean_pool(w.mul_(2), h, g), ["modified its input"]),
    "(g, d, c) not flattened": (
        lambda w, h, g: mean_pool(w, h, g).reshape(g, -1, w.shape[1]),
        ["reshape"],
    ),
}


@pytest.mark.parametrize("answer, words", MEAN_POOL_WRONG.values(), ids=list(MEAN_POOL_WRONG))
def test_mean_pool_checker_explains_wrong_answers(explain, answer, words):
    explain(check_mean_pool_kv, answer, words)


def test_mean_pool_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_mean_pool_kv, *any_wrong_answer)


def test_mean_pool_stub_is_not_attempted():
    result = check_mean_pool_kv(my_mean_pool_kv)
    assert not result.ok and not result.attempted, result


# ---------------------------------------------------------------------------- longest context


def max_seq_len(budget, layers, g, d, batch, nbytes, cap):  # 2 for K and V
    return min(budget // (2 * layers * g * d * nbytes * batch), cap)


@pytest.mark.parametrize(
    "answer",
    [
        max_seq_len,
        lambda *a: float(max_seq_len(*a)),
        lambda *a: np.int64(max_seq_len(*a)),
        lambda *a: torch.tensor(max_seq_len(*a)),
        lambda b, L, g, d, n, by, cap: int(min(b / (2 * L * g * d * by * n), cap)),  # int() floors
    ],
    ids=["int", "float", "numpy int", "0-d tensor", "int() of a true division"],
)
def test_max_seq_len_checker_accepts_right_answers(answer):
    result = check_max_seq_len(answer)
    assert result.ok, result.message


def test_max_seq_len_reference_answers_the_question_the_page_asks():
    """40 GiB of fp16 cache, 16 sequences: 13B (40 layers, 40 kv heads of 128) is held to 3,276
    tokens; 70B (80 layers, 8 kv heads) to its 4,096-token context, memory allowing 8,192.
    Computed by hand: 40 * 2**30 / (2 * 40 * 40 * 128 * 2 * 16) = 3276.8, and / (2 * 80 * 8 *
    128 * 2 * 16) = 8192."""
    assert check_max_seq_len(max_seq_len).ok
    assert max_seq_len(40 * 2**30, 40, 40, 128, 16, 2, 4096) == 3276
    assert max_seq_len(40 * 2**30, 80, 8, 128, 16, 2, 10**9) == 8192


MAX_SEQ_LEN_WRONG = {
    "keys only": (
        lambda b, L, g, d, n, by, cap: min(b // (L * g * d * by * n), cap),
        ["the 2 for keys and values", "'1 layer, 1 sequence, int8, 160 bytes'"],
    ),
    "rounded up": (
        lambda b, L, g, d, n, by, cap: min(-(-b // (2 * L * g * d * by * n)), cap),
        ["rounded up", "'5 bytes, less than one token'"],
    ),
    "no cap": (
        lambda b, L, g, d, n, by, cap: b // (2 * L * g * d * by * n),
        ["max_position_embeddings", "'memory for 1,000 tokens, max_position_embeddings 512'"],
    ),
    "no batch": (lambda b, L, g, d, n, by, cap: max_seq_len(b, L, g, d, 1, by, cap), ["batch"]),
    "no layers": (
        lambda b, L, g, d, n, by, cap: max_seq_len(b, 1, g, d, n, by, cap),
        ["num_hidden_layers is missing"],
    ),
    "no bytes": (
        lambda b, L, g, d, n, by, cap: max_seq_len(b, L, g, d, n, 1, cap),
        ["values, not bytes"],
    ),
    "a true division": (
        lambda b, L, g, d, n, by, cap: min(b / (2 * L * g * d * by * n), cap),
        ["expected"],
    ),
    "one token off": (lambda *a: max_seq_len(*a) + 1, ["1 more than expected"]),
    "str": (lambda *a: str(max_seq_len(*a)), ["got a str"]),
    "bool": (lambda *a: True, ["bool"]),
    "NaN": (lambda *a: float("nan"), ["nan"]),
    "inf": (lambda *a: float("inf"), ["inf"]),
}


@pytest.mark.parametrize("answer, words", MAX_SEQ_LEN_WRONG.values(), ids=list(MAX_SEQ_LEN_WRONG))
def test_max_seq_len_checker_explains_wrong_answers(explain, answer, words):
    explain(check_max_seq_len, answer, words)


def test_max_seq_len_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_max_seq_len, *any_wrong_answer)


def test_max_seq_len_stub_is_not_attempted():
    def my_max_seq_len(
        budget_bytes,
        num_hidden_layers,
        num_key_value_heads,
        head_dim,
        batch,
        bytes_per_value,
        max_position_embeddings,
    ):
        # your code here: return an int
        return 0

    result = check_max_seq_len(my_max_seq_len)
    assert not result.ok and not result.attempted, result


# ---------------------------------------------------------------------------- GQA and its weights


def gqa_by_reshape(q, k, v, offset=None):  # the queries grouped, k and v broadcast by matmul
    b, h, t, d = q.shape
    g, s = k.shape[1], k.shape[2]
    offset = s - t if offset is None else offset  # the queries' first position
    qg = q.reshape(b, g, h // g, t, d)  # (b, g, r, t, d)
    scores = qg @ k[:, :, None].transpose(-1, -2) / d**0.5  # (b, g, r, t, s)
    visible = torch.arange(s)[None, :] <= torch.arange(offset, offset + t)[:, None]  # (t, s)
    weights = torch.softmax(scores.masked_fill(~visible, float("-inf")), dim=-1)
    out = weights @ v[:, :, None]  # (b, g, r, t, d)
    return out.reshape(b, h, t, d), weights.reshape(b, h, t, s)


def by_einsum(q, k, v):  # another no-copy route: einsum over a grouped view
    b, h, t, d = q.shape
    g, s = k.shape[1], k.shape[2]
    qg = q.view(b, g, h // g, t, d)
    scores = torch.einsum("bgrtd,bgsd->bgrts", qg, k) / d**0.5
    visible = torch.ones(t, s, dtype=torch.bool).tril(diagonal=s - t)
    weights = torch.softmax(scores.masked_fill(~visible, float("-inf")), dim=-1)
    out = torch.einsum("bgrts,bgsd->bgrtd", weights, v)
    return out.reshape(b, h, t, d), weights.reshape(b, h, t, s)


@pytest.mark.parametrize("answer", [gqa_by_reshape, by_einsum], ids=["reshape", "einsum"])
def test_gqa_checker_accepts_no_copy_answers(answer):
    result = check_gqa_with_weights(answer)
    assert result.ok, result.message


def my_gqa_with_weights(q, k, v):
    # your code here: return (output (b, h, t, d), weights (b, h, t, s))
    return q, None


def _tiled(q, k, v):  # query head j reads kv head j % g
    b, h, t, d = q.shape
    g = k.shape[1]
    perm = torch.arange(h).reshape(h // g, g).T.flatten()  # heads of kv head 0 first, ...
    out, weights = gqa_by_reshape(q[:, perm], k, v)
    inverse = torch.argsort(perm)
    return out[:, inverse], weights[:, inverse]


GQA_WRONG = {
    "the stub": (my_gqa_with_weights, ["still the template", "q of shape (1, 4, 3, 8)"]),
    "copies k and v (values right)": (
        lambda q, k, v: (attention(q, k, v), attention_weights(q, k)),
        ["values are right", "expand", "reshape q to (b, g, h / g, t, d)"],
    ),
    "repeat_interleave (values right)": (
        lambda q, k, v: tuple(
            x + 0 * k.repeat_interleave(1, dim=1).sum() for x in gqa_by_reshape(q, k, v)
        ),
        ["repeat_interleave"],
    ),
    "no mask": (
        lambda q, k, v: gqa_by_reshape(q, k, v, offset=k.shape[2]),
        ["causal mask"],
    ),
    "queries from position 0": (
        lambda q, k, v: gqa_by_reshape(q, k, v, offset=0),
        ["positions 0 .. t - 1", "last t of the s"],
    ),
    "groups tiled": (_tiled, ["j // (h / g)"]),
    "unscaled": (lambda q, k, v: gqa_by_reshape(q * k.shape[-1] ** 0.5, k, v), ["sqrt(d)"]),
    "only the output": (lambda q, k, v: gqa_by_reshape(q, k, v)[0], ["tuple"]),
    "weights left grouped": (
        lambda q, k, v: (
            gqa_by_reshape(q, k, v)[0],
            gqa_by_reshape(q, k, v)[1].reshape(q.shape[0], k.shape[1], -1, q.shape[2], k.shape[2]),
        ),
        ["weights", "reshape"],
    ),
    "NaN weights": (
        lambda q, k, v: (gqa_by_reshape(q, k, v)[0], gqa_by_reshape(q, k, v)[1] * float("nan")),
        ["NaN"],
    ),
}


@pytest.mark.parametrize("answer, words", GQA_WRONG.values(), ids=list(GQA_WRONG))
def test_gqa_checker_explains_wrong_answers(explain, answer, words):
    explain(check_gqa_with_weights, answer, words)


def test_gqa_checker_explains_any_wrong_answer(explain, any_wrong_answer):
    explain(check_gqa_with_weights, *any_wrong_answer)
