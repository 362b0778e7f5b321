"""The HellaSwag chapter's trap: acc_norm normalised by the number of *tokens* of each ending instead
of its characters, against the harness's own ``process_results`` of the ``hellaswag`` task."""

from __future__ import annotations

import random

from demos.traps import Measured, Trap

WORDS = (
    "the a man woman dog runs jumps quickly into water bright slowly ball over under park".split()
)


def measure() -> Measured:
    from demos.eval.harness_reference import harness_scores, harness_task, train_tokenizer
    from demos.eval.metrics import multiple_choice_scores
    from demos.toys.benchmarks import HELLASWAG_ITEMS, corpus

    tokenizer = train_tokenizer(corpus(), vocab_size=400, bos=True)
    rng = random.Random(0)
    task = harness_task("hellaswag", HELLASWAG_ITEMS[:1])
    doc = dict(task.validation_docs()[0])
    right, wrong = [], []
    for _ in range(200):  # random endings and random log-likelihoods of a plausible size
        endings = [" ".join(rng.choices(WORDS, k=rng.randint(2, 12))) for _ in range(4)]
        lls = [-rng.uniform(1.0, 3.0) * len(e.split()) for e in endings]
        gold = rng.randrange(4)
        doc.update(choices=endings, gold=gold, label=str(gold))
        reference = harness_scores(task, doc, [(ll, False) for ll in lls])["acc_norm"]
        right.append(abs(multiple_choice_scores(lls, endings, gold).acc_norm - reference))
        n_tokens = [len(tokenizer.encode(" " + e, add_special_tokens=False)) for e in endings]
        by_tokens = max(range(4), key=lambda i: (lls[i] / n_tokens[i], -i))
        wrong.append(abs(float(by_tokens == gold) - reference))
    return Measured(
        right_error=sum(right) / len(right),
        wrong_error=sum(wrong) / len(wrong),
        tolerance=1e-9,
        quantity="share of 200 random 4-ending items whose acc_norm differs from the harness's "
        "process_results (hellaswag task, lm-eval 0.4.13)",
    )


TRAPS = [
    Trap(
        chapter="hellaswag",
        title="acc_norm divided by tokens instead of characters",
        wrong="pred = argmax(ll / len(tokenizer.encode(' ' + ending)))",
        right="pred = argmax(ll / len(ending))  # characters of the ending text",
        shows="items whose endings tokenise into pieces of different average length",
        measure=measure,
    )
]
