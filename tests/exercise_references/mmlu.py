"""References and known mistakes for the MMLU chapter: the micro average the harness reports, and the original
implementation's pick among the four letters."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from demos.eval.mmlu import micro_average
from demos.exercises.core import Check, Mistake, check_function
from demos.exercises.mmlu import LETTER_CONVENTIONS  # shared with the package


def micro_reference(per_subject: Mapping[str, Sequence[float]]) -> float:
    """Mean over every question of every subject (lm-eval's ``weight_by_size: True``)."""
    return micro_average(per_subject)


MICRO_MISTAKES = [
    Mistake(
        lambda d: sum(sum(v) / len(v) for v in d.values()) / len(d),
        "this is the macro average (each subject counts once); the harness weights each "
        "subject by its number of questions.",
    ),
    Mistake(
        lambda d: sum(sum(v) for v in d.values()) / len(d),
        "this divides the number of right answers by the number of subjects, not of questions.",
    ),
]


def check_micro_average(fn: Callable[[Mapping[str, Sequence[float]]], float]) -> Check:
    """Check ``fn(per_subject) -> float``: ``{subject: [1.0 or 0.0 per question]}``."""
    cases = {
        "two subjects of different size": ({"law": [1.0, 0.0, 0.0, 0.0], "physics": [1.0]},),
        "one subject": ({"astronomy": [1.0, 1.0, 0.0]},),
        "three subjects": ({"a": [0.0] * 5, "b": [1.0] * 2, "c": [1.0, 0.0]},),
    }
    return check_function(
        fn, micro_reference, cases, ("per_subject",), mistakes=MICRO_MISTAKES, atol=1e-12
    )


def letter_pick_reference(next_token_logits: torch.Tensor, letter_ids: Sequence[int]) -> int:
    """The original MMLU code's answer: the index (0-3) of the letter token with the highest
    logit, whatever the rest of the vocabulary prefers."""
    return int(next_token_logits[list(letter_ids)].argmax())


LETTER_MISTAKES = [
    Mistake(
        lambda logits, ids: int(logits.argmax()),
        "this is the argmax over the whole vocabulary (a token id); the original implementation "
        "compares the four letter tokens only and returns which of them (0-3) wins.",
    ),
    Mistake(
        lambda logits, ids: ids[int(logits[list(ids)].argmax())],
        "this returns the winning letter's token id; return its position among the letters (0-3).",
    ),
]


def check_letter_pick(fn: Callable[[torch.Tensor, Sequence[int]], int]) -> Check:
    """Check ``fn(next_token_logits (v,), letter_ids) -> int in 0..3``."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(50, generator=gen)
    logits[7] = 10.0  # a non-letter token is the model's favourite
    cases = {
        "a non-letter token is likelier": (logits, [11, 12, 13, 14]),
        "letters far apart": (torch.randn(50, generator=gen), [3, 30, 17, 44]),
    }
    return check_function(
        fn,
        letter_pick_reference,
        cases,
        ("next_token_logits", "letter_ids"),
        mistakes=LETTER_MISTAKES,
        conventions=LETTER_CONVENTIONS,
    )
