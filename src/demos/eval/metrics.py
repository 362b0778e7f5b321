"""Multiple-choice metrics: ``acc``, ``acc_norm`` and ``acc_bytes``, as lm-evaluation-harness computes them.

Each choice of a question is scored as a continuation of the same prompt (:mod:`demos.eval.scoring`);
the prediction is the choice with the highest log-likelihood (``acc``), or the highest
log-likelihood per character of the choice (``acc_norm``), or per UTF-8 byte (``acc_bytes``). Ties go
to the first choice, as ``numpy.argmax`` breaks them.

Note on ``acc_norm``: lm-eval 0.4.13 divides by ``len(choice)``, the number of *characters* of the
choice text (without the leading space); bytes are ``acc_bytes``. The two agree on ASCII text.

References: gao2023harness.

Reference implementation: lm-eval==0.4.13, ``lm_eval/api/task.py::ConfigurableTask.process_results``
(``output_type == "multiple_choice"``), aggregation ``lm_eval/api/metrics.py::mean``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real


@dataclass(frozen=True)
class MultipleChoiceScores:
    """One question's predictions and metrics (each metric 1.0 or 0.0)."""

    pred: int  # argmax of the log-likelihoods
    pred_norm: int  # argmax of log-likelihood / characters
    pred_bytes: int  # argmax of log-likelihood / UTF-8 bytes
    acc: float
    acc_norm: float
    acc_bytes: float


def check_multiple_choice(
    loglikelihoods: Sequence[float], choices: Sequence[str], gold: int
) -> None:
    """``ValueError`` unless there is at least one choice, each a non-empty string, one finite-or--inf
    log-likelihood <= 0 per choice, and ``gold`` an integer index into the choices."""
    if isinstance(choices, str) or not isinstance(choices, Sequence) or len(choices) == 0:
        raise ValueError(f"choices must be a non-empty list of strings, got {choices!r}")
    for i, choice in enumerate(choices):
        if not isinstance(choice, str) or choice == "":
            raise ValueError(
                f"choice {i} ({choice!r}) must be a non-empty string: an empty continuation has "
                "no tokens to score and no length to normalise by"
            )
    if len(loglikelihoods) != len(choices):
        raise ValueError(
            f"got {len(loglikelihoods)} log-likelihoods for {len(choices)} choices: one per choice"
        )
    for i, ll in enumerate(loglikelihoods):
        if isinstance(ll, bool) or not isinstance(ll, Real) or math.isnan(ll) or ll > 0:
            raise ValueError(f"log-likelihood {i} ({ll!r}) must be a number <= 0 (not NaN)")
    if isinstance(gold, bool) or not isinstance(gold, Integral):
        raise ValueError(f"gold ({gold!r}) must be an integer index into the choices")
    if not 0 <= gold < len(choices):
        raise ValueError(f"gold index {gold} is out of range for {len(choices)} choices")


def _argmax(values: Sequence[float]) -> int:
    """Index of the largest value, the first on a tie (``numpy.argmax``)."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


def multiple_choice_scores(
    loglikelihoods: Sequence[float], choices: Sequence[str], gold: int
) -> MultipleChoiceScores:
    """``acc``, ``acc_norm`` and ``acc_bytes`` of one question, from its choices' log-likelihoods.

    Args:
        loglikelihoods: one summed log-probability per choice (from :func:`loglikelihood`).
        choices: the choice texts as the task lists them, *without* the leading space the request
            adds (the harness's ``doc_to_choice``); their lengths normalise.
        gold: the index of the right choice.

    Raises:
        ValueError: no choices, an empty choice, a count mismatch, a NaN or positive
            log-likelihood, or a gold index out of range.
    """
    check_multiple_choice(loglikelihoods, choices, gold)
    lls = [float(x) for x in loglikelihoods]
    pred = _argmax(lls)
    pred_norm = _argmax([ll / len(c) for ll, c in zip(lls, choices, strict=True)])
    pred_bytes = _argmax([ll / len(c.encode("utf-8")) for ll, c in zip(lls, choices, strict=True)])
    return MultipleChoiceScores(
        pred,
        pred_norm,
        pred_bytes,
        float(pred == gold),
        float(pred_norm == gold),
        float(pred_bytes == gold),
    )


def acc(loglikelihoods: Sequence[float], gold: int) -> float:
    """1.0 if the gold choice has the highest log-likelihood (first on a tie), else 0.0."""
    choices = ["x"] * len(loglikelihoods)  # lengths play no part in acc
    return multiple_choice_scores(loglikelihoods, choices, gold).acc


def acc_norm(loglikelihoods: Sequence[float], choices: Sequence[str], gold: int) -> float:
    """1.0 if the gold choice has the highest log-likelihood per character of its text, else 0.0."""
    return multiple_choice_scores(loglikelihoods, choices, gold).acc_norm


def mean(values: Sequence[float]) -> float:
    """The harness's aggregation of per-question scores (``ValueError`` on no values)."""
    if len(values) == 0:
        raise ValueError("no values to average")
    return sum(values) / len(values)
