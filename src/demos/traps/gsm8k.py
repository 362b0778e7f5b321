"""GSM8K's traps: two one-line slips in re-implementing the harness's scoring, each measured
against lm-evaluation-harness 0.4.13's own gsm8k task on the chapter's illustrative outputs."""

from __future__ import annotations

import re

from demos.traps import Measured, Trap


def _against_harness(extractor, compare, filter_name: str) -> float:
    """|accuracy - the harness's accuracy| over the illustrative items, for one filter."""
    from demos.eval.gsm8k import harness_gsm8k
    from demos.toys.gsm8k import ITEMS, OUTPUTS, SHOTS

    theirs = harness_gsm8k(ITEMS, OUTPUTS, SHOTS)[filter_name]
    ours = [compare(extractor(o), item["answer"]) for o, item in zip(OUTPUTS, ITEMS, strict=True)]
    return abs(sum(ours) / len(ours) - sum(theirs) / len(theirs))


def _first_number() -> Measured:
    from demos.eval.gsm8k import FLEXIBLE_PATTERN, exact_match, extract, extract_flexible

    def first(text: str) -> str:
        return extract(text, FLEXIBLE_PATTERN, group_select=0)

    return Measured(
        right_error=_against_harness(extract_flexible, exact_match, "flexible-extract"),
        wrong_error=_against_harness(first, exact_match, "flexible-extract"),
        tolerance=1e-9,
        quantity="flexible-extract accuracy on the chapter's 10 illustrative outputs, against "
        "lm-eval 0.4.13's gsm8k task",
    )


def _raw_compare(prediction: str, reference: str) -> bool:
    """exact match without the yaml's regexes_to_ignore: only the '#### ' prefix is cut."""
    return prediction == re.sub(r"(?s).*#### ", "", reference)


def _no_normalisation() -> Measured:
    from demos.eval.gsm8k import exact_match, extract_strict

    return Measured(
        right_error=_against_harness(extract_strict, exact_match, "strict-match"),
        wrong_error=_against_harness(extract_strict, _raw_compare, "strict-match"),
        tolerance=1e-9,
        quantity="strict-match accuracy on the chapter's 10 illustrative outputs, against "
        "lm-eval 0.4.13's gsm8k task",
    )


TRAPS = [
    Trap(
        chapter="gsm8k",
        title="flexible-extract taking the first number instead of the last",
        wrong="extract(text, FLEXIBLE_PATTERN, group_select=0)",
        right="extract(text, FLEXIBLE_PATTERN, group_select=-1)",
        shows="every output that shows its working before the answer",
        measure=_first_number,
    ),
    Trap(
        chapter="gsm8k",
        title="exact match without removing commas, $ and the trailing period",
        wrong="prediction == reference.split('#### ')[-1]",
        right="normalize(prediction) == normalize(reference)",
        shows="answers written 1,250 or 72. against a reference written 1,250 or 72",
        measure=_no_normalisation,
    ),
]
