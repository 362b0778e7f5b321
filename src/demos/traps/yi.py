"""The Yi chapter's traps: a RoPE base left at Llama's default, and a needle scored by substring.

Yi's configs set ``rope_theta`` to 5e6 [hf_yi_configs]; code that builds RoPE with the usual 1e4
(a default copied from Llama 2) computes other angles at every position past 0, and the logits
move. Measured against transformers' ``LlamaForCausalLM`` on the catalogue's ``yi-like`` row
(transformers==5.23.0, models/llama/modeling_llama.py::LlamaRotaryEmbedding). And a needle answer
scored by ``expected in generated`` passes answers that are wrong ("73410"), measured against
verdicts written by hand for answers written for the book.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from demos.eval.needle import score_text
from demos.traps import Measured, Trap
from demos.traps.tiny import measure_models, seeded, token_ids
from demos.validation import check_positive_int

# (continuation after "... The magic number is", the right verdict by hand); the needle is 7341
ANSWERS = [
    (" 7341.", 1.0),
    (" 7341\n\nThe text also mentions", 1.0),
    (" 73410", 0.0),  # a longer number
    (" 17341", 0.0),
    (" 1234. No wait, 7341", 0.0),  # the answer given is 1234
    (" 2023", 0.0),
]
EXPECTED = "7341"


def measure_rope_base_default() -> Measured:
    """Right: our LlamaLM read from the yi-like reference (base 5e6); wrong: the same weights with
    ``rope_theta`` 1e4. Both against the reference's logits, 2 x 12 tokens, fp32."""
    from demos.catalog import ROWS
    from demos.models.llama import LlamaLM

    with seeded(0):
        ours, reference = ROWS["yi-like"].pair()
        ids = token_ids(reference.config.vocab_size)
    wrong = LlamaLM(dataclasses.replace(ours.config, rope_theta=10000.0)).eval()
    wrong.load_state_dict(ours.state_dict())
    quantity = "logits of a tiny Yi-shaped LlamaForCausalLM (rope_theta 5e6), 2 x 12 tokens, fp32"
    return measure_models(reference, ours, wrong, ids, quantity)


def measure_substring_score() -> Measured:
    """Right: :func:`demos.eval.needle.score_text` (the first word, exactly); wrong: substring.
    Both against the verdicts written by hand in :data:`ANSWERS`."""
    right = [score_text(text, EXPECTED) for text, _ in ANSWERS]
    wrong = [float(EXPECTED in text) for text, _ in ANSWERS]
    truth = [verdict for _, verdict in ANSWERS]
    quantity = f"verdicts on {len(ANSWERS)} needle answers written for the book (1 right, 0 wrong)"
    return Measured.of(right, wrong, truth, tolerance=0.5, quantity=quantity, exact=True)


def rope_error_by_position(
    wrong_thetas: Sequence[float] = (10000.0,), length: int = 12
) -> torch.Tensor:
    """``(len(wrong_thetas), length)``: max |logits| difference per position between the
    catalogue's ``yi-like`` model (``rope_theta`` 5e6, as Yi's configs) and the same weights run
    with each wrong base; 0 at position 0, where every rotation is the identity.
    ``ValueError`` on a bad base or length."""
    from demos.catalog import ROWS
    from demos.models.llama import LlamaLM

    check_positive_int("length", length)
    with seeded(0):
        ours, reference = ROWS["yi-like"].pair()
        ids = token_ids(reference.config.vocab_size, t=length)
    rows = []
    with torch.no_grad():
        right = ours(ids)  # (b, t, v)
        for theta in wrong_thetas:
            wrong = LlamaLM(dataclasses.replace(ours.config, rope_theta=theta)).eval()
            wrong.load_state_dict(ours.state_dict())
            rows.append((wrong(ids) - right).abs().amax(dim=(0, 2)))  # (t,)
    return torch.stack(rows)


TRAPS = [
    Trap(
        chapter="yi",
        title="RoPE base left at Llama's 1e4 when loading a model built for 5e6",
        wrong="LlamaLMConfig(..., rope_theta=10000.0)  # the default",
        right="LlamaLMConfig.from_hf(config)  # rope_theta 5e6, as Yi ships it",
        shows="every logit after the first position; the first is untouched",
        measure=measure_rope_base_default,
    ),
    Trap(
        chapter="yi",
        title="A needle scored by substring instead of an exact first answer",
        wrong="score = float(expected in generated)",
        right="score = float(first_answer(generated) == expected)",
        shows="wrong answers that contain the value ('73410', '1234. No wait, 7341')",
        measure=measure_substring_score,
    ),
]
