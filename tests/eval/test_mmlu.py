"""MMLU's prompt styles and averages: today's harness style equals the harness's own mmlu task; the
others differ from it exactly where the Hugging Face blog post says they do."""

from __future__ import annotations

import pytest
import torch

from demos.eval.harness_reference import harness_task, train_tokenizer
from demos.eval.mmlu import STYLES, macro_average, micro_average, mmlu_predict, mmlu_prompt
from demos.eval.scoring import loglikelihood
from demos.toys.benchmarks import MMLU_DEV, MMLU_TEST, corpus, mmlu_rows, tiny_llama

SUBJECT = "high_school_biology"


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(corpus(), vocab_size=400, bos=True)


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_llama(len(tokenizer), seed=0)


def test_harness_style_is_the_harness_mmlu_prompt():
    rows = mmlu_rows(MMLU_TEST)[SUBJECT]
    task = harness_task(f"mmlu_{SUBJECT}", rows, mmlu_rows(MMLU_DEV)[SUBJECT])
    for question, doc in zip(MMLU_TEST[SUBJECT], task.test_docs(), strict=True):
        assert mmlu_prompt("harness", SUBJECT, question, MMLU_DEV[SUBJECT]) == (
            task.fewshot_context(doc, 5)
        )


def test_the_styles_differ_where_the_blog_says():
    q, shots = MMLU_TEST[SUBJECT][0], MMLU_DEV[SUBJECT][:1]
    original, helm, old = (mmlu_prompt(s, SUBJECT, q, shots) for s in STYLES[:3])
    assert "about  high school biology.\n\n" in original  # format_subject's extra space
    assert "about high school biology.\n\nQuestion: " in helm
    assert original.count("Question:") == 0 and helm.count("Question:") == 2
    assert old.startswith("Question: ") and old.count("\nChoices:\n") == 2
    assert "Answer: B. mitochondrion\n\n" in old  # the shot's full answer, not its letter


def test_harness_styles_pick_the_argmax_of_the_loglikelihoods(model, tokenizer):
    shots = MMLU_DEV[SUBJECT]
    for q in MMLU_TEST[SUBJECT]:
        prompt = mmlu_prompt("harness", SUBJECT, q, shots)
        lls = [ll for ll, _ in loglikelihood(model, tokenizer, [(prompt, f" {L}") for L in "ABCD"])]
        assert mmlu_predict(model, tokenizer, "harness", SUBJECT, q, shots) == lls.index(max(lls))


def test_original_picks_among_letters_and_helm_needs_the_letter_generated(model, tokenizer):
    q, shots = MMLU_TEST[SUBJECT][0], MMLU_DEV[SUBJECT]
    prompt_ids = tokenizer.encode(mmlu_prompt("original", SUBJECT, q, shots))
    logits = model(torch.tensor([prompt_ids])).logits[0, -1]
    letters = [tokenizer.encode(" " + L, add_special_tokens=False)[0] for L in "ABCD"]
    expected = int(logits[letters].argmax())
    assert mmlu_predict(model, tokenizer, "original", SUBJECT, q, shots) == expected
    helm = mmlu_predict(model, tokenizer, "helm", SUBJECT, q, shots)
    assert helm in (-1, 0, 1, 2, 3)


def test_macro_and_micro_averages():
    scores = {"a": [1.0, 1.0, 1.0, 1.0], "b": [0.0]}
    assert macro_average(scores) == pytest.approx(0.5)
    assert micro_average(scores) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="no scored questions"):
        macro_average({"a": []})
    with pytest.raises(ValueError, match="no subjects"):
        micro_average({})


@pytest.mark.parametrize(
    "style, question, words",
    [
        ("lm-eval", ("q", ["a", "b", "c", "d"], 0), "must be one of"),
        ("original", ("q", ["a", "b", "c"], 0), "4 choices"),
        ("helm", ("q", ["a", "b", "c", "d"], 4), "out of range"),
        ("helm", ("q", [], 0), "non-empty"),
    ],
)
def test_bad_questions_raise(style, question, words):
    with pytest.raises(ValueError, match=words):
        mmlu_prompt(style, SUBJECT, question, [])
