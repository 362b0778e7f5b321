"""References and known mistakes for the Orca 2 chapter's exercises: the student's ChatML text made from the teacher's
stored text (the instruction erased), the labels of one example (the answer only), and, as a
transfer, labels of examples packed into one fixed-length row as Orca 2 packs its training data
[azureml2023orca2card].

Over ~300 lines on purpose: one chapter's checkers, one module per chapter as the layout rule has it
(``demos/exercises/<chapter>.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from demos.exercises.core import (
    Check,
    Mistake,
    check_function,
    record,
)
from demos.exercises.orca2 import (  # shared with the package
    _int64_required,
)
from demos.training.prompt_erasure import (
    GENERIC_SYSTEM,
    IM_END,
    IM_START,
    TeacherExample,
    chatml,
    teacher_messages,
)
from demos.training.sft import IGNORE_INDEX

# ---------------------------------------------------------------- exercise 1: erase stored text


def student_text(teacher_text: str) -> str:
    """The reference: the student's ChatML text from the teacher's, as a dataset stores it. Only the
    system turn's content changes: the teacher's instruction is replaced by ``GENERIC_SYSTEM``."""
    head = f"{IM_START}system\n"
    if not teacher_text.startswith(head):
        raise ValueError(f"teacher_text must start with {head!r}, got {teacher_text[:30]!r}")
    return head + GENERIC_SYSTEM + teacher_text[teacher_text.index(IM_END) :]


def _instruction(teacher_text: str) -> str:
    return teacher_text.removeprefix(f"{IM_START}system\n").split(IM_END, 1)[0]


def _kept(teacher_text: str) -> str:
    return teacher_text


def _no_system(teacher_text: str) -> str:
    return teacher_text.split(IM_END + "\n", 1)[1]


def _system_unclosed(teacher_text: str) -> str:
    return student_text(teacher_text).replace(GENERIC_SYSTEM + IM_END, GENERIC_SYSTEM, 1)


def _both(teacher_text: str) -> str:
    instruction = _instruction(teacher_text)  # the generic message with the instruction appended
    return teacher_text.replace(instruction, f"{GENERIC_SYSTEM} {instruction}", 1)


def _everywhere(teacher_text: str) -> str:
    return teacher_text.replace(_instruction(teacher_text), GENERIC_SYSTEM)


def _teacher_text(system: str, user: str, answer: str) -> str:
    return chatml(teacher_messages(TeacherExample(system, user, answer)))


TEXT_CASES = {
    "a step-by-step instruction": (
        _teacher_text(
            "Think step by step and justify each step.",
            "Is 91 a prime number?",
            "91 = 7 x 13, so it is not prime.",
        ),
    ),
    "a direct-answer instruction": (
        _teacher_text("Answer directly.", "Capital of France?", "Paris"),
    ),
    "the instruction quoted in the task": (
        _teacher_text(
            "Recall the facts first.\nThen answer.",
            'What does "Recall the facts first.\nThen answer." ask a model to do?',
            "To remember what it knows before it answers.",
        ),
    ),
}
TEXT_MISTAKES = [
    Mistake(_kept, "the teacher's detailed instruction is still the system message: erase it."),
    Mistake(
        _no_system, "the system turn is gone; Orca 2 keeps one, with the generic message in it."
    ),
    Mistake(_system_unclosed, "the system turn is no longer closed by <|im_end|>."),
    Mistake(_both, "the instruction was added to the generic message instead of replaced by it."),
    Mistake(
        _everywhere,
        "the instruction's words were replaced in the user's turn too; erasure changes the "
        "system turn only, the task and the answer stay as the teacher's data has them.",
    ),
]


# The checker compares the answer's str on its own (demos.exercises.orca2.check_student_text, with
# the recorded results of OWN_DECLARATIONS below): no check_function here.


# ---------------------------------------------------------------- exercise 2: one example's labels


def answer_labels(
    prompt_ids: torch.Tensor, answer_ids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference: ``(input_ids, labels)``, both ``(p + a,)``: the prompt then the answer; labels
    copy the answer's ids and hold -100 on the prompt (unshifted: the loss shifts)."""
    input_ids = torch.cat([prompt_ids, answer_ids])
    return input_ids, torch.cat([torch.full_like(prompt_ids, IGNORE_INDEX), answer_ids])


def _all_labelled(prompt_ids, answer_ids):
    input_ids = torch.cat([prompt_ids, answer_ids])
    return input_ids, input_ids.clone()


def _shifted(prompt_ids, answer_ids):
    input_ids, labels = answer_labels(prompt_ids, answer_ids)
    return input_ids, torch.cat([labels[1:], labels.new_tensor([IGNORE_INDEX])])


