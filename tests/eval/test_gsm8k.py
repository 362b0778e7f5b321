"""GSM8K scoring against lm-evaluation-harness 0.4.13: its RegexFilter objects built from the gsm8k
task's yaml, its exact_match with the yaml's settings, its majority-vote filters, its few-shot
prompt, and its whole gsm8k task run on illustrative items (nothing downloaded)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import lm_eval
import lm_eval.filters  # noqa: F401  (importing it registers the filters by name)
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from lm_eval.api.metrics import exact_match_hf_evaluate
from lm_eval.api.registry import get_filter

from demos.eval.gsm8k import (
    INVALID,
    check_item,
    exact_match,
    extract,
    extract_flexible,
    extract_strict,
    final_answer,
    gsm8k_prompt,
    harness_gsm8k,
    maj_at_k,
    majority_vote,
    normalize,
    score,
)
from demos.toys.gsm8k import ITEMS, OUTPUTS, SHOTS

TASKS = Path(lm_eval.__file__).parent / "tasks" / "gsm8k"
GSM8K = yaml.safe_load((TASKS / "gsm8k.yaml").read_text())
SELF_CONSISTENCY = yaml.safe_load((TASKS / "gsm8k-cot-self-consistency.yaml").read_text())
METRIC = next(m for m in GSM8K["metric_list"] if m["metric"] == "exact_match")


def harness_pipeline(config: dict, name: str):
    """The filter pipeline ``name`` of a task yaml, as the harness's FilterEnsemble runs it."""
    steps = next(f["filter"] for f in config["filter_list"] if f["name"] == name)

    def run(responses: list[list[str]]) -> list:
        docs = [{}] * len(responses)
        for step in steps:
            kwargs = {k: v for k, v in step.items() if k != "function"}
            responses = list(get_filter(step["function"])(**kwargs).apply(responses, docs))
        return responses

    return run


STRICT = harness_pipeline(GSM8K, "strict-match")
FLEXIBLE = harness_pipeline(GSM8K, "flexible-extract")

# model outputs that probe the extraction: the chapter's cases and more
TEXTS = [
    *OUTPUTS,
    *(item["answer"] for item in [*ITEMS, *SHOTS]),
    "#### 1,234,567",
    "#### -12.5",
    "The answer is -12.",
    "So she has $1,234.56 left.",
    "#### 5\n#### 6",
    "We get 3 apples, then 4 apples, then 5.",
    "Answer: 7",
    "7",
    "-",
    "",
    "....",
    "$$",
    "It costs $5 and then $.",
    "The year 2023 had 12 months; the answer is 12 months.",
    "####42",
    "#### , 3",
    "Total: 1.000,50 euros",
    "x = -0.5\n#### -0.5.",
    "2 - 3 = -1 -> -1",
    "3.\n",
    "ten",
]


@pytest.mark.parametrize("text", TEXTS, ids=[repr(t[:30]) for t in TEXTS])
def test_extraction_equals_the_harness_filters(text):
    assert extract_strict(text) == STRICT([[text]])[0]
    assert extract_flexible(text) == FLEXIBLE([[text]])[0]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789-$.,# aT\n")), max_size=30))
def test_extraction_equals_the_harness_filters_on_random_text(text):
    assert extract_strict(text) == STRICT([[text]])[0]
    assert extract_flexible(text) == FLEXIBLE([[text]])[0]


def test_our_patterns_are_the_yamls():
    """The patterns written in demos.eval.gsm8k are the ones the installed task uses."""
    from demos.eval import gsm8k as ours

    filters = {f["name"]: f["filter"][0] for f in GSM8K["filter_list"]}
    assert filters["strict-match"]["regex_pattern"] == ours.STRICT_PATTERN
    assert filters["flexible-extract"]["regex_pattern"] == ours.FLEXIBLE_PATTERN
    assert filters["flexible-extract"]["group_select"] == -1
    assert tuple(METRIC["regexes_to_ignore"]) == ours.IGNORE
    assert METRIC["ignore_case"] is True and METRIC["ignore_punctuation"] is False
    sc = {f["name"]: f["filter"] for f in SELF_CONSISTENCY["filter_list"]}
    assert sc["maj@64"][0]["regex_pattern"] == ours.SELF_CONSISTENCY_PATTERN


PAIRS = [
    ("1,250", "25 * 50 = 1,250 pencils.\n#### 1,250"),
    ("$18.", "She pays $18.\n#### 18"),
    ("18.00", "#### 18"),
    ("-3", "#### -3"),
    ("72.", "#### 72"),
    ("[invalid]", "#### 7"),
    ("$1,000.", "#### 1000"),
    ("1000", "#### 1,000"),
    ("ABC", "#### abc"),
    ("7 ", "#### 7"),
    ("#### 5", "#### 5"),
    ("5..", "#### 5."),
]


