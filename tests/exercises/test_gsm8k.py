"""The GSM8K chapter's checkers: flexible-extract accuracy and any-of-k coverage."""

from __future__ import annotations

import re

import pytest

from demos.exercises.gsm8k import check_any_of_k, check_flexible_accuracy


def number(text):  # written here without the harness's pattern: the last digit run
    runs = re.findall(r"-?[$0-9.,]*[0-9][$0-9.,]*", text)
    return runs[-1] if runs else "[invalid]"


def clean(s):
    s = re.sub(r"(?s).*#### ", "", s.replace(",", "").replace("$", ""))
    return re.sub(r"\.$", "", s).lower()


def flexible_accuracy(outputs, answers):
    hits = [clean(number(o)) == clean(a) for o, a in zip(outputs, answers, strict=True)]
    return sum(hits) / len(hits)


def strict(text):
    found = re.search(r"#### (-?[0-9.,]+)", text)
    return found.group(1).strip() if found else "[invalid]"


def any_of_k(samples, answers, k):
    hits = [
        any(clean(strict(s)) == clean(a) for s in item[:k])
        for item, a in zip(samples, answers, strict=True)
    ]
    return sum(hits) / len(hits)


def test_right_answers_pass():
    for checker, answer in (
        (check_flexible_accuracy, flexible_accuracy),
        (check_any_of_k, any_of_k),
    ):
        result = checker(answer)
        assert result.ok, result.message


def my_flexible_accuracy(outputs, answers):  # the chapter's stubs, untouched
    # your code here: return a float in [0, 1]
    return None


def my_any_of_k(samples, answers, k):
    # your code here: return a float in [0, 1]
    return None


def test_the_stub_is_not_attempted_yet():
    for checker, stub in (
        (check_flexible_accuracy, my_flexible_accuracy),
        (check_any_of_k, my_any_of_k),
    ):
        result = checker(stub)
        assert not result.ok and not result.attempted, result
        assert str(result).startswith("✏️ Not attempted yet.") and "still the template" in str(
            result
        )


def first_number_accuracy(outputs, answers):
    hits = []
    for o, a in zip(outputs, answers, strict=True):
        runs = re.findall(r"-?[$0-9.,]*[0-9][$0-9.,]*", o)
        hits.append(clean(runs[0] if runs else "[invalid]") == clean(a))
    return sum(hits) / len(hits)


FLEXIBLE_WRONG = {
    "first number": (first_number_accuracy, ["takes the last"]),
    "strict only": (
        lambda o, a: sum(clean(strict(x)) == clean(y) for x, y in zip(o, a, strict=True)) / len(o),
        ["strict-match"],
    ),
    "no normalisation": (
        lambda o, a: (
            sum(number(x) == y.split("#### ")[-1] for x, y in zip(o, a, strict=True)) / len(o)
        ),
        ["removes commas"],
    ),
    "a count, not a mean": (
        lambda o, a: float(sum(clean(number(x)) == clean(y) for x, y in zip(o, a, strict=True))),
        ["expected 0.8, got 4"],
    ),
}


@pytest.mark.parametrize("answer, words", FLEXIBLE_WRONG.values(), ids=list(FLEXIBLE_WRONG))
def test_flexible_accuracy_checker_explains_wrong_answers(explain, answer, words):
    explain(check_flexible_accuracy, answer, words)


ANY_WRONG = {
    "all samples": (lambda s, a, k: any_of_k(s, a, len(s[0])), ["only the first k"]),
    "last k": (lambda s, a, k: any_of_k([x[-k:] for x in s], a, k), ["take the first k"]),
    "majority": (
        lambda s, a, k: (
            sum(
                clean(strict(max(x[:k], key=x[:k].count))) == clean(y)
                for x, y in zip(s, a, strict=True)
            )
            / len(s)
        ),
        ["maj@k"],
    ),
    # issue 28: every case was written "#### N", where flexible-extract reads what strict-match reads
    "flexible-extract": (
        lambda s, a, k: (
            sum(
                any(clean(number(x)) == clean(y) for x in item[:k])
                for item, y in zip(s, a, strict=True)
            )
            / len(s)
        ),
        ["strict-match", "flexible-extract", "answers in words, k = 2"],
    ),
}


@pytest.mark.parametrize("answer, words", ANY_WRONG.values(), ids=list(ANY_WRONG))
def test_any_of_k_checker_explains_wrong_answers(explain, answer, words):
    explain(check_any_of_k, answer, words)


@pytest.mark.parametrize("checker", [check_flexible_accuracy, check_any_of_k])
def test_checkers_explain_any_wrong_answer(explain, any_wrong_answer, checker):
    answer, words = any_wrong_answer
    explain(checker, answer, words)
