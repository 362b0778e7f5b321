"""References and known mistakes for the GSM8K chapter's exercises: flexible-extract accuracy as the harness scores it,
and "any of the first k samples is right" (coverage), the cousin of maj@k."""

from __future__ import annotations

from collections.abc import Callable

from demos.eval.gsm8k import (
    FLEXIBLE_PATTERN,
    exact_match,
    extract,
    extract_flexible,
    extract_strict,
)
from demos.exercises.core import Check, Mistake, check_function


def flexible_accuracy(outputs: list[str], answers: list[str]) -> float:
    """The reference: the mean exact match of flexible-extract's answer against each solution."""
    hits = [exact_match(extract_flexible(o), a) for o, a in zip(outputs, answers, strict=True)]
    return sum(hits) / len(hits)


def _first_number(outputs, answers):
    hits = [
        exact_match(extract(o, FLEXIBLE_PATTERN, group_select=0), a)
        for o, a in zip(outputs, answers, strict=True)
    ]
    return sum(hits) / len(hits)


def _strict(outputs, answers):
    hits = [exact_match(extract_strict(o), a) for o, a in zip(outputs, answers, strict=True)]
    return sum(hits) / len(hits)


def _no_normalisation(outputs, answers):
    hits = [
        extract_flexible(o) == a.split("#### ")[-1] for o, a in zip(outputs, answers, strict=True)
    ]
    return sum(hits) / len(hits)


OUTPUTS = [
    "So 6 * 7 = 42. The answer is 42.",
    "It costs 4 * 250 = 1,000 dollars.\n#### $1,000",
    "Check: 30 / 5 = 6 per team, so the club has 30.",
    "Half of 18 is 9; she keeps 9",
    "I am not sure.",
]
ANSWERS = ["6 * 7 = 42\n#### 42", "#### 1,000", "#### 30", "18 / 2 = 9\n#### 9", "#### 5"]


def check_flexible_accuracy(fn: Callable[[list[str], list[str]], float]) -> Check:
    """Check ``flexible_accuracy(outputs, answers) -> float``: the harness's flexible-extract
    answer of each output, compared by exact match (commas, $ and a trailing period removed) with
    the reference solution's ``#### N``; the mean over items."""
    cases = {
        "five outputs": (OUTPUTS, ANSWERS),
        "the first two": (OUTPUTS[:2], ANSWERS[:2]),
        "a negative answer": (["5 - 8 = -3, so -3."], ["#### -3"]),
        "one number, a trailing period": (["She has 30."], ["#### 30"]),
        "the last three": (OUTPUTS[2:], ANSWERS[2:]),
    }
    mistakes = [
        Mistake(_first_number, "the first number was taken; flexible-extract takes the last."),
        Mistake(_strict, "only '#### N' was read: that is strict-match, not flexible-extract."),
        Mistake(
            _no_normalisation,
            "the answers were compared as written; exact_match first removes commas, $ signs, "
            "everything up to '#### ' and a trailing period (and ignores case).",
        ),
    ]
    return check_function(
        fn, flexible_accuracy, cases, ("outputs", "answers"), mistakes=mistakes, atol=1e-12
    )


def any_of_k(samples: list[list[str]], answers: list[str], k: int) -> float:
    """The reference: the fraction of items where at least one of the first k samples, read by
    strict-match, is right."""
    hits = [
        any(exact_match(extract_strict(s), a) for s in item_samples[:k])
        for item_samples, a in zip(samples, answers, strict=True)
    ]
    return sum(hits) / len(hits)


def _all_samples(samples, answers, k):
    return any_of_k(samples, answers, max(len(s) for s in samples))


def _last_k(samples, answers, k):
    return any_of_k([s[-k:] for s in samples], answers, k)


def _flexible(samples, answers, k):
    hits = [
        any(exact_match(extract_flexible(s), a) for s in item_samples[:k])
        for item_samples, a in zip(samples, answers, strict=True)
    ]
    return sum(hits) / len(hits)


def _majority(samples, answers, k):
    from demos.eval.gsm8k import maj_at_k

    hits = [exact_match(maj_at_k(s, k), a) for s, a in zip(samples, answers, strict=True)]
    return sum(hits) / len(hits)


SAMPLES = [
    ["#### 41", "#### 42", "#### 41", "#### 42"],
    ["#### 7", "#### 7", "#### 7", "#### 9"],
    ["no idea", "#### 1,200", "#### 1200", "#### 12"],
    ["#### 3", "#### 4", "#### 5", "#### 30"],
]
SAMPLE_ANSWERS = ["#### 42", "#### 9", "#### 1,200", "#### 30"]
# Samples where strict-match and flexible-extract disagree: the right number written in words
# ("The answer is 42.") counts only for flexible-extract, and so does nothing after "#### N".
# Strict-match solves 1 of 3 items here, flexible-extract all 3: reading each sample with
# flexible-extract cannot pass (every sample above is written "#### N", where the two agree).
WORDED_SAMPLES = [
    ["The answer is 42.", "#### 41"],
    ["So she pays $12.", "#### 10"],
    ["#### 7", "#### 7"],
]
WORDED_ANSWERS = ["#### 42", "#### 12", "#### 7"]


def check_any_of_k(fn: Callable[[list[list[str]], list[str], int], float]) -> Check:
    """Check ``any_of_k(samples, answers, k) -> float``: per item, whether any of the first ``k``
    samples' strict-match answers is right; the mean over items (coverage, not maj@k)."""
    cases = {
        "k = 1": (SAMPLES, SAMPLE_ANSWERS, 1),
        "k = 2": (SAMPLES, SAMPLE_ANSWERS, 2),
        "k = 3": (SAMPLES, SAMPLE_ANSWERS, 3),
        "k = 4": (SAMPLES, SAMPLE_ANSWERS, 4),
        "answers in words, k = 2": (WORDED_SAMPLES, WORDED_ANSWERS, 2),
    }
    mistakes = [
        Mistake(_all_samples, "every sample was used; only the first k count."),
        Mistake(_last_k, "the last k samples were used; take the first k, as take_first_k does."),
        Mistake(_majority, "that is maj@k (the most frequent answer); any right answer counts."),
        Mistake(
            _flexible,
            "each sample was read with flexible-extract (the last number anywhere in it); this "
            "exercise reads strict-match: only the number after '#### ' counts.",
        ),
    ]
    return check_function(
        fn, any_of_k, cases, ("samples", "answers", "k"), mistakes=mistakes, atol=1e-12
    )
