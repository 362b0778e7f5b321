"""Checkers for the Orca 2 chapter's exercises: the student's ChatML text made from the teacher's
stored text (the instruction erased), the labels of one example (the answer only), and, as a
transfer, labels of examples packed into one fixed-length row as Orca 2 packs its training data
[azureml2023orca2card].

Over ~300 lines on purpose: one chapter's checkers, one module per chapter as the layout rule has it
(``demos/exercises/<chapter>.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from demos.exercises.core import (
    Check,
    Recorded,
    check_recorded,
    isolating_case,
    untouched_template,
)
from demos.exercises.describe import counted, describe, describe_error
from demos.exercises.recorded import recorded
from demos.training.prompt_erasure import (
    IM_END,
    IM_START,
)


def _text() -> Recorded:
    """The student-text exercise's recorded cases, results and known mistakes."""
    return recorded(__name__, "check_student_text")


def _text_case(data: Recorded, case: str) -> str:
    return f"In case '{case}' (teacher_text = {data.cases[case][0][:60]!r}...)"


def _text_mismatch(fn: Callable[[str], str], data: Recorded, case: str) -> str:
    """How the answer's str differs from the student's text on ``case``."""
    got, expected = fn(*data.cases[case]), data.expected[case]
    return (
        f"{_text_case(data, case)}: got {describe(got)}, not the student's text; "
        f"{_first_difference(got, expected)}."
    )


def _first_difference(got: str, expected: str) -> str:
    i = next((k for k, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), None)
    if i is None:
        i = min(len(got), len(expected))
    return (
        f"they first differ at character {i}: expected ...{expected[max(0, i - 20) : i + 30]!r}, "
        f"got ...{got[max(0, i - 20) : i + 30]!r}"
    )


def _same_as(fn: Callable[[str], str], data: Recorded, results: dict) -> bool:
    """Whether ``fn`` returns what a known mistake returned (``results``) on every case."""
    try:
        return all(fn(*args) == results[case] for case, args in data.cases.items())
    except Exception:
        return False


def _text_differs(data: Recorded) -> Callable[[dict, str], bool]:
    """``differs(results, case)``: whether recorded results differ from the reference's on a case
    (a :class:`~demos.exercises.core.Raised` differs from every str)."""
    return lambda results, case: results[case] != data.expected[case]


def check_student_text(fn: Callable[[str], str]) -> Check:
    """Check ``fn(teacher_text)``: the student's ChatML text from the teacher's, the system turn's
    instruction replaced by ``GENERIC_SYSTEM`` (``demos.training.prompt_erasure``), the rest as is."""
    if not callable(fn):
        return Check(False, f"Expected a function, got {describe(fn)}.")
    template = untouched_template(fn)
    data = _text()
    try:
        for case, args in data.cases.items():
            expected = data.expected[case]
            try:
                got = fn(*args)
            except Exception as error:  # the learner's error is reported, never raised
                if template is not None:
                    break
                return Check(False, f"In case '{case}' it {describe_error(error)}")
            if isinstance(got, str) and got == expected:
                continue
            if template is not None:
                break
            if not isinstance(got, str):
                return Check(
                    False,
                    f"{_text_case(data, case)}: expected a str of ChatML text, got {describe(got)}.",
                )
            by_name = {name: name for name in data.cases}  # recorded results are read by case
            for mistake in data.mistakes:
                if _same_as(fn, data, mistake.implementation):  # shown where only it shows
                    differs = _text_differs(data)
                    case = isolating_case(mistake, data.mistakes, by_name, differs) or case
                    why = mistake.why
                    return Check(False, f"{_text_mismatch(fn, data, case)} Likely cause: {why}")
            return Check(False, _text_mismatch(fn, data, case))
        else:
            return Check(
                True,
                f"Matches the reference on {counted(len(data.cases), 'case')}: "
                f"{'; '.join(data.cases)}.",
            )
    except Exception as error:  # a checker never raises on a learner's answer
        return Check(False, f"The answer could not be compared: {type(error).__name__}: {error}")
    return Check(
        False,
        f"`{getattr(fn, '__name__', 'the function')}` is still the template (`{template}`). Replace "
        "`# your code here` and the placeholder with your code, then run the cell again. It should "
        f"return a str: the ChatML text, {IM_START}system ... {IM_END} and so on, with only the "
        "system turn's content changed.",
        attempted=False,
    )


INT64_WHY = (
    " Labels must be int64 (torch.long): PyTorch's cross-entropy raises \"expected target dtype "
    'to be Long" on int32 labels, and input_ids stay int64 as a tokenizer returns them. Build '
    "both from the int64 inputs (torch.cat and torch.full_like keep their dtype) or cast with "
    ".long()."
)


def _int64_required(check: Check) -> Check:
    """``check`` with the reason for int64 added when the answer came back in another dtype."""
    if not check.ok and "asks for torch.int64" in check.message:
        return Check(False, check.message + INT64_WHY, check.attempted)
    return check


def check_answer_labels(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Check:
    """Check ``fn(prompt_ids, answer_ids)`` -> ``(input_ids, labels)``: 1-D int64 tensors."""
    return _int64_required(
        check_recorded(
            fn,
            recorded(__name__, "check_answer_labels"),
            ("prompt_ids", "answer_ids"),
            names=("input_ids", "labels"),
            exact_dtype=True,
        )
    )


def check_packed_labels(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Check:
    """Check ``fn(examples, max_len, pad_id)`` -> ``(input_ids, labels)``, both int64 ``(max_len,)``;
    ``examples`` is a list of ``(prompt_ids, answer_ids)`` whose total length is at most max_len."""
    return _int64_required(
        check_recorded(
            fn,
            recorded(__name__, "check_packed_labels"),
            ("examples", "max_len", "pad_id"),
            names=("input_ids", "labels"),
            exact_dtype=True,
        )
    )