@pytest.mark.parametrize("prediction, reference", PAIRS)
def test_exact_match_equals_the_harness_metric(prediction, reference):
    kwargs = {k: METRIC[k] for k in ("regexes_to_ignore", "ignore_case", "ignore_punctuation")}
    theirs = exact_match_hf_evaluate([prediction], [reference], **kwargs)["exact_match"]
    assert exact_match(prediction, reference) == bool(theirs)


def test_the_whole_task_scores_as_the_harness():
    """lm-eval's gsm8k task, built from its yaml on the illustrative items, scores each output as
    ours does, for both filters; its 5-shot prompt is ours with the shots it drew."""
    result = harness_gsm8k(ITEMS, OUTPUTS, SHOTS)
    strict = score(OUTPUTS, ITEMS, extract_strict)
    flexible = score(OUTPUTS, ITEMS, extract_flexible)
    assert [bool(x) for x in result["strict-match"]] == strict
    assert [bool(x) for x in result["flexible-extract"]] == flexible
    assert strict != flexible and any(strict) and not all(flexible)  # the cases tell them apart
    by_question = {shot["question"]: shot for shot in SHOTS}
    for prompt, item in zip(result["prompts"], ITEMS, strict=True):
        drawn = re.findall(r"Question: (.*?)\nAnswer:", prompt, flags=re.S)[:-1]
        assert len(drawn) == 5
        assert prompt == gsm8k_prompt(item["question"], [by_question[q] for q in drawn])


@pytest.mark.parametrize("k", [1, 3, 8])
def test_maj_at_k_equals_the_harness_self_consistency_filters(k):
    rng = random.Random(k)
    answers = ["12", "13", "1,200", "-4"]
    batches = []
    for _ in range(40):
        batches.append(
            [
                rng.choice(
                    [f"So the total is {rng.choice(answers)}. The answer is {rng.choice(answers)}."]
                    + ["I do not know."]
                )
                for _ in range(10)
            ]
        )
    pattern = SELF_CONSISTENCY["filter_list"][1]["filter"][0]["regex_pattern"]
    steps = [{"function": "take_first_k", "k": k}] + SELF_CONSISTENCY["filter_list"][2]["filter"][
        1:
    ]
    harness = harness_pipeline({"filter_list": [{"name": "maj", "filter": steps}]}, "maj")
    ours = [maj_at_k(b, k, lambda t: extract(t, pattern)) for b in batches]
    assert ours == harness(batches)
    assert len(set(ours)) > 2  # the votes differ from batch to batch


def test_majority_vote_breaks_ties_by_first_seen_and_counts_invalid():
    majority = get_filter("majority_vote")()
    for votes in (["3", "4", "4", "3"], ["4", "3"], [INVALID, INVALID, "5"], ["a", "b", "c"]):
        assert majority_vote(votes) == list(majority.apply([votes], [{}]))[0][0]
    assert majority_vote(["4", "3", "3", "4"]) == "4"
    assert majority_vote([INVALID, INVALID, "5"]) == INVALID


def test_normalize_and_final_answer():
    assert normalize("$1,234.") == "1234"
    assert normalize("Some working\n#### 72") == "72"
    assert final_answer("so 1,250 pencils\n#### 1,250") == "1,250"


@pytest.mark.parametrize(
    "item, words",
    [
        ({"question": "How many?"}, "'question' and 'answer'"),
        ("How many?", "'question' and 'answer'"),
        ({"question": "", "answer": "#### 3"}, "question must be a non-empty"),
        ({"question": "How many?", "answer": "three"}, "'#### N'"),
        ({"question": "How many?", "answer": "#### "}, "'#### N'"),
        ({"question": "How many?", "answer": 3}, "'#### N'"),
    ],
)
def test_malformed_items_are_refused(item, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        check_item(item)
    with pytest.raises(ValueError, match=re.escape(words)):
        score(["#### 3"], [item], extract_strict)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="k = 3"):
        maj_at_k(["#### 1", "#### 2"], 3)
    with pytest.raises(ValueError, match="k"):
        maj_at_k(["#### 1"], 0)
    with pytest.raises(ValueError, match="non-empty"):
        majority_vote([])
    with pytest.raises(ValueError, match="2 outputs for 1 items"):
        score(["a", "b"], ITEMS[:1], extract_strict)
    with pytest.raises(ValueError, match="must be a str"):
        extract_strict(None)
    with pytest.raises(ValueError, match="not a regular expression"):
        extract("x", "(")
    with pytest.raises(ValueError, match="'#### N'"):
        gsm8k_prompt("How many?", [{"question": "q", "answer": "no final line"}])
