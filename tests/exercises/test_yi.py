"""The Yi chapter's checkers: the KV cache at 200K, RoPE's longest wavelength, a multi-needle score."""

from __future__ import annotations

import math

import pytest
import torch
from exercise_references.yi import longest_wavelength

from demos.exercises.yi import check_kv_bytes, check_longest_wavelength, check_multi_needle_score
from demos.layers.kv_cache import cache_bytes
from demos.layers.rope import rope_inv_freq


def kv(config, tokens):  # written here: keys and values, every layer, g heads of d, 2 bytes
    return 2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim * 2 * tokens


def wavelength(theta, d):  # written here: the slowest pair, i = d/2 - 1
    return 2 * math.pi / theta ** (-(d - 2) / d)


def multi(generated, expected):  # written here: whole items, any order
    items = [x.strip(" .") for x in generated.split(",")]
    return sum(v in items for v in expected) / len(expected)


@pytest.mark.parametrize(
    "checker, answer",
    [
        (check_kv_bytes, kv),
        (check_longest_wavelength, wavelength),
        (check_multi_needle_score, multi),
    ],
)
def test_solutions_pass(checker, answer):
    result = checker(answer)
    assert result.ok, result.message


def test_the_cache_reference_equals_what_a_dynamic_cache_holds():
    """A tiny Yi-34B-shaped model (h/g = 7) in bf16: the bytes of transformers' DynamicCache."""
    from demos.catalog import ROWS

    torch.manual_seed(0)
    reference = ROWS["yi-34b-like"].reference(dtype=torch.bfloat16)
    with torch.no_grad():
        held = cache_bytes(reference(torch.randint(0, 97, (1, 9)), use_cache=True).past_key_values)
    assert held == kv(reference.config, 9)


def test_the_wavelength_reference_is_the_slowest_of_ropes_frequencies():
    for theta, d in ((1e4, 128), (5e6, 128), (5e6, 8)):
        slowest = rope_inv_freq(d, theta).double().min().item()  # radians per position
        assert longest_wavelength(theta, d) == pytest.approx(2 * math.pi / slowest, rel=1e-6)


def my_kv_bytes(config, tokens):  # the stub, untouched
    # your code here: return a Python int
    return 0


KV_WRONG = {
    "stub": (my_kv_bytes, ["still the template"]),
    "query heads": (
        lambda c, t: kv(c, t) * c.num_attention_heads // c.num_key_value_heads,
        ["query heads were counted"],
    ),
    "no factors of 2": (lambda c, t: kv(c, t) // 4, ["both factors of 2"]),
    "keys only": (lambda c, t: kv(c, t) // 2, ["factor 2"]),
    "float32": (lambda c, t: kv(c, t) * 2, ["float32"]),
    "one layer": (lambda c, t: kv(c, t) // c.num_hidden_layers, ["one layer"]),
    "hidden size per head": (lambda c, t: kv(c, t) * c.hidden_size // c.head_dim, ["head_dim"]),
    "float": (lambda c, t: float(kv(c, t)), ["Python int"]),
    "tensor": (lambda c, t: torch.tensor(kv(c, t)), ["Python int"]),
    "nan": (lambda c, t: math.nan, ["nan"]),
    "off by a token": (lambda c, t: kv(c, t + 1), ["one token too many"]),
    "a token short": (lambda c, t: kv(c, t - 1), ["one token too few"]),
    "bits, or 16 bytes a value": (lambda c, t: kv(c, t) * 8, ["16 bits"]),
    "GiB as a float": (lambda c, t: kv(c, t) / 2**30, ["in GiB"]),
    "whole GiB": (lambda c, t: kv(c, t) // 2**30, ["whole GiB"]),
    "GB": (lambda c, t: kv(c, t) / 1e9, ["in GB"]),
}


@pytest.mark.parametrize("answer, words", KV_WRONG.values(), ids=list(KV_WRONG))
def test_kv_checker_explains_wrong_answers(explain, answer, words):
    explain(check_kv_bytes, answer, words)


def my_longest_wavelength(theta, head_dim):  # the stub
    # your code here
    return 0.0


WAVE_WRONG = {
    "stub": (my_longest_wavelength, ["still the template"]),
    "theta itself": (lambda b, d: 2 * math.pi * b, ["uses theta itself"]),
    "no 2 pi": (lambda b, d: b ** ((d - 2) / d), ["2 pi is missing"]),
    "frequency": (lambda b, d: b ** (-(d - 2) / d), ["the frequency"]),
    "exponent (d-1)/d": (lambda b, d: 2 * math.pi * b ** ((d - 1) / d), ["(d - 2) / d"]),
    "fastest pair": (lambda b, d: 2 * math.pi, ["fastest pair"]),
    "nan": (lambda b, d: math.nan, ["nan"]),
    "a tensor of the wrong shape": (lambda b, d: torch.ones(2), ["tensor"]),
    "one percent off": (lambda b, d: 1.01 * wavelength(b, d), ["expected", "got"]),
    "second slowest pair": (lambda b, d: 2 * math.pi * b ** ((d - 4) / d), ["expected", "got"]),
}


def test_a_float32_answer_from_rope_inv_freq_passes():
    """The page's figure computes wavelengths from rope_inv_freq (float32): a learner who does the
    same is right, about 5e-8 off in relative terms, and must not be told otherwise."""
    result = check_longest_wavelength(lambda b, d: 2 * math.pi / rope_inv_freq(d, b)[-1].item())
    assert result.ok, result.message


@pytest.mark.parametrize("answer, words", WAVE_WRONG.values(), ids=list(WAVE_WRONG))
def test_wavelength_checker_explains_wrong_answers(explain, answer, words):
    explain(check_longest_wavelength, answer, words)


def my_multi_needle_score(generated, expected):  # the stub
    # your code here
    return 0.0


def _items(g):
    return [x.strip(" .") for x in g.split(",")]


MULTI_WRONG = {
    "stub": (my_multi_needle_score, ["still the template"]),
    "substring": (lambda g, e: sum(v in g for v in e) / len(e), ["substrings"]),
    "ordered": (
        lambda g, e: (
            sum(i < len(_items(g)) and _items(g)[i] == v for i, v in enumerate(e)) / len(e)
        ),
        ["position by position"],
    ),
    "per item": (lambda g, e: sum(x in e for x in _items(g)) / len(_items(g)), ["expected values"]),
    "a count, not a fraction": (lambda g, e: float(sum(v in _items(g) for v in e)), ["expected"]),
    "nan": (lambda g, e: math.nan, ["nan"]),
    "words, not items": (
        lambda g, e: sum(v in [w.strip(".,") for w in g.split()] for v in e) / len(e),
        ["splits on spaces"],
    ),
}


@pytest.mark.parametrize("answer, words", MULTI_WRONG.values(), ids=list(MULTI_WRONG))
def test_multi_needle_checker_explains_wrong_answers(explain, answer, words):
    explain(check_multi_needle_score, answer, words)


@pytest.mark.parametrize(
    "checker", [check_kv_bytes, check_longest_wavelength, check_multi_needle_score]
)
def test_checkers_explain_any_wrong_answer(explain, any_wrong_answer, checker):
    explain(checker, *any_wrong_answer)
