"""MMLU three ways: the prompt and scoring of the original code, of HELM and of the harness of
January 2023, as the Hugging Face blog post laid them out; and the two ways to average 57 subjects.

- ``original`` (hendrycks/test): "about  {subject}" (a double space), the question, ``A. ...``,
  ``Answer:``; the prediction is the letter among A-D with the highest next-token probability.
- ``helm``: the same header with one space and a blank line, ``Question: `` before the question;
  the model *generates* (greedy) and must produce the right letter: any other token is wrong.
- ``harness2023``: no header, ``Question:``, a ``Choices:`` line; each full answer ``" A. text"``
  is scored by its summed log-likelihood.
- ``harness`` (lm-eval 0.4.13, what :mod:`demos.eval.fewshot` reproduces): the original's prompt
  with one space, the letters scored as continuations ``" A"`` ... ``" D"``.

References: fourrier2023mmlu, hendrycks2021mmlu, gao2023harness.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import torch

from demos.eval.fewshot import MMLU_LETTERS, fewshot_prompt, mmlu_description, mmlu_text
from demos.eval.metrics import check_multiple_choice, multiple_choice_scores
from demos.eval.scoring import encode, loglikelihood

STYLES = ("original", "helm", "harness2023", "harness")
Question = tuple[str, Sequence[str], int]  # (question, four choices, gold index)


def _header(style: str, subject: str) -> str:
    words = subject.split("_")
    if style == "original":  # format_subject puts a space before every word: "about  us ..."
        subject_text = "".join(" " + w for w in words)
        return (
            f"The following are multiple choice questions (with answers) about {subject_text}.\n\n"
        )
    if style in ("helm", "harness"):
        return mmlu_description(subject)
    return ""


def _body(style: str, question: str, choices: Sequence[str]) -> str:
    options = "\n".join(f"{L}. {c}" for L, c in zip(MMLU_LETTERS, choices, strict=True))
    if style == "original":
        return f"{question}\n{options}\nAnswer:"
    if style == "helm":
        return f"Question: {question}\n{options}\nAnswer:"
    if style == "harness2023":
        return f"Question: {question}\nChoices:\n{options}\nAnswer:"
    return mmlu_text(question, choices)


def _answer(style: str, choices: Sequence[str], gold: int) -> str:
    letter = MMLU_LETTERS[gold]
    return f"{letter}. {choices[gold]}" if style == "harness2023" else letter


def mmlu_prompt(style: str, subject: str, question: Question, shots: Sequence[Question]) -> str:
    """The k-shot prompt of ``style`` for ``question``; shots are solved ``(q, choices, gold)``."""
    if style not in STYLES:
        raise ValueError(f"style ({style!r}) must be one of {STYLES}")
    for q, choices, gold in (question, *shots):
        check_multiple_choice([0.0] * len(choices), choices, gold)
        if len(choices) != 4:
            raise ValueError(f"an MMLU question has 4 choices, got {len(choices)} for {q!r}")
    pairs = [(_body(style, q, c), _answer(style, c, g)) for q, c, g in shots]
    return fewshot_prompt(pairs, _body(style, *question[:2]), description=_header(style, subject))


@torch.no_grad()
def mmlu_predict(
    model: Any,
    tokenizer: Any,
    style: str,
    subject: str,
    question: Question,
    shots: Sequence[Question],
) -> int:
    """The choice ``style`` picks for ``question`` (-1 when HELM's generated token is no letter)."""
    prompt = mmlu_prompt(style, subject, question, shots)
    choices = question[1]
    if style in ("harness2023", "harness"):
        conts = [
            f" {L}. {c}" if style == "harness2023" else f" {L}"
            for L, c in zip("ABCD", choices, strict=True)
        ]
        requests = [(prompt, c) for c in conts]
        lls = [ll for ll, _ in loglikelihood(model, tokenizer, requests, batch_size=4)]
        return multiple_choice_scores(lls, conts, 0).pred
    ids = torch.tensor([encode(tokenizer, prompt)])
    out = model(ids)
    logits = (out if isinstance(out, torch.Tensor) else out.logits)[0, -1]  # (v,)
    letter_ids = [encode(tokenizer, " " + L, add_bos_token=False)[0] for L in MMLU_LETTERS]
    if style == "original":  # argmax over the four letters only
        return int(torch.stack([logits[i] for i in letter_ids]).argmax())
    greedy = int(logits.argmax())  # helm: the generated token must be a letter
    return letter_ids.index(greedy) if greedy in letter_ids else -1


def macro_average(per_subject: Mapping[str, Sequence[float]]) -> float:
    """Mean of the subjects' accuracies: each subject counts once (the Open LLM Leaderboard v1)."""
    _check_subjects(per_subject)
    return sum(sum(v) / len(v) for v in per_subject.values()) / len(per_subject)


def micro_average(per_subject: Mapping[str, Sequence[float]]) -> float:
    """Mean over all questions: a subject counts by its size (lm-eval's ``weight_by_size``)."""
    _check_subjects(per_subject)
    return sum(sum(v) for v in per_subject.values()) / sum(len(v) for v in per_subject.values())


def _check_subjects(per_subject: Mapping[str, Sequence[float]]) -> None:
    if not per_subject:
        raise ValueError("no subjects to average")
    for subject, scores in per_subject.items():
        if len(scores) == 0:
            raise ValueError(f"subject {subject!r} has no scored questions")
        for i, score in enumerate(scores):  # a score is one question's accuracy: 0, 1 or between
            if not isinstance(score, Real) or not 0 <= score <= 1:  # NaN fails both comparisons
                raise ValueError(
                    f"subject {subject!r}: score {i} ({score!r}) must be a number in [0, 1] "
                    "(one question's accuracy)"
                )
