"""Winogrande's partial scoring: the two options change the *context*, and the shared rest of the
sentence is the continuation scored after each.

A Winogrande sentence has a blank ``_``; option 1 or option 2 fills it. Scoring the whole sentence
would compare two sentences that differ in length and wording from the start; instead the harness
puts each option into the context (everything up to and including the blank) and scores only what
comes after the blank, the same tokens in both cases.

References: sakaguchi2020winogrande, gao2023harness.

Reference implementation: lm-eval==0.4.13, ``lm_eval/tasks/winogrande/preprocess_winogrande.py``
and ``lm_eval/api/task.py::ConfigurableTask`` (``multiple_input``: one context per choice).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral


def winogrande_split(sentence: str, option: str) -> tuple[str, str]:
    """``(context, continuation)``: the sentence up to the blank with ``option`` in it, and the rest
    after the blank, stripped (the harness's ``doc_to_choice`` and ``doc_to_target``).

    Raises:
        ValueError: a sentence without exactly one blank ``_``, an empty option, or nothing
            after the blank to score.
    """
    if sentence.count("_") != 1:
        raise ValueError(f"a Winogrande sentence has exactly one blank '_', got {sentence!r}")
    if not option:
        raise ValueError("option is empty: there is nothing to fill the blank with")
    before, after = sentence.split("_")
    if not after.strip():
        raise ValueError(f"nothing follows the blank in {sentence!r}: no continuation to score")
    return before + option, after.strip()


def winogrande_requests(
    sentence: str, options: Sequence[str], shots: Sequence[tuple[str, str, str, int]] = ()
) -> list[tuple[str, str]]:
    """One ``(context, " " + rest)`` request per option, after ``shots`` solved examples.

    Args:
        sentence: the sentence with its blank.
        options: the two fillers.
        shots: solved examples ``(sentence, option1, option2, gold index)``, each written out with
            its right option and a blank line after it.

    Raises:
        ValueError: a shot's gold index is not 0 or 1; a sentence without exactly one blank, an
            empty option or nothing after the blank (:func:`winogrande_split`).
    """
    prefix = ""
    for shot_sentence, option1, option2, gold in shots:
        if isinstance(gold, bool) or not isinstance(gold, Integral) or gold not in (0, 1):
            raise ValueError(  # -1 would pick option2 by Python's negative indexing
                f"a shot's gold index ({gold!r}) must be 0 (option1) or 1 (option2)"
            )
        context, rest = winogrande_split(shot_sentence, (option1, option2)[gold])
        prefix += f"{context} {rest}\n\n"
    pairs = [winogrande_split(sentence, option) for option in options]
    return [(prefix + context, " " + rest) for context, rest in pairs]
