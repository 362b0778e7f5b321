"""The Yi-1.5 chapter's checkers: the parameter count of a grown model, SOLAR's layer map."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from exercise_references.yi15 import grown_parameters, solar_layer_map

from demos.exercises.yi15 import check_grown_parameters, check_solar_layer_map
from demos.models.llama import LlamaLM, LlamaLMConfig
from demos.models.upscaling import upscaled_config
from demos.weights import count_parameters


def grown(b, c, h, g, d, f, s):  # written here: q, o; k, v; gate, up, down; two norms
    return b + (s[1] - s[0]) * (2 * c * h * d + 2 * c * g * d + 3 * c * f + 2 * c)


def solar(n, m):  # written here: the first copy's bottom n - m layers, the second's top n - m
    return tuple(list(range(n - m)) + list(range(m, n)))


@pytest.mark.parametrize(
    "checker, answer", [(check_grown_parameters, grown), (check_solar_layer_map, solar)]
)
def test_solutions_pass(checker, answer):
    result = checker(answer)
    assert result.ok, result.message


def test_grown_reference_equals_a_built_model():
    """The formula against count_parameters of our LlamaLM built from the grown config (meta)."""
    config = LlamaLMConfig(
        vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
    )  # fmt: skip
    layer_map = (0, 1, 2, 1, 2, 3)
    with torch.device("meta"):
        before = count_parameters(LlamaLM(config))
        after = count_parameters(LlamaLM(upscaled_config(config, layer_map)))
    assert grown_parameters(before, 32, 4, 2, 16, 48, (1, 3)) == after


def test_solar_reference_has_48_layers_for_mistral():
    layer_map = solar_layer_map(32, 8)
    assert len(layer_map) == 48 and layer_map[23] == 23 and layer_map[24] == 8


@pytest.mark.parametrize("n, m", [(32, 8), (8, 2), (4, 1), (6, 0)])
def test_solar_is_yi_with_the_span_m_to_n_minus_m(n, m):
    """What the solution says: SOLAR's two trimmed copies are the span (m, n - m) duplicated."""
    from demos.models.upscaling import upscaled_layer_map

    assert solar_layer_map(n, m) == upscaled_layer_map(n, (m, n - m))


def my_grown_parameters(before, hidden, heads, kv_heads, head_dim, intermediate, span):
    # your code here: return a Python int
    return 0


def _add(layer, copies=lambda s: s[1] - s[0]):
    return lambda b, c, h, g, d, f, s: b + copies(s) * layer(c, h, g, d, f)


def _layer(c, h, g, d, f):
    return 2 * c * h * d + 2 * c * g * d + 3 * c * f + 2 * c


GROWN_WRONG = {
    "stub": (my_grown_parameters, ["still the template"]),
    "no norms": (_add(lambda c, h, g, d, f: _layer(c, h, g, d, f) - 2 * c), ["RMSNorm"]),
    "k, v with h": (_add(lambda c, h, g, d, f: _layer(c, h, h, d, f)), ["query heads"]),
    "two MLP matrices": (
        _add(lambda c, h, g, d, f: _layer(c, h, g, d, f) - c * f),
        ["three matrices"],
    ),
    "o as c x c": (
        _add(lambda c, h, g, d, f: _layer(c, h, g, d, f) - c * h * d + c * c),
        ["output projection"],
    ),
    "inclusive span": (_add(_layer, lambda s: s[1] - s[0] + 1), ["half-open"]),
    "exclusive span, one short": (
        _add(_layer, lambda s: s[1] - s[0] - 1),
        ["too few", "half-open"],
    ),
    "span counted twice": (_add(_layer, lambda s: 2 * (s[1] - s[0])), ["already in 'before'"]),
    "only the added": (
        lambda b, c, h, g, d, f, s: (s[1] - s[0]) * _layer(c, h, g, d, f),
        ["only what the copies add"],
    ),
    "float": (lambda *a: float(grown(*a)), ["the float", "Python int"]),
    "tensor": (lambda *a: torch.tensor(grown(*a)), ["tensor", "Python int"]),
    "numpy": (lambda *a: np.int64(grown(*a)), ["numpy scalar", "Python int"]),
    "nan": (lambda *a: float("nan"), ["nan"]),
    "one more": (lambda *a: grown(*a) + 1, ["expected", "got"]),
}


@pytest.mark.parametrize("answer, words", GROWN_WRONG.values(), ids=list(GROWN_WRONG))
def test_grown_checker_explains_wrong_answers(explain, answer, words):
    explain(check_grown_parameters, answer, words)


def my_solar_layer_map(num_layers, dropped):
    # your code here: return a tuple of ints
    return ()


SOLAR_WRONG = {
    "stub": (my_solar_layer_map, ["still the template"]),
    "wrong order": (lambda n, m: (*range(m, n), *range(n - m)), ["wrong order"]),
    "both lose the bottom": (lambda n, m: (*range(m, n), *range(m, n)), ["both copies lost"]),
    "both lose the top": (lambda n, m: (*range(n - m), *range(n - m)), ["both copies lost"]),
    "nothing dropped": (lambda n, m: (*range(n), *range(n)), ["nothing was dropped"]),
    "first one too many": (lambda n, m: (*range(n - m + 1), *range(m, n)), ["first copy"]),
    "second one too many": (lambda n, m: (*range(n - m), *range(m - 1, n)), ["second copy"]),
    "first one too few": (lambda n, m: (*range(n - m - 1), *range(m, n)), ["too few in the first"]),
    "second one too few": (
        lambda n, m: (*range(n - m), *range(m + 1, n)),
        ["too few in the second"],
    ),
    "a bare nan": (lambda n, m: float("nan"), ["a tuple of 48 layer numbers", "nan"]),
    "a list": (lambda n, m: [*range(n - m), *range(m, n)], ["a list", "tuple"]),
    "a tensor": (lambda n, m: torch.tensor(solar(n, m)), ["tensor"]),
    "floats": (lambda n, m: tuple(float(k) for k in solar(n, m)), ["tuple of Python ints"]),
    "nan": (lambda n, m: (float("nan"),) * (2 * (n - m)), ["nan"]),
}


@pytest.mark.parametrize("answer, words", SOLAR_WRONG.values(), ids=list(SOLAR_WRONG))
def test_solar_checker_explains_wrong_answers(explain, answer, words):
    explain(check_solar_layer_map, answer, words)


@pytest.mark.parametrize("checker", [check_grown_parameters, check_solar_layer_map])
def test_checkers_explain_any_wrong_answer(explain, any_wrong_answer, checker):
    explain(checker, *any_wrong_answer)


@pytest.mark.parametrize(
    "answer",
    [
        my_solar_layer_map,  # the template: "Not attempted yet", with the length expected
        lambda n, m: None,
        lambda n, m: float("nan"),
        lambda n, m: torch.tensor(solar(n, m)),
        lambda n, m: (*range(n - m - 2), *range(m, n)),  # two short: no named mistake
    ],
    ids=["stub", "None", "nan", "tensor", "two short"],
)
def test_solar_checker_names_the_length_not_48_items(answer):
    """The generic message spelt out a 48-layer map as "(item 0, item 1, ..., item 47)"."""
    message = check_solar_layer_map(answer).message
    assert "item 0" not in message and "an int;" not in message, message
    assert "a tuple of 48 layer numbers" in message, message