def _off_by_one(prompt_ids, answer_ids):
    input_ids, labels = answer_labels(prompt_ids, answer_ids)
    p = len(prompt_ids)
    labels = labels.clone()
    labels[p] = IGNORE_INDEX  # the answer's first token masked too
    return input_ids, labels


def _zeros(prompt_ids, answer_ids):
    input_ids, labels = answer_labels(prompt_ids, answer_ids)
    return input_ids, labels.masked_fill(labels == IGNORE_INDEX, 0)


# The exercises name int64: the loss's cross-entropy refuses int32 targets, so an answer in int32
# would crash the training step; the checker says so rather than accept it.


def check_answer_labels(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Check:
    """Check ``fn(prompt_ids, answer_ids)`` -> ``(input_ids, labels)``: 1-D int64 tensors."""
    cases = {
        "prompt of 5, answer of 3": (torch.tensor([1, 63, 52, 57, 64]), torch.tensor([8, 24, 64])),
        "prompt of 2, answer of 1": (torch.tensor([1, 63]), torch.tensor([24])),
    }
    mistakes = [
        Mistake(_all_labelled, "the prompt's tokens are targets too: set their labels to -100."),
        Mistake(
            _shifted,
            "the labels are shifted by one; leave them aligned with input_ids (the loss shifts).",
        ),
        Mistake(_off_by_one, "the answer's first token is masked too: it is a target."),
        Mistake(
            _zeros, "the prompt's labels are 0, a real token id; -100 is what the loss ignores."
        ),
    ]
    return _int64_required(
        check_function(
            fn,
            answer_labels,
            cases,
            ("prompt_ids", "answer_ids"),
            mistakes=mistakes,
            names=("input_ids", "labels"),
            exact_dtype=True,
        )
    )


# ---------------------------------------------------------------- exercise 3 (transfer): packing


def packed_labels(
    examples: Sequence[tuple[torch.Tensor, torch.Tensor]], max_len: int, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference: the examples' ``(input_ids, labels)`` (as :func:`answer_labels`) concatenated
    in order and padded to ``max_len`` with ``pad_id`` (label -100); both ``(max_len,)``."""
    pairs = [answer_labels(p, a) for p, a in examples]
    ids = torch.cat([i for i, _ in pairs])
    labels = torch.cat([lab for _, lab in pairs])
    pad = max_len - len(ids)
    return (
        torch.cat([ids, ids.new_full((pad,), pad_id)]),
        torch.cat([labels, labels.new_full((pad,), IGNORE_INDEX)]),
    )


def _pad_trained(examples, max_len, pad_id):
    ids, labels = packed_labels(examples, max_len, pad_id)
    return ids, torch.where(ids == pad_id, ids, labels)  # the padding labelled as itself


def _first_prompt_only(examples, max_len, pad_id):
    ids, _ = packed_labels(examples, max_len, pad_id)
    p = len(examples[0][0])
    labels = ids.clone()
    labels[:p] = IGNORE_INDEX
    labels[ids == pad_id] = IGNORE_INDEX
    return ids, labels


def check_packed_labels(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Check:
    """Check ``fn(examples, max_len, pad_id)`` -> ``(input_ids, labels)``, both int64 ``(max_len,)``;
    ``examples`` is a list of ``(prompt_ids, answer_ids)`` whose total length is at most max_len."""
    cases = {
        "two examples in 16": (
            [
                (torch.tensor([1, 63, 52, 64]), torch.tensor([8, 64])),
                (torch.tensor([1, 63, 40, 64]), torch.tensor([24, 5, 64])),
            ],
            16,
            62,
        ),
        "three examples, no room left": (
            [
                (torch.tensor([1, 63]), torch.tensor([9])),
                (torch.tensor([1, 52]), torch.tensor([7, 64])),
                (torch.tensor([1]), torch.tensor([3])),
            ],
            9,
            62,
        ),
    }
    mistakes = [
        Mistake(_pad_trained, "the padding is a target: its labels must be -100 too."),
        Mistake(
            _first_prompt_only,
            "only the first example's prompt is masked; every packed example has its own prompt.",
        ),
    ]
    return _int64_required(
        check_function(
            fn,
            packed_labels,
            cases,
            ("examples", "max_len", "pad_id"),
            mistakes=mistakes,
            names=("input_ids", "labels"),
            exact_dtype=True,
        )
    )


# What scripts/exercise_data.py records for checkers that compare on their own (no check_function).
OWN_DECLARATIONS = {
    "check_student_text": lambda: [record(student_text, TEXT_CASES, TEXT_MISTAKES)],
}
