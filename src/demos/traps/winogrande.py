"""The Winogrande chapter's trap: scoring each whole sentence (option and all) instead of the shared
rest after the blank, against the harness's ``winogrande`` task (multiple-input contexts)."""

from __future__ import annotations

from demos.traps import Measured, Trap


def measure() -> Measured:
    from demos.eval.harness_reference import harness_loglikelihood, harness_task, train_tokenizer
    from demos.eval.scoring import loglikelihood
    from demos.eval.winogrande import winogrande_requests
    from demos.toys.benchmarks import WINOGRANDE_ITEMS, corpus, tiny_llama

    tokenizer = train_tokenizer(corpus(), vocab_size=400, bos=True)
    model = tiny_llama(len(tokenizer), seed=0)
    task = harness_task("winogrande", WINOGRANDE_ITEMS)
    right, wrong = [], []
    for item, doc in zip(WINOGRANDE_ITEMS, task.validation_docs(), strict=True):
        options = (item["option1"], item["option2"])
        contexts = task.fewshot_context(doc, 0)
        theirs = [r.args for r in task.construct_requests(doc, contexts, metadata=("w", 0, 1))]
        ref = [ll for ll, _ in harness_loglikelihood(model, tokenizer, theirs)]
        ours = [ll for ll, _ in loglikelihood(model, tokenizer, winogrande_requests(
            item["sentence"], options))]  # fmt: skip
        whole = [item["sentence"].replace("_", option) for option in options]
        full = [ll for ll, _ in loglikelihood(model, tokenizer, [("", s) for s in whole])]
        right.append(abs((ours[0] - ours[1]) - (ref[0] - ref[1])))
        wrong.append(abs((full[0] - full[1]) - (ref[0] - ref[1])))
    return Measured(
        right_error=max(right),
        wrong_error=max(wrong),
        tolerance=1e-4,
        quantity="log-likelihood margin option 1 - option 2 (nats) of 6 illustrative sentences, "
        "tiny random Llama, vs lm-eval 0.4.13 winogrande requests through HFLM",
    )


TRAPS = [
    Trap(
        chapter="winogrande",
        title="Scoring the whole sentence instead of the rest after the blank",
        wrong="score('', sentence.replace('_', option)) for option in options",
        right="score(sentence[:blank] + option, ' ' + sentence[blank + 1:].strip())",
        shows="every sentence: the options' own tokens and all that precede them enter the score",
        measure=measure,
    )
]
