"""TruthfulQA's MC1/MC2 and Winogrande's partial scoring against the harness's own tasks
(lm-eval 0.4.13: truthfulqa_mc1, truthfulqa_mc2 with utils.process_results_mc2, winogrande with
preprocess_winogrande and multiple-input contexts)."""

from __future__ import annotations

import math

import pytest
import torch

from demos.eval.harness_reference import harness_scores, harness_task, train_tokenizer
from demos.eval.scoring import loglikelihood
from demos.eval.truthfulqa import mc1, mc2, truthfulqa_prompt
from demos.eval.winogrande import winogrande_requests, winogrande_split
from demos.toys.benchmarks import TRUTHFULQA_ITEMS, WINOGRANDE_ITEMS, corpus, tiny_llama


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(corpus(), vocab_size=400, bos=True)


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_llama(len(tokenizer), seed=2)


@pytest.mark.parametrize("which", ["mc1", "mc2"])
def test_truthfulqa_prompts_and_scores_equal_the_harness(model, tokenizer, which):
    task = harness_task(f"truthfulqa_{which}", TRUTHFULQA_ITEMS)
    for item, doc in zip(TRUTHFULQA_ITEMS, task.validation_docs(), strict=True):
        prompt = truthfulqa_prompt(item["question"])
        assert prompt == task.fewshot_context(doc, 0)
        targets = item[f"{which}_targets"]
        requests = [(prompt, " " + c) for c in targets["choices"]]
        theirs = task.construct_requests(doc, prompt, metadata=("t", 0, 1))
        assert requests == [r.args for r in theirs]
        results = loglikelihood(model, tokenizer, requests)
        lls = [ll for ll, _ in results]
        expected = harness_scores(task, doc, results)["acc"]
        ours = mc1(lls, targets["choices"]) if which == "mc1" else mc2(lls, targets["labels"])
        assert math.isfinite(ours)
        assert ours == pytest.approx(expected, abs=1e-12)


def test_mc2_is_stable_where_the_harness_divides_zero_by_zero():
    task = harness_task("truthfulqa_mc2", TRUTHFULQA_ITEMS[:1])
    doc = task.validation_docs()[0]
    lls = [-1000.0, -1001.0, -1003.0, -1002.0]  # long answers: exp underflows to 0
    with pytest.warns(RuntimeWarning):
        expected = harness_scores(task, doc, [(ll, False) for ll in lls])["acc"]
    assert math.isnan(expected)
    shifted = [ll + 1000 for ll in lls]  # the same ratios, where exp does not underflow
    reference = harness_scores(task, doc, [(ll, False) for ll in shifted])["acc"]
    assert mc2(lls, [1, 1, 0, 0]) == pytest.approx(reference, abs=1e-12)


def test_winogrande_requests_and_acc_equal_the_harness(model, tokenizer):
    train, test = WINOGRANDE_ITEMS[:3], WINOGRANDE_ITEMS[3:]
    task = harness_task("winogrande", test, train, fewshot_config={"sampler": "first_n"})
    shots = [(r["sentence"], r["option1"], r["option2"], int(r["answer"]) - 1) for r in train]
    for item, doc in zip(test, task.validation_docs(), strict=True):
        options = (item["option1"], item["option2"])
        requests = winogrande_requests(item["sentence"], options, shots)
        contexts = task.fewshot_context(doc, 3)
        theirs = task.construct_requests(doc, contexts, metadata=("w", 0, 1))
        assert requests == [r.args for r in theirs]
        assert requests[0][1] == requests[1][1]  # the same continuation after each option
        results = loglikelihood(model, tokenizer, requests)
        lls = [ll for ll, _ in results]
        gold = int(item["answer"]) - 1
        ours = float(max(range(2), key=lambda i: (lls[i], -i)) == gold)
        assert ours == harness_scores(task, doc, results)["acc"]


def test_partial_scoring_scores_the_same_tokens(tokenizer):
    from demos.eval.scoring import encode_pair

    (a, cont_a), (b, cont_b) = winogrande_requests("The cup beat the _ at chess.", ("pot", "pan"))
    assert cont_a == cont_b == " at chess."
    assert encode_pair(tokenizer, a, cont_a)[1] == encode_pair(tokenizer, b, cont_b)[1]


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: mc2([-1.0, -2.0], [1, 1]), "at least one true and one false"),
        (lambda: mc2([-1.0, -2.0], [1, 2]), "0 \\(false\\) or 1"),
        (lambda: mc2([], []), "non-empty"),
        (lambda: mc2([-1.0], [1, 0]), "one per choice"),
        (lambda: mc1([-1.0, float("nan")], ["a", "b"]), "NaN"),
        (lambda: winogrande_split("no blank here", "x"), "exactly one blank"),
        (lambda: winogrande_split("two _ blanks _ here", "x"), "exactly one blank"),
        (lambda: winogrande_split("ends in a blank _", "x"), "nothing follows"),
        (lambda: winogrande_split("a _ b", ""), "option is empty"),
    ],
)
def test_bad_items_raise(call, words):
    with pytest.raises(ValueError, match=words):
        call()


def test_mc2_by_hand():
    lls = torch.log(torch.tensor([0.5, 0.2, 0.2, 0.1], dtype=torch.float64)).tolist()
    assert mc2(lls, [1, 0, 1, 0]) == pytest.approx(0.7)
