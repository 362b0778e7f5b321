"""The Orca 2 chapter's checkers: the student's text, one example's labels, packed labels."""

from __future__ import annotations

import pytest
import torch

from demos.exercises.orca2 import check_answer_labels, check_packed_labels, check_student_text

GENERIC = (
    "You are Orca, an AI language model created by Microsoft. You are a cautious assistant. You "
    "carefully follow instructions. You are helpful and harmless and you follow ethical guidelines "
    "and promote positive behavior."
)


def erase(teacher_text):  # written here from the model card's format, not with the module's code
    system_turn, rest = teacher_text.split("<|im_end|>", 1)
    assert system_turn.startswith("<|im_start|>system\n")
    return f"<|im_start|>system\n{GENERIC}<|im_end|>" + rest


def instruction(teacher_text):
    return teacher_text.split("<|im_end|>", 1)[0].removeprefix("<|im_start|>system\n")


def labels_of(prompt_ids, answer_ids):  # written here: -100 under the prompt
    ids = torch.cat([prompt_ids, answer_ids])
    labels = ids.clone()
    labels[: len(prompt_ids)] = -100
    return ids, labels


def packed(examples, max_len, pad_id):  # written here: one example after another, then padding
    ids, labels = [], []
    for p, a in examples:
        ids += p.tolist() + a.tolist()
        labels += [-100] * len(p) + a.tolist()
    pad = max_len - len(ids)
    return torch.tensor(ids + [pad_id] * pad), torch.tensor(labels + [-100] * pad)


def test_solutions_pass():
    for checker, answer in (
        (check_student_text, erase),
        (check_answer_labels, labels_of),
        (check_packed_labels, packed),
    ):
        result = checker(answer)
        assert result.ok, result.message


def my_student_text(teacher_text):  # the chapter's stub, untouched
    # your code here: return a str
    return teacher_text


def first_line_erased(teacher_text):  # takes the instruction to end at the first newline
    header, _, rest = teacher_text.split("\n", 2)
    return f"{header}\n{GENERIC}\n{rest}"


TEXT_WRONG = {
    "stub": (my_student_text, ["still the template"]),
    "kept": (lambda t: t, ["still the system message"]),
    "no system": (lambda t: t.split("<|im_end|>\n", 1)[1], ["the system turn is gone"]),
    "system not closed": (
        lambda t: erase(t).replace(f"{GENERIC}<|im_end|>", GENERIC),
        ["no longer closed by <|im_end|>"],
    ),
    "appended": (
        lambda t: t.replace(instruction(t), f"{GENERIC} {instruction(t)}", 1),
        ["added to the generic message"],
    ),
    "replaced everywhere": (
        lambda t: t.replace(instruction(t), GENERIC),
        ["in the user's turn too", "system turn only"],
    ),
    "one line of a multi-line instruction": (first_line_erased, ["first differ at character"]),
    "no newline after the role": (
        lambda t: erase(t).replace("assistant\n", "assistant"),
        ["first differ at character"],
    ),
    "raises": (lambda t: t.index("<|im_start|>tool"), ["raised ValueError"]),
    "returns bytes": (lambda t: erase(t).encode(), ["expected a str"]),
}


@pytest.mark.parametrize("answer, words", TEXT_WRONG.values(), ids=list(TEXT_WRONG))
def test_text_checker_explains_wrong_answers(explain, answer, words):
    explain(check_student_text, answer, words)


def my_answer_labels(prompt_ids, answer_ids):  # the chapter's stub, untouched
    # your code here
    return prompt_ids, answer_ids


LABEL_WRONG = {
    "stub": (my_answer_labels, ["still the template"]),
    "all labelled": (
        lambda p, a: (torch.cat([p, a]), torch.cat([p, a])),
        ["the prompt's tokens are targets too"],
    ),
    "shifted": (
        lambda p, a: (torch.cat([p, a]), torch.cat([labels_of(p, a)[1][1:], torch.tensor([-100])])),
        ["shifted by one"],
    ),
    "first answer token masked": (
        lambda p, a: (torch.cat([p, a]), torch.cat([torch.full((len(p) + 1,), -100), a[1:]])),
        ["first token is masked"],
    ),
    "zeros under the prompt": (
        lambda p, a: (torch.cat([p, a]), torch.cat([torch.zeros_like(p), a])),
        ["a real token id"],
    ),
    "answer first": (lambda p, a: labels_of(a, p), ["differ"]),
    "int32 labels": (
        lambda p, a: (labels_of(p, a)[0], labels_of(p, a)[1].int()),
        ["labels is an int32", "torch.int64", "expected target dtype to be Long"],
    ),
    "all int32": (
        lambda p, a: tuple(t.int() for t in labels_of(p, a)),
        ["int32", "torch.int64", "cross-entropy"],
    ),
}


@pytest.mark.parametrize("answer, words", LABEL_WRONG.values(), ids=list(LABEL_WRONG))
def test_label_checker_explains_wrong_answers(explain, answer, words):
    explain(check_answer_labels, answer, words)


def my_packed_labels(examples, max_len, pad_id):  # the chapter's stub, untouched
    # your code here
    return None


def pad_labelled(examples, max_len, pad_id):
    ids, labels = packed(examples, max_len, pad_id)
    return ids, torch.where(ids == pad_id, ids, labels)


def one_prompt_masked(examples, max_len, pad_id):
    ids, labels = packed(examples, max_len, pad_id)
    labels = ids.clone()
    labels[: len(examples[0][0])] = -100
    labels[ids == pad_id] = -100
    return ids, labels


def pad_on_the_left(examples, max_len, pad_id):
    ids, labels = packed(examples, max_len, pad_id)
    n = int((ids != pad_id).sum())
    return ids.roll(max_len - n), labels.roll(max_len - n)


PACK_WRONG = {
    "stub": (my_packed_labels, ["still the template"]),
    "padding trained": (pad_labelled, ["the padding is a target"]),
    "one prompt masked": (one_prompt_masked, ["every packed example has its own prompt"]),
    "padding first": (pad_on_the_left, ["differ"]),
    "not padded": (lambda e, m, p: labels_of(e[0][0], e[0][1]), ["shape"]),
    "int32": (
        lambda e, m, p: tuple(t.int() for t in packed(e, m, p)),
        ["int32", "torch.int64", "expected target dtype to be Long"],
    ),
}


@pytest.mark.parametrize("answer, words", PACK_WRONG.values(), ids=list(PACK_WRONG))
def test_pack_checker_explains_wrong_answers(explain, answer, words):
    explain(check_packed_labels, answer, words)


@pytest.mark.parametrize("checker", [check_student_text, check_answer_labels, check_packed_labels])
def test_checkers_explain_any_wrong_answer(explain, any_wrong_answer, checker):
    explain(checker, *any_wrong_answer)
