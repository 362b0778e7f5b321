"""The Llama 2 chapter's debugging exercise: find where BuggyBlock first leaves the reference.

The planted model diverges exactly where the checker says it does (measured with first_divergence,
and gone when the bug is), the solution passes in every form the checker accepts, and the stub and
plausible wrong answers fail with a message that says why."""

from __future__ import annotations

import pytest

from demos.debugging import NoDivergence, first_divergence
from demos.exercises.core import Check
from demos.exercises.llama2 import (
    PLANTED_SUBSTEP,
    BuggyBlock,
    check_planted_mistake,
    planted_mistake_models,
)
from demos.models.llama import LlamaLM, LlamaLMBlock


def solution(ours, reference, input_ids):
    found = first_divergence(ours, reference, input_ids)
    return found.layer, found.substep


@pytest.mark.parametrize("layer", [0, 1])
def test_the_planted_model_diverges_at_the_planted_place(layer):
    ours, reference, ids = planted_mistake_models(layer)
    assert isinstance(ours.blocks[layer], BuggyBlock)
    assert solution(ours, reference, ids) == (layer, PLANTED_SUBSTEP)
    fixed = LlamaLMBlock(ours.config, layer)  # the same weights in the right block: no divergence
    fixed.load_state_dict(ours.blocks[layer].state_dict())
    ours.blocks[layer] = fixed.eval()
    assert isinstance(first_divergence(ours, reference, ids), NoDivergence)


def test_the_planted_models_are_the_same_on_every_call():
    (a, _, ids_a), (b, _, ids_b) = planted_mistake_models(), planted_mistake_models()
    assert (ids_a == ids_b).all()
    assert all((p == q).all() for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert isinstance(a, LlamaLM)


@pytest.mark.parametrize(
    "answer",
    [
        solution,
        lambda o, r, i: first_divergence(o, r, i),  # the Divergence itself
        (1, "post-attention norm"),  # the pair, read off the report
        (1, "post_attention_layernorm"),  # the module's name
        [1, "Post-attention norm "],
    ],
    ids=["function", "divergence", "pair", "module name", "list, other case"],
)
def test_right_answers_pass(answer):
    result = check_planted_mistake(answer)
    assert result.ok, result.message
    assert "show_source(BuggyBlock.forward)" in result.message


def stub(ours, reference, input_ids):
    # your code here
    return None


WRONG = {  # answer -> words the message must hold
    "the stub": (stub, ["`stub` is still the template", "first_divergence"]),
    "None": (None, ["returned None", "first_divergence"]),
    "the MLP (largest difference)": ((1, "MLP"), ["layer is right", "inherits", "'MLP'"]),
    "the residual after the MLP": (
        lambda o, r, i: (1, "residual after MLP"),
        ["layer 1", "inherits", "earlier sub-step"],
    ),
    "attention": ((1, "attention"), ["layer is right", "'attention' still agrees"]),
    "an earlier layer": ((0, "post-attention norm"), ["layer 0 still agrees"]),
    "a layer the model does not have": (
        (2, "post-attention norm"),
        ["there is no layer 2", "0 to 1"],
    ),
    "one past the last layer": (
        lambda o, r, i: (first_divergence(o, r, i).layer + 1, PLANTED_SUBSTEP),
        ["BuggyBlock in layer 1", "there is no layer 2", "0 to 1"],
    ),
    "a later layer": (  # right for the bug in layer 1; for the bug in layer 0, layer 1
        lambda o, r, i: (
            (1, "MLP") if first_divergence(o, r, i).layer == 0 else (1, PLANTED_SUBSTEP)
        ),
        ["BuggyBlock in layer 0", "layer 1 differs", "Look for the first"],
    ),
    "a fixed pair": (
        lambda o, r, i: (1, "post-attention norm"),
        ["BuggyBlock in layer 0", "fixed pair"],
    ),
    "an unknown sub-step": ((1, "norm"), ["'norm' is not a sub-step", "residual after MLP"]),
    "a string": ("layer 1", ["not a pair (layer, substep)"]),
    "layer as a str": (("1", "MLP"), ["layer must be an int"]),
    "raises": (lambda o, r, i: o(i + 1000), ["raised ValueError", "token ids"]),
}


@pytest.mark.parametrize("case", WRONG)
def test_wrong_answers_fail_with_a_reason(case, explain):
    answer, words = WRONG[case]
    explain(check_planted_mistake, answer, words)


def test_the_stub_is_not_attempted_yet():
    result = check_planted_mistake(stub)
    assert not result.ok and not result.attempted, result
    assert str(result).startswith("✏️ Not attempted yet."), result
    returns_nothing = lambda o, r, i: None  # noqa: E731  (an attempt, not the template)
    assert check_planted_mistake(returns_nothing).attempted


def test_never_raises_on_any_answer(any_wrong_answer):
    answer, _ = any_wrong_answer
    result = check_planted_mistake(answer)
    assert isinstance(result, Check) and not result.ok, result
