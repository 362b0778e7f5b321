"""References and known mistakes for the MMLU chapter: the average that gives each category one vote, and the
original implementation's pick among the four letters."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from demos.eval.mmlu import _check_subjects
from demos.exercises.core import Check, Mistake, check_function
from demos.exercises.mmlu import CATEGORY_ARGS, LETTER_CONVENTIONS  # shared with the package


def _pooled(per_subject, category_of):
    """``{category: every question's score in it}``, the subjects' lists joined."""
    pooled: dict[str, list[float]] = {}
    for subject, scores in per_subject.items():
        pooled.setdefault(category_of[subject], []).extend(scores)
    return pooled


def category_average_reference(
    per_subject: Mapping[str, Sequence[float]], category_of: Mapping[str, str]
) -> float:
    """Each category's accuracy over all its questions (what lm-eval's ``mmlu_stem``,
    ``mmlu_humanities``... report, ``weight_by_size: True``), then the plain mean over the
    categories present in ``per_subject``: each category counts once.

    Raises:
        ValueError: no subjects, a subject with no questions or a score outside [0, 1] (as
            :func:`demos.eval.mmlu.micro_average`), or a subject ``category_of`` does not name.
    """
    _check_subjects(per_subject)
    missing = [s for s in per_subject if s not in category_of]
    if missing:
        raise ValueError(f"category_of names no category for the subject(s) {missing}")
    pooled = _pooled(per_subject, category_of)
    return sum(sum(v) / len(v) for v in pooled.values()) / len(pooled)


def _micro(per_subject, category_of):
    return sum(sum(v) for v in per_subject.values()) / sum(len(v) for v in per_subject.values())


def _macro(per_subject, category_of):
    return sum(sum(v) / len(v) for v in per_subject.values()) / len(per_subject)


def _subject_means_in_category(per_subject, category_of):
    means: dict[str, list[float]] = {}
    for subject, scores in per_subject.items():
        means.setdefault(category_of[subject], []).append(sum(scores) / len(scores))
    return sum(sum(v) / len(v) for v in means.values()) / len(means)


def _category_once_per_subject(per_subject, category_of):
    pooled = _pooled(per_subject, category_of)
    accuracy = {c: sum(v) / len(v) for c, v in pooled.items()}
    return sum(accuracy[category_of[s]] for s in per_subject) / len(per_subject)


CATEGORY_MISTAKES = [
    Mistake(
        _micro,
        "this is the micro average over every question (the harness's mmlu number): the "
        "categories play no part. Compute each category's accuracy first, then average those.",
        "one subject per category",
    ),
    Mistake(
        _macro,
        "this is the macro average over subjects (the leaderboard v1 number): each subject counts "
        "once. Here each category counts once, and inside it each question.",
    ),
    Mistake(
        _subject_means_in_category,
        "inside a category this averages the subjects' accuracies; the harness's category groups "
        "pool the questions (weight_by_size): divide the category's right answers by its "
        "questions.",
    ),
    Mistake(
        _category_once_per_subject,
        "this averages over the subjects, each carrying its category's accuracy, so a category "
        "counts once per subject it holds; count each category once.",
    ),
]


def check_category_average(
    fn: Callable[[Mapping[str, Sequence[float]], Mapping[str, str]], float],
) -> Check:
    """Check ``fn(per_subject, category_of) -> float``: the mean over the categories of each
    category's accuracy over its questions."""
    categories = {
        "law": "humanities",
        "philosophy": "humanities",
        "physics": "stem",
        "biology": "stem",
        "economics": "social sciences",
        "nutrition": "other",
    }
    cases = {
        "two categories, subjects of different sizes": (
            {"law": [1.0, 0.0, 0.0, 0.0], "philosophy": [1.0], "physics": [1.0, 1.0, 0.0]},
            categories,
        ),
        "one subject per category": (
            {
                "law": [1.0, 0.0, 0.0],
                "physics": [1.0, 1.0],
                "economics": [0.0, 1.0, 1.0, 1.0],
                "nutrition": [1.0],
            },
            categories,
        ),
        "one category": ({"physics": [1.0, 0.0], "biology": [1.0, 1.0, 1.0, 0.0]}, categories),
        "equal subjects, unequal categories": (
            {"law": [1.0, 1.0], "philosophy": [0.0, 0.0], "physics": [1.0, 1.0, 1.0, 0.0]},
            categories,
        ),
    }
    return check_function(
        fn,
        category_average_reference,
        cases,
        CATEGORY_ARGS,
        mistakes=CATEGORY_MISTAKES,
        atol=1e-12,
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
