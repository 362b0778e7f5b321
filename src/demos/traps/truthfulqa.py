"""The TruthfulQA chapter's trap: MC2 without the normalisation over the answers offered (the true
answers' probabilities summed as they come), against the harness's ``process_results_mc2``."""

from __future__ import annotations

import math

from demos.traps import Measured, Trap


def measure() -> Measured:
    from demos.eval.harness_reference import harness_scores, harness_task, train_tokenizer
    from demos.eval.scoring import loglikelihood
    from demos.eval.truthfulqa import mc2, truthfulqa_prompt
    from demos.toys.benchmarks import TRUTHFULQA_ITEMS, corpus, tiny_llama

    tokenizer = train_tokenizer(corpus(), vocab_size=400, bos=True)
    model = tiny_llama(len(tokenizer), seed=0)
    task = harness_task("truthfulqa_mc2", TRUTHFULQA_ITEMS)
    right, wrong = [], []
    for item, doc in zip(TRUTHFULQA_ITEMS, task.validation_docs(), strict=True):
        prompt = truthfulqa_prompt(item["question"])
        choices, labels = item["mc2_targets"]["choices"], item["mc2_targets"]["labels"]
        results = loglikelihood(model, tokenizer, [(prompt, " " + c) for c in choices])
        lls = [ll for ll, _ in results]
        reference = harness_scores(task, doc, results)["acc"]
        right.append(abs(mc2(lls, labels) - reference))
        unnormalised = sum(math.exp(ll) for ll, label in zip(lls, labels, strict=True) if label)
        wrong.append(abs(unnormalised - reference))
    return Measured(
        right_error=float(max(right)),
        wrong_error=float(max(wrong)),
        tolerance=1e-9,
        quantity="MC2 of 3 illustrative TruthfulQA questions, tiny random Llama, vs lm-eval 0.4.13 "
        "truthfulqa utils.process_results_mc2",
    )


TRAPS = [
    Trap(
        chapter="truthfulqa",
        title="MC2 without normalising over the answers",
        wrong="sum(exp(ll) for ll, true in zip(lls, labels) if true)",
        right="sum(p for p, true in zip(softmax(lls), labels) if true)",
        shows="every question: unnormalised probabilities of whole sentences are tiny",
        measure=measure,
    )
]
