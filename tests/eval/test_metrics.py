"""Our prompts and metrics against the harness's own task code (lm-eval 0.4.13): each task is built
from its yaml file in the installed package (``ConfigurableTask``) with illustrative items as its
data, then ``fewshot_context`` (prompt), ``construct_requests`` (the pairs) and ``process_results``
(acc, acc_norm, acc_bytes) are compared with ours."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from demos.eval.fewshot import (
    LEADERBOARD_SHOTS,
    arc_text,
    fewshot_prompt,
    hellaswag_preprocess,
    hellaswag_text,
    mmlu_description,
    mmlu_text,
)
from demos.eval.harness_reference import harness_scores, harness_task, train_tokenizer
from demos.eval.metrics import acc, acc_norm, mean, multiple_choice_scores
from demos.eval.scoring import loglikelihood
from demos.toys.benchmarks import (
    ARC_ITEMS,
    HELLASWAG_ITEMS,
    MMLU_DEV,
    MMLU_TEST,
    corpus,
    mmlu_rows,
    tiny_llama,
)

FIRST_N = {"fewshot_config": {"sampler": "first_n"}}  # the same shots on both sides


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(corpus(), vocab_size=400, bos=True)


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_llama(len(tokenizer), seed=1)


def arc_ours(item):
    return arc_text(item["question"]), item["choices"]["text"], "ABCD".index(item["answerKey"])


def hellaswag_ours(item):
    query = hellaswag_text(item["activity_label"], item["ctx_a"], item["ctx_b"])
    return query, [hellaswag_preprocess(e) for e in item["endings"]], int(item["label"])


def target(text_choices_gold):
    _, choices, gold = text_choices_gold
    return choices[gold]


TASKS = {
    # name: (harness task, eval docs, shot docs, our (text, choices, gold), description, k)
    "arc_easy": ("arc_easy", ARC_ITEMS[4:], ARC_ITEMS[:4], arc_ours, "", 3),
    "arc_challenge": ("arc_challenge", ARC_ITEMS[:4], ARC_ITEMS[4:], arc_ours, "", 4),
    "hellaswag": ("hellaswag", HELLASWAG_ITEMS[2:], HELLASWAG_ITEMS[:2], hellaswag_ours, "", 2),
}


def mmlu_ours(row):
    return mmlu_text(row["question"], row["choices"]), list("ABCD"), row["answer"]


def run_both(model, tokenizer, name, docs, shots, ours_of, description, k):
    task = harness_task(name, docs, shots, **FIRST_N)
    harness_docs = list(task.test_docs() if task.has_test_docs() else task.validation_docs())
    compared = 0
    for raw, doc in zip(docs, harness_docs, strict=True):
        text, choices, gold = ours_of(raw)
        context = fewshot_prompt(
            [(ours_of(s)[0], target(ours_of(s))) for s in shots[:k]], text, description=description
        )
        harness_context = task.fewshot_context(doc, k)
        assert context == harness_context
        requests = task.construct_requests(doc, harness_context, metadata=(name, 0, 1))
        assert [r.args for r in requests] == [(context, " " + c) for c in choices]
        results = loglikelihood(model, tokenizer, [(context, " " + c) for c in choices])
        expected = harness_scores(task, doc, results)
        scores = multiple_choice_scores([ll for ll, _ in results], choices, gold)
        for metric, value in expected.items():
            assert getattr(scores, metric) == value, (name, metric)
        compared += len(expected)
    return compared


@pytest.mark.parametrize("name", list(TASKS))
def test_prompts_requests_and_metrics_equal_the_harness(model, tokenizer, name):
    assert run_both(model, tokenizer, *TASKS[name]) >= 2 * len(TASKS[name][1])


@pytest.mark.parametrize("subject", list(MMLU_TEST))
def test_mmlu_prompts_and_acc_equal_the_harness(model, tokenizer, subject):
    dev, test = mmlu_rows(MMLU_DEV)[subject], mmlu_rows(MMLU_TEST)[subject]
    description = mmlu_description(subject)
    compared = run_both(model, tokenizer, f"mmlu_{subject}", test, dev, mmlu_ours, description, 5)
    assert compared == len(test)  # MMLU reports acc only


def test_leaderboard_shots_are_the_six_of_the_about_page():
    assert LEADERBOARD_SHOTS == {
        "arc_challenge": 25,
        "hellaswag": 10,
        "mmlu": 5,
        "truthfulqa_mc2": 0,
        "winogrande": 5,
        "gsm8k": 5,
    }


CHOICE = st.text(alphabet="abcxyz éüß—中", min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    choices=st.lists(CHOICE, min_size=1, max_size=5, unique=True),
)
def test_metrics_equal_process_results_on_random_scores(data, choices):
    """Any log-likelihoods, any (also non-ASCII) choices, ties included: acc, acc_norm (per
    character) and acc_bytes (per UTF-8 byte) equal the harness's process_results."""
    lls = data.draw(
        st.lists(
            st.sampled_from([-1.0, -2.0, -7.5]) | st.floats(-60, -0.01),
            min_size=len(choices),
            max_size=len(choices),
        )
    )
    gold = data.draw(st.integers(0, len(choices) - 1))
    item = {
        "id": "x",
        "question": "q",
        "choices": {"text": choices, "label": [str(i) for i in range(len(choices))]},
        "answerKey": str(gold),
    }
    metric_list = [{"metric": m} for m in ("acc", "acc_norm", "acc_bytes")]
    task = _arc_task_with(item, metric_list)
    doc = task.test_docs()[0]
    expected = harness_scores(task, doc, [(ll, False) for ll in lls])
    scores = multiple_choice_scores(lls, choices, gold)
    assert {m: getattr(scores, m) for m in expected} == expected
    assert (
        acc(lls, gold) == expected["acc"] and acc_norm(lls, choices, gold) == expected["acc_norm"]
    )


