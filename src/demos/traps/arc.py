"""The ARC chapter's trap: the BOS token dropped from a Llama-style tokenizer's requests, against
lm-eval's HFLM (which keeps the tokenizer's default and so prepends ``<s>``)."""

from __future__ import annotations

from demos.traps import Measured, Trap


def measure() -> Measured:
    from demos.eval.fewshot import arc_text
    from demos.eval.harness_reference import harness_loglikelihood, train_tokenizer
    from demos.eval.scoring import loglikelihood
    from demos.toys.benchmarks import ARC_ITEMS, corpus, tiny_llama

    tokenizer = train_tokenizer(corpus(), vocab_size=400, bos=True)
    model = tiny_llama(len(tokenizer), seed=0)
    pairs = [
        (arc_text(item["question"]), " " + choice)
        for item in ARC_ITEMS[:3]
        for choice in item["choices"]["text"]
    ]
    reference = [ll for ll, _ in harness_loglikelihood(model, tokenizer, pairs)]
    right = [ll for ll, _ in loglikelihood(model, tokenizer, pairs, batch_size=4)]
    wrong = [ll for ll, _ in loglikelihood(model, tokenizer, pairs, add_bos_token=False)]
    return Measured.of(
        right,
        wrong,
        reference,
        tolerance=1e-4,
        quantity="log-likelihoods (nats) of 12 ARC choices, tiny random Llama with a BOS "
        "tokenizer, vs lm-eval 0.4.13 HFLM.loglikelihood",
    )


TRAPS = [
    Trap(
        chapter="arc",
        title="The BOS token dropped",
        wrong="tokenizer.encode(context + continuation, add_special_tokens=False)",
        right="tokenizer.encode(context + continuation)  # the default: <s> first",
        shows="every log-likelihood: the first real token is predicted from another start",
        measure=measure,
    )
]
