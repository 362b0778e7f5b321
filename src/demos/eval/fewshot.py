"""Few-shot prompts as the Open LLM Leaderboard (v1) built them with lm-evaluation-harness.

A k-shot prompt is an optional description, then k solved examples, then the question; each example
is ``doc_to_text + target_delimiter + target``, joined by ``fewshot_delimiter``. The request then
scores ``target_delimiter + choice`` after the prompt for each choice.

References: hf2024leaderboardv1 (the six tasks and their shots), hf_tinyvicuna_card (the metric
and split the leaderboard reported for each), gao2023harness.

Reference implementation: lm-eval==0.4.13, ``lm_eval/api/task.py::ConfigurableTask.fewshot_context``
(``lm_eval/api/samplers.py::ContextSampler.get_context``), task configs
``lm_eval/tasks/{arc,hellaswag,mmlu/default,truthfulqa,winogrande,gsm8k}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LeaderboardTask:
    """One row of the Open LLM Leaderboard v1: what was run and what was reported."""

    benchmark: str  # the name on the leaderboard
    harness_task: str  # lm-eval's task name today (0.4.13)
    num_fewshot: int  # shots prepended to each question
    metric: str  # the number shown
    split: str  # the split scored


# The leaderboard's About page lists the six tasks and their shots [hf2024leaderboardv1]; the
# metric and split of each are those of the results the leaderboard wrote into model cards
# (model-index of e.g. Jiayi-Pan/Tiny-Vicuna-1B) [hf_tinyvicuna_card].
LEADERBOARD_TASKS = (
    LeaderboardTask("AI2 Reasoning Challenge", "arc_challenge", 25, "acc_norm", "test"),
    LeaderboardTask("HellaSwag", "hellaswag", 10, "acc_norm", "validation"),
    LeaderboardTask("MMLU", "mmlu", 5, "acc", "test"),
    LeaderboardTask("TruthfulQA", "truthfulqa_mc2", 0, "mc2", "validation"),
    LeaderboardTask("Winogrande", "winogrande", 5, "acc", "validation"),
    LeaderboardTask("GSM8K", "gsm8k", 5, "acc", "test"),
)
LEADERBOARD_SHOTS = {task.harness_task: task.num_fewshot for task in LEADERBOARD_TASKS}


def fewshot_prompt(
    shots: Sequence[tuple[str, str]],
    query: str,
    *,
    description: str = "",
    target_delimiter: str = " ",
    fewshot_delimiter: str = "\n\n",
) -> str:
    """``description`` + each solved example + the question, as the harness joins them.

    Args:
        shots: ``(text, target)`` pairs: an example's prompt (``doc_to_text``) and its answer text.
        query: the question's prompt (``doc_to_text``), ending where the answer would start.
        description: a task preamble (MMLU's "The following are multiple choice questions ...").
        target_delimiter: between an example's text and its answer (a space).
        fewshot_delimiter: after each example (a blank line).

    Returns:
        The context string; a choice is scored as the continuation ``target_delimiter + choice``.

    Raises:
        ValueError: a shot that is not a pair of strings, or a query that is not a string.
    """
    if not isinstance(query, str):
        raise ValueError(f"query must be a string, got {type(query).__name__}")
    parts = []
    for i, shot in enumerate(shots):
        if not (isinstance(shot, tuple | list) and len(shot) == 2 and all(map(_is_str, shot))):
            raise ValueError(f"shot {i} must be a (text, target) pair of strings, got {shot!r}")
        parts.append(shot[0] + target_delimiter + shot[1] + fewshot_delimiter)
    return description + "".join(parts) + query


def _is_str(x: object) -> bool:
    return isinstance(x, str)


# ------------------------------------------------------------------ the tasks' prompt formats


def arc_text(question: str) -> str:
    """ARC's ``doc_to_text``: ``"Question: {question}\\nAnswer:"``; the choices are the answer texts."""
    return f"Question: {question}\nAnswer:"


def hellaswag_preprocess(text: str) -> str:
    """HellaSwag's clean-up of WikiHow artefacts: strip, ``" [title]"`` -> ``". "``, drop ``[...]``,
    collapse a double space (lm_eval/tasks/hellaswag/utils.py::preprocess)."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def hellaswag_text(activity_label: str, ctx_a: str, ctx_b: str) -> str:
    """HellaSwag's query: ``"{activity}: {ctx_a} {Ctx_b}"``, cleaned; endings are cleaned alike."""
    return hellaswag_preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize())


MMLU_LETTERS = ("A", "B", "C", "D")


def mmlu_description(subject: str) -> str:
    """MMLU's preamble in the harness: ``"The following are multiple choice questions (with
    answers) about {subject with spaces}.\\n\\n"``."""
    return (
        "The following are multiple choice questions (with answers) about "
        f"{subject.replace('_', ' ')}.\n\n"
    )


def mmlu_text(question: str, choices: Sequence[str]) -> str:
    """MMLU's ``doc_to_text`` in the harness: the question, ``A. ...`` to ``D. ...``, ``Answer:``;
    the choices scored are the letters."""
    if len(choices) != 4:
        raise ValueError(f"an MMLU question has 4 choices, got {len(choices)}")
    lines = [question.strip()] + [f"{L}. {c}" for L, c in zip(MMLU_LETTERS, choices, strict=True)]
    return "\n".join(lines) + "\nAnswer:"