_TASK_CACHE = {}


def _arc_task_with(item, metric_list):
    """One harness task object, its data replaced per example (building one costs ~0.3 s)."""
    import datasets

    if "task" not in _TASK_CACHE:
        _TASK_CACHE["task"] = harness_task("arc_easy", [item], metric_list=metric_list)
    task = _TASK_CACHE["task"]
    task.dataset = datasets.DatasetDict({"test": datasets.Dataset.from_list([item])})
    return task


def test_acc_norm_counts_characters_not_bytes():
    """lm-eval 0.4.13's acc_norm divides by len(choice) in characters; bytes are acc_bytes."""
    lls, choices = [-10.0, -9.0], ["ééééé", "abcde"]  # 5 characters each; 10 and 5 bytes
    scores = multiple_choice_scores(lls, choices, 0)
    assert (scores.pred_norm, scores.pred_bytes) == (1, 0)


@pytest.mark.parametrize(
    "lls, choices, gold, words",
    [
        ([], [], 0, "non-empty list"),
        ([-1.0, -2.0], ["a", "b"], 2, "out of range"),
        ([-1.0, -2.0], ["a", "b"], -1, "out of range"),
        ([-1.0, -2.0], ["a", ""], 0, "non-empty string"),
        ([-1.0], ["a", "b"], 0, "one per choice"),
        ([float("nan"), -1.0], ["a", "b"], 0, "not NaN"),
        ([0.5, -1.0], ["a", "b"], 0, "<= 0"),
        ([-1.0, -2.0], "ab", 0, "non-empty list"),
        ([-1.0, -2.0], ["a", "b"], 1.0, "integer index"),
    ],
)
def test_bad_items_raise(lls, choices, gold, words):
    with pytest.raises(ValueError, match=words):
        multiple_choice_scores(lls, choices, gold)


def test_mean():
    assert math.isclose(mean([1.0, 0.0, 1.0, 1.0]), 0.75)
    with pytest.raises(ValueError, match="no values"):
        mean([])
