"""Zero-shot chain-of-thought prompts and answer extraction, in the manner of OpenAI's simple-evals.

simple-evals (the library OpenAI published with its models' benchmark numbers) asks a chat model one
question with no examples, tells it to think step by step, and to end with a line ``Answer: X``; a
regular expression then reads ``X`` [openai_simple_evals]. Our templates follow that format in our
own words; our extraction reads only the *last* ``Answer:`` line and refuses to guess: several
option letters on it, or no such line, give ``None``. Numbers may carry a sign, thousands
separators (``1,234.5``) and units (``km``, ``$``).

For comparison, :func:`simple_evals_choice` and :func:`simple_evals_number` re-implement what
simple-evals itself does (MMLU's English pattern after its markdown clean-up; MGSM's number parser):
they differ from ours on some outputs, and the chapter lists where.

Reference implementation: openai/simple-evals at ee3b0318d8d1d9d72755a4120879be65f7c07e9e,
common.py (QUERY_TEMPLATE_MULTICHOICE, ANSWER_PATTERN_MULTICHOICE, MULTILINGUAL_ANSWER_PATTERN_TEMPLATE,
normalize_response), mmlu_eval.py (the extraction loop), mgsm_eval.py::parse_answer, math_eval.py
(QUERY_TEMPLATE). References: openai_simple_evals.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

MULTIPLE_CHOICE_TEMPLATE = (
    "Answer the multiple-choice question below. Think it through step by step first. The last "
    "line of your reply must read 'Answer: X' (without quotes), where X is one of {letters}.\n\n"
    "{question}\n\n{options}"
)
NUMBER_TEMPLATE = (
    "Solve the problem below, reasoning step by step. The last line of your reply must read "
    "'Answer: N' (without quotes), where N is the final number alone.\n\n{question}"
)

# "Answer:" (any case, optional markdown bold, "Final answer:" too) and the rest of its line
_ANSWER_LINE = re.compile(r"(?i)\banswer[ \t]*\**[ \t]*:[ \t]*\**([^\n]*)")
# a number: sign (ASCII or Unicode minus), digits with well-formed thousands groups, decimals
_NUMBER = re.compile(r"(?<![\w.,])([-\u2212]?)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\d,]*\d)")


def format_multiple_choice(question: str, options: Sequence[str]) -> str:
    """The zero-shot CoT prompt for a question with 2 to 26 options, lettered ``A)``, ``B)``, ...

    Raises:
        ValueError: if there are fewer than 2 or more than 26 options.
    """
    if not 2 <= len(options) <= 26:
        raise ValueError(f"options has {len(options)} entries; a question needs 2 to 26")
    letters = string.ascii_uppercase[: len(options)]
    lines = "\n".join(f"{letter}) {text}" for letter, text in zip(letters, options, strict=True))
    return MULTIPLE_CHOICE_TEMPLATE.format(letters=letters, question=question, options=lines)


def format_number_question(question: str) -> str:
    """The zero-shot CoT prompt for a question whose answer is a number."""
    return NUMBER_TEMPLATE.format(question=question)


def answer_line(text: str) -> str | None:
    """What follows the *last* ``Answer:`` in ``text``, to the end of its line (markdown ``**`` and
    ``$`` removed, stripped), or ``None`` when the text has no ``Answer:``."""
    matches = _ANSWER_LINE.findall(text)
    if not matches:
        return None
    return matches[-1].replace("**", "").replace("$", "").strip()


def extract_choice(text: str, letters: str = "ABCD") -> str | None:
    """The option letter on the last ``Answer:`` line, or ``None``.

    A letter counts when it stands alone (``B``, ``(B)``, ``B)``, ``B.``, ``**B**``), upper case
    only, so the article in "Answer: a guess" is not option A. ``None`` when there is no answer
    line, no letter on it, or more than one distinct letter ("A or C": the model did not choose).

    Raises:
        ValueError: if ``letters`` is empty or not upper-case ASCII letters.
    """
    if not letters or not all(c in string.ascii_uppercase for c in letters):
        raise ValueError(f"letters ({letters!r}) must be upper-case ASCII letters, e.g. 'ABCD'")
    line = answer_line(text)
    if line is None:
        return None
    found = set(re.findall(rf"(?<![A-Za-z])([{letters}])(?![A-Za-z])", line))
    return found.pop() if len(found) == 1 else None


def extract_number(text: str) -> float | None:
    """The first number on the last ``Answer:`` line, as a float, or ``None``.

    Reads ``-12``, ``\u221212`` (Unicode minus), ``1,234.5`` (a comma is a thousands separator only
    before groups of exactly three digits; ``12,34`` is no number: a decimal comma or a slip),
    ``$3.50``, ``42 km``. The first number, because units and
    remarks follow the answer ("Answer: 12 boxes (3 per shelf)").
    """
    line = answer_line(text)
    if line is None:
        return None
    match = _NUMBER.search(line)
    if match is None:
        return None
    sign, whole, decimals = match.groups()
    value = float(whole.replace(",", "") + (decimals or ""))
    return -value if sign else value


# ---------------------------------------------------------------------------- simple-evals' own reading

# normalize_response's deletions, in its order (common.py)
_SIMPLE_EVALS_DELETIONS = ("**", "$\\boxed{", "}$", "\\$", "$\\text{", "$", "\\mathrm{", "\\{",
                           "\\text", "\\(", "\\mathbf{", "{", "\\boxed")  # fmt: skip


def simple_evals_choice(text: str) -> str | None:
    """simple-evals' MMLU reading (English): clean the markdown, then the *first* match of
    ``Answer\\s*:[ \\t]*([A-D])``, case-insensitive, letter returned as written; ``None`` if none."""
    for old in _SIMPLE_EVALS_DELETIONS:
        text = text.replace(old, "")
    match = re.search(r"(?i)Answer\s*:[ \t]*([A-D])", text)
    return match.group(1) if match else None


def simple_evals_number(text: str, prefix: str = "Answer") -> float | None:
    """simple-evals' MGSM reading: the text after the last ``prefix``, commas deleted, the *last*
    run of digits (with an optional decimal part); no sign. ``None`` if there is none."""
    if prefix not in text:
        return None
    tail = text.split(prefix)[-1].replace(",", "")
    numbers = re.findall(r"\d+\.?\d*", tail)
    return float(numbers[-1].rstrip(".")) if numbers else None


# ---------------------------------------------------------------------------- outputs written for the book

BOOK_CHOICES: list[tuple[str, str, str | None]] = [
    # (name, a model's output, the letter a careful reader takes from it)
    ("plain", "Water boils at 100 C at sea level, option B.\nAnswer: B", "B"),
    ("in parentheses", "The capital is Paris.\nAnswer: (B)", "B"),
    ("bold, with the option text", "So it must be Canberra.\n**Answer:** C) Canberra", "C"),
    ("a draft answer, then a final one",
     "Answer: A looks tempting, but it ignores friction.\nRechecking...\nAnswer: D", "D"),
    ("two letters", "Both could be argued.\nAnswer: A or C", None),
    ("lower case word after the colon", "Answer: because of the heat, C", "C"),
    ("no answer line", "I think the best option is B.", None),
]  # fmt: skip

BOOK_NUMBERS: list[tuple[str, str, float | None]] = [
    ("plain", "3 boxes of 4 is 12.\nAnswer: 12", 12.0),
    ("thousands and a unit", "Adding both legs: 1,000 + 234.5.\nAnswer: 1,234.5 km", 1234.5),
    ("negative", "It falls 8 degrees from 3.\nAnswer: -5", -5.0),
    ("Unicode minus", "Answer: \u22125", -5.0),
    ("dollars", "Each costs $2, so 7 cost $14.\nAnswer: $14", 14.0),
    ("a remark after the answer", "Answer: 12 boxes (3 per shelf)", 12.0),
    ("numbers in the reasoning only", "After 3 steps of 2 we reach 6.", None),
    ("words, not digits", "Answer: twelve", None),
]  # fmt: skip
