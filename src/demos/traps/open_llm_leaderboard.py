"""The Open LLM Leaderboard chapter's trap: scoring the continuation without moving the context's
trailing space onto it (and encoding the two halves separately), against lm-eval's HFLM."""

from __future__ import annotations

from demos.traps import Measured, Trap

PAIRS = [  # prompts that end in a space, as hand-written templates often do
    ("Question: Which gas do plants take in from the air?\nAnswer: ", "carbon dioxide"),
    ("Question: Which gas do plants take in from the air?\nAnswer: ", "oxygen"),
    ("Question: What is the main source of energy for the water cycle?\nAnswer: ", "the Sun"),
    ("Making tea: A woman fills a kettle with water and sets it on the stove. She ", "waits"),
]


def naive_loglikelihood(model, tokenizer, pairs):
    """The wrong version: context and continuation tokenised apart, the space left on the context."""
    import torch

    out = []
    for context, continuation in pairs:
        ctx = tokenizer.encode(context)
        cont = tokenizer.encode(continuation, add_special_tokens=False)
        with torch.no_grad():
            logits = model(torch.tensor([ctx + cont[:-1]])).logits[0, -len(cont) :]
        logprobs = torch.log_softmax(logits, dim=-1)
        out.append(float(logprobs.gather(1, torch.tensor(cont)[:, None]).sum()))
    return out


def measure() -> Measured:
    from demos.eval.harness_reference import harness_loglikelihood, train_tokenizer
    from demos.eval.scoring import loglikelihood
    from demos.toys.benchmarks import corpus, tiny_llama

    tokenizer = train_tokenizer(corpus(), vocab_size=400, bos=True)
    model = tiny_llama(len(tokenizer), seed=0)
    reference = [ll for ll, _ in harness_loglikelihood(model, tokenizer, PAIRS)]
    right = [ll for ll, _ in loglikelihood(model, tokenizer, PAIRS)]
    wrong = naive_loglikelihood(model, tokenizer, PAIRS)
    return Measured.of(
        right,
        wrong,
        reference,
        tolerance=1e-4,
        quantity="continuation log-likelihoods (nats) of 4 requests whose context ends in a space, "
        "tiny random Llama, vs lm-eval 0.4.13 HFLM.loglikelihood",
    )


TRAPS = [
    Trap(
        chapter="open_llm_leaderboard",
        title="The context's trailing space left on the context",
        wrong="ctx, cont = encode(context), encode(continuation)",
        right="ctx, cont = encode_pair(tokenizer, context, continuation)  # space -> cont",
        shows="every request whose context ends in a space: the continuation's first token "
        "is a different token (' carbon' becomes 'carbon' after a lone ' ')",
        measure=measure,
    )
]
