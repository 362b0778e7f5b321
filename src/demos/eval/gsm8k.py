"""GSM8K scored as lm-evaluation-harness scores it: the ``#### N`` answer, strict and flexible
extraction, exact match after the task's normalisation, and a majority vote over samples.

A GSM8K solution ends with a line ``#### N``, the final answer [cobbe2021gsm8k]. A model writes
free text; the harness pulls a number out of it with a regular expression (a *filter*), then
compares it with the reference as strings, after removing commas, dollar signs, everything up to
``#### `` and a trailing period, case ignored. Two filters run on every output: ``strict-match``
reads only an answer written ``#### N``; ``flexible-extract`` takes the last number-like run in
the text. Self-consistency samples several solutions and votes [wang2023selfconsistency].

Glossary: ``k`` samples per question.

References: cobbe2021gsm8k, wang2023selfconsistency, lewkowycz2022minerva, lmeval_gsm8k_task.

Reference implementation: lm-eval==0.4.13, ``lm_eval/tasks/gsm8k/gsm8k.yaml`` (filters, metric
settings, prompt), ``lm_eval/filters/extraction.py::RegexFilter``,
``lm_eval/filters/selection.py::TakeFirstFilter, TakeKFilter, MajorityVoteFilter``,
``lm_eval/api/metrics.py::exact_match_hf_evaluate``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from demos.validation import check_positive_int

# The patterns and settings of lm-eval 0.4.13's gsm8k.yaml (the tests read that file and compare).
STRICT_PATTERN = r"#### (\-?[0-9\.\,]+)"  # "strict-match": only "#### N"
FLEXIBLE_PATTERN = r"(-?[$0-9.,]{2,})|(-?[0-9]+)"  # "flexible-extract": any number, the last one
SELF_CONSISTENCY_PATTERN = r"The answer is (\-?[0-9\.\,]*[0-9]+)"  # gsm8k-cot-self-consistency
IGNORE = (",", r"\$", r"(?s).*#### ", r"\.$")  # exact_match's regexes_to_ignore, in order
INVALID = "[invalid]"  # RegexFilter's fallback when nothing matches


def extract(text: str, pattern: str, group_select: int = 0, fallback: str = INVALID) -> str:
    """The answer a regular expression finds in ``text``, as the harness's ``RegexFilter`` does.

    Of all non-overlapping matches (left to right), take number ``group_select`` (0 the first,
    -1 the last); when the pattern has several groups, the first non-empty one; strip spaces.
    No match (or ``group_select`` out of range): ``fallback``.

    Raises:
        ValueError: ``text`` or ``pattern`` is not a string, or ``pattern`` does not compile.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str (a model's output), got {type(text).__name__}")
    try:
        regex = re.compile(pattern)
    except (TypeError, re.error) as error:
        raise ValueError(f"pattern {pattern!r} is not a regular expression: {error}") from None
    matches = list(regex.finditer(text))
    if not matches or not -len(matches) <= group_select < len(matches):
        return fallback
    match = matches[group_select]
    if regex.groups == 0:
        return match.group(0).strip()
    found = next((g for g in match.groups() if g), None)
    return fallback if found is None else found.strip()


def extract_strict(text: str) -> str:
    """``strict-match``: the number after ``#### `` (the first such line), else ``[invalid]``."""
    return extract(text, STRICT_PATTERN)


def extract_flexible(text: str) -> str:
    """``flexible-extract``: the *last* run of digits, ``$ . ,`` (two or more characters) or the
    last lone digit, whatever the wording around it; ``[invalid]`` when the text has no digit."""
    return extract(text, FLEXIBLE_PATTERN, group_select=-1)


def normalize(answer: str) -> str:
    """What exact_match compares: the task's ``regexes_to_ignore`` removed in order, lower case.

    ``"$1,234."`` -> ``"1234"``; a full reference solution ``"...#### 72"`` -> ``"72"``.
    """
    if not isinstance(answer, str):
        raise ValueError(f"answer must be a str, got {type(answer).__name__}")
    for pattern in IGNORE:
        answer = re.sub(pattern, "", answer)
    return answer.lower()


def exact_match(prediction: str, reference: str) -> bool:
    """Whether an extracted answer equals the reference (a full solution or just the number)
    after :func:`normalize` on both sides, as the gsm8k task's ``exact_match`` metric."""
    return normalize(prediction) == normalize(reference)


def check_item(item: Any) -> tuple[str, str]:
    """``(question, answer)`` of a GSM8K item ``{"question": ..., "answer": "... #### N"}``.

    Raises:
        ValueError: not a dict with both keys, an empty question, or an answer without a final
            ``#### N`` line holding a number.
    """
    if not isinstance(item, dict) or not {"question", "answer"} <= set(item):
        raise ValueError(f"a GSM8K item is a dict with 'question' and 'answer', got {item!r}")
    question, answer = item["question"], item["answer"]
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"question must be a non-empty str, got {question!r}")
    if not isinstance(answer, str) or extract_strict(answer) == INVALID:
        raise ValueError(
            f"answer must end with a line '#### N' holding the final number, got {answer!r}"
        )
    return question, answer


def final_answer(answer: str) -> str:
    """The final answer of a reference solution: the number after ``#### `` (``"1,234"`` kept as
    written; :func:`normalize` drops the comma). ``ValueError`` when there is none."""
    _, answer = check_item({"question": "?", "answer": answer})
    return answer.split("#### ")[-1].strip()


