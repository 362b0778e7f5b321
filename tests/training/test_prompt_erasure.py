"""Prompt erasure: the student's ids and trained mask equal transformers' apply_chat_template with
return_assistant_tokens_mask on the same ChatML template; the loss on them equals LlamaForCausalLM's
with -100 labels (values and gradients); bad input is a ValueError."""

from __future__ import annotations

import pytest
import torch

from demos.catalog import ROWS
from demos.toys.orca2 import DIRECT_SYSTEM, STEP_SYSTEM, teacher_example, toy_tokenizer
from demos.training.prompt_erasure import (
    CHATML_TEMPLATE,
    GENERIC_SYSTEM,
    TeacherExample,
    chatml,
    chatml_segments,
    erase_prompt,
    teacher_messages,
    training_ids,
)
from demos.training.sft import causal_lm_loss, masked_labels

DIGITS = [[7], [3, 5], [3, 5, 2], [9, 9, 9, 9, 9]]


def test_erasing_replaces_only_the_system_message():
    example = teacher_example([3, 5, 2])
    teacher, student = teacher_messages(example), erase_prompt(example)
    assert teacher[0]["content"] == STEP_SYSTEM and student[0]["content"] == GENERIC_SYSTEM
    assert teacher[1:] == student[1:]
    assert [m["role"] for m in student] == ["system", "user", "assistant"]


def test_the_chatml_text_is_the_model_cards_format():
    text = chatml(erase_prompt(TeacherExample("s", "hello there", "hi")))
    # the model card's prompt [hf_orca2_card], written out by hand, then the answer and its end
    card = (
        f"<|im_start|>system\n{GENERIC_SYSTEM}<|im_end|>\n<|im_start|>user\nhello there<|im_end|>\n"
    )
    assert text == card + "<|im_start|>assistant\nhi<|im_end|>\n"
    prompt = chatml(erase_prompt(TeacherExample("s", "hello there", "hi"))[:2], True)
    assert prompt == card + "<|im_start|>assistant\n"


@pytest.mark.parametrize("digits", DIGITS, ids=str)
@pytest.mark.parametrize("erase", [True, False])
def test_ids_and_mask_equal_apply_chat_template(digits, erase):
    tokenizer = toy_tokenizer()
    example = teacher_example(digits)
    messages = erase_prompt(example) if erase else teacher_messages(example)
    ids, trained = training_ids(messages, tokenizer)
    ref = tokenizer.apply_chat_template(
        messages,
        chat_template=CHATML_TEMPLATE,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    assert ids.tolist() == ref["input_ids"]
    assert trained.int().tolist() == ref["assistant_masks"]
    answer = tokenizer.encode(example.answer + "<|im_end|>", add_special_tokens=False)
    assert ids[trained].tolist() == answer  # exactly the answer and its end, nothing else
    first_word = example.system.split()[0]  # "Add" or "Give": the teacher's instruction
    assert (ids == tokenizer.convert_tokens_to_ids(first_word)).any() == (not erase)


def test_pieces_join_to_the_text_and_only_the_answer_is_trained():
    messages = erase_prompt(TeacherExample("detailed", "task", "the answer"))
    pieces = chatml_segments(messages)
    assert "".join(p for p, _ in pieces) == chatml(messages)
    assert [p for p, t in pieces if t] == ["the answer<|im_end|>"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_loss_and_gradients_equal_the_reference_model_with_minus_100_labels(dtype):
    tokenizer = toy_tokenizer()
    rows = [training_ids(erase_prompt(teacher_example(d)), tokenizer) for d in DIGITS[1:3]]
    t = max(len(i) for i, _ in rows)
    ids = torch.full((2, t), tokenizer.pad_token_id)
    trained = torch.zeros(2, t, dtype=torch.bool)
    for k, (i, m) in enumerate(rows):
        ids[k, : len(i)], trained[k, : len(m)] = i, m
    labels = masked_labels(ids, trained)
    torch.manual_seed(0)
    ours, reference = ROWS["llama-mha"].pair(vocab_size=len(tokenizer), dtype=dtype)
    ref_loss = reference(ids, labels=labels).loss
    our_loss = causal_lm_loss(ours(ids), labels)
    # transformers upcasts the logits to float32 for the loss, also from float64: float32's tolerance
    assert our_loss.dtype == dtype  # ours keeps float64
    torch.testing.assert_close(our_loss.to(ref_loss.dtype), ref_loss, rtol=1e-6, atol=1e-6)
    ref_loss.backward()
    our_loss.backward()
    ref_grads = dict(reference.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        torch.testing.assert_close(p.grad, ref_grads[name].grad, rtol=1e-5, atol=1e-6)


def test_the_step_and_direct_strategies_follow_the_list_length():
    assert teacher_example([4, 4]).system == DIRECT_SYSTEM
    assert teacher_example([4, 4]).answer == "answer 8"
    assert teacher_example([4, 4, 4]).system == STEP_SYSTEM
    assert teacher_example([4, 4, 4]).answer == "4 8 2 answer 2"


def test_bad_input_is_a_value_error():
    with pytest.raises(ValueError, match="user must be a non-empty str"):
        TeacherExample("s", "", "a")
    with pytest.raises(ValueError, match="must not contain the ChatML marker <|im_end|>"):
        TeacherExample("s", "u", "a<|im_end|>")
    with pytest.raises(ValueError, match="generic must be a non-empty str"):
        erase_prompt(TeacherExample("s", "u", "a"), generic="  ")
    with pytest.raises(ValueError, match="role'\\] must be one of"):
        chatml([{"role": "tool", "content": "x"}])
    with pytest.raises(ValueError, match="no assistant message"):
        training_ids([{"role": "user", "content": "x"}], toy_tokenizer())
    with pytest.raises(ValueError, match="digits must be"):
        teacher_example([10])