def gsm8k_prompt(question: str, shots: Sequence[dict[str, str]] = ()) -> str:
    """The harness's prompt for ``question`` after the few-shot examples ``shots``.

    Each item is written ``Question: <question>\\nAnswer:`` (the task's ``doc_to_text``); a shot
    adds a space and its full solution, ``#### N`` line included (``doc_to_target``); examples
    are separated by a blank line (``fewshot_delimiter``). The Open LLM Leaderboard used 5 shots.

    Raises:
        ValueError: a malformed shot (see :func:`check_item`) or an empty question.
    """
    question, _ = check_item({"question": question, "answer": "#### 0"})
    blocks = []
    for shot in shots:
        q, a = check_item(shot)
        blocks.append(f"Question: {q}\nAnswer: {a}")
    return "\n\n".join([*blocks, f"Question: {question}\nAnswer:"])


def majority_vote(answers: Sequence[str]) -> str:
    """The most frequent answer; a tie goes to the one seen first (``collections.Counter``'s
    ``most_common``, as the harness's ``MajorityVoteFilter``). ``[invalid]`` is a candidate too.

    Raises:
        ValueError: no answers.
    """
    if isinstance(answers, str) or len(answers) == 0:
        raise ValueError(f"answers must be a non-empty list of strings, got {answers!r}")
    counts: dict[str, int] = {}
    for answer in answers:
        counts[answer] = counts.get(answer, 0) + 1
    best = max(counts.values())
    return next(answer for answer, count in counts.items() if count == best)


def maj_at_k(
    samples: Sequence[str], k: int, extractor: Callable[[str], str] = extract_strict
) -> str:
    """maj@k: extract an answer from each of the first ``k`` samples and vote.

    The harness's order (``take_first_k``, ``regex``, ``majority_vote``, ``take_first``); the
    Minerva paper's majority voting and self-consistency choose the same way [lewkowycz2022minerva,
    wang2023selfconsistency].

    Raises:
        ValueError: ``k`` not a positive integer, or fewer than ``k`` samples.
    """
    check_positive_int("k", k)
    if isinstance(samples, str) or len(samples) < k:
        got = "a str" if isinstance(samples, str) else f"{len(samples)}"
        raise ValueError(f"maj@{k} needs at least k = {k} samples per question, got {got}")
    return majority_vote([extractor(text) for text in samples[:k]])


def score(
    outputs: Sequence[str], items: Sequence[dict[str, str]], extractor: Callable[[str], str]
) -> list[bool]:
    """exact_match per item: ``extractor(output)`` against the item's reference solution.

    Raises:
        ValueError: different numbers of outputs and items, or a malformed item.
    """
    if len(outputs) != len(items):
        raise ValueError(f"got {len(outputs)} outputs for {len(items)} items")
    return [
        exact_match(extractor(o), check_item(it)[1]) for o, it in zip(outputs, items, strict=True)
    ]


def harness_gsm8k(
    items: Sequence[dict[str, str]],
    outputs: Sequence[str],
    shots: Sequence[dict[str, str]],
    num_fewshot: int = 5,
) -> dict[str, list]:
    """The reference: lm-evaluation-harness's own ``gsm8k`` task scoring ``outputs`` on ``items``.

    The task is built from the installed ``gsm8k.yaml`` with the data set replaced by ``items``
    (test split) and ``shots`` (the split few-shot examples are drawn from), so nothing is
    downloaded; each item's model output is the given string. The harness then runs as in
    ``lm_eval.evaluator``: build the requests, apply the filters, ``process_results``.

    Returns:
        ``{"prompts": [...], "strict-match": [0/1, ...], "flexible-extract": [0/1, ...]}``, one
        entry per item (the prompt is the harness's few-shot context).
    """
    import contextlib
    import io
    import logging
    import warnings
    from pathlib import Path

    import yaml

    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")  # tqdm's notebook notice when lm_eval is imported
        import datasets
        import lm_eval
        from lm_eval.api.task import ConfigurableTask

    if len(outputs) != len(items):
        raise ValueError(f"got {len(outputs)} outputs for {len(items)} items")
    for item in [*items, *shots]:
        check_item(item)
    path = Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k.yaml"
    config = yaml.safe_load(path.read_text())
    config.pop("tag", None)
    config["num_fewshot"] = num_fewshot
    config["custom_dataset"] = lambda **_: datasets.DatasetDict(
        train=datasets.Dataset.from_list([dict(s) for s in shots]),
        test=datasets.Dataset.from_list([dict(it) for it in items]),
    )
    logger = logging.getLogger("lm_eval")
    level, logger.level = logger.level, logging.ERROR  # the custom-data notice is expected
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # and its progress bar
            task = ConfigurableTask(config=config)
            task.build_all_requests(rank=0, world_size=1)
    finally:
        logger.setLevel(level)
    instances = sorted(task.instances, key=lambda inst: inst.doc_id)
    for inst in instances:
        inst.resps.append(outputs[inst.doc_id])
    task.apply_filters()
    result: dict[str, list] = {"prompts": [inst.args[0] for inst in instances]}
    for name in instances[0].filtered_resps:
        result[name] = [
            float(task.process_results(inst.doc, [inst.filtered_resps[name]])["exact_match"])
            for inst in instances
        ]
    return result
