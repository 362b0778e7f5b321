"""Vicuna's prompt equals FastChat's own ``vicuna_v1.1`` template and our Jinja template run by transformers'
``apply_chat_template``, string for string; the label mask trains exactly the assistant's replies, decided on
the whole string; the masked loss on a tokenised conversation equals transformers' model loss (values and
gradients); malformed conversations are a ValueError."""

from __future__ import annotations

import pytest
import torch
from fastchat.conversation import get_conv_template
from hypothesis import given, settings
from hypothesis import strategies as st

from demos.catalog import ROWS
from demos.toys.vicuna import CONVERSATIONS, tokenizer
from demos.training.conversation import (
    VICUNA_CHAT_TEMPLATE,
    render_vicuna,
    tokenize_conversations,
    trained_tokens,
    vicuna_prompt,
)
from demos.training.sft import IGNORE_INDEX, causal_lm_loss, masked_labels


def fastchat_prompt(messages, add_generation_prompt=False):
    """FastChat's own rendering (fschat 0.2.36): its template, its system message, its roles."""
    conv = get_conv_template("vicuna_v1.1")
    if messages[0]["role"] == "system":
        conv.set_system_message(messages[0]["content"])
        messages = messages[1:]
    for m in messages:
        conv.append_message(conv.roles[0 if m["role"] == "user" else 1], m["content"])
    if add_generation_prompt:
        conv.append_message(conv.roles[1], None)
    return conv.get_prompt()


text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=30)


@st.composite
def conversations(draw):
    n = draw(st.integers(1, 6))
    turns = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": draw(text)} for i in range(n)
    ]
    if draw(st.booleans()):
        turns.insert(0, {"role": "system", "content": draw(text)})
    return turns


@settings(max_examples=80, deadline=None)
@given(messages=conversations(), add_generation_prompt=st.booleans())
def test_prompt_equals_fastchat_and_the_chat_template(messages, add_generation_prompt):
    ours = vicuna_prompt(messages, add_generation_prompt)
    assert ours == fastchat_prompt(messages, add_generation_prompt)
    templated = tokenizer().apply_chat_template(
        messages,
        tokenize=False,
        chat_template=VICUNA_CHAT_TEMPLATE,
        add_generation_prompt=add_generation_prompt,
    )
    assert templated == ours


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_the_book_conversations_equal_fastchat(messages):
    assert vicuna_prompt(messages) == fastchat_prompt(messages)
    assert vicuna_prompt(messages).startswith(
        messages[0]["content"] if messages[0]["role"] == "system" else "A chat between"
    )


@settings(max_examples=50, deadline=None)
@given(messages=conversations())
def test_spans_are_the_replies_and_their_end_token(messages):
    text, spans = render_vicuna(messages)
    replies = [m["content"] + "</s>" for m in messages if m["role"] == "assistant"]
    assert [text[s:e] for s, e in spans] == replies


def test_trained_tokens_are_the_replies_and_nothing_else():
    """Decode the trained tokens of the whole string: the replies come back (plus at most the space
    that BPE glues to a reply's first word); every other token is untrained."""
    tok = tokenizer()
    for messages in CONVERSATIONS:
        text, spans = render_vicuna(messages)
        enc = tok(text, return_offsets_mapping=True)
        trained = trained_tokens(torch.tensor(enc["offset_mapping"]), spans)
        covered = [False] * len(text)  # written here: which characters the trained tokens cover
        for (a, b), on in zip(enc["offset_mapping"], trained.tolist(), strict=True):
            for c in range(a, b):
                covered[c] = covered[c] or on
        inside = [any(s <= c < e for s, e in spans) for c in range(len(text))]
        assert all(covered[c] for c in range(len(text)) if inside[c])  # every reply character
        extra = [c for c in range(len(text)) if covered[c] and not inside[c]]
        assert all(text[c] == " " and inside[c + 1] for c in extra), extra  # only a glued space
        assert trained.any() and not trained.all()


def test_straddling_token_is_trained_and_turn_by_turn_differs():
    """GPT-2-style BPE glues the space after 'ASSISTANT:' to the reply's first letters, one token
    across the boundary: trained, as FastChat trains Llama's '▁In'. Tokenising the pieces apart gives
    other tokens."""
    tok = tokenizer()
    text, spans = render_vicuna(CONVERSATIONS[0])
    enc = tok(text, return_offsets_mapping=True)
    offsets = torch.tensor(enc["offset_mapping"])
    trained = trained_tokens(offsets, spans)
    first = next(i for i, (a, b) in enumerate(enc["offset_mapping"]) if a < spans[0][0] < b)
    a, b = enc["offset_mapping"][first]
    assert a == spans[0][0] - 1 and text[a] == " " and b - a > 1 and trained[first]
    assert not trained[first - 1]  # the ':' of "ASSISTANT:"
    cuts = sorted({0, len(text), *(x for span in spans for x in span)})
    pieces = [text[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    per_piece = [tok.bos_token_id] + [
        i for p in pieces for i in tok(p, add_special_tokens=False)["input_ids"]
    ]
    assert per_piece != enc["input_ids"]


def test_trained_tokens_overlap_rule_by_hand():
    offsets = torch.tensor([[0, 0], [0, 3], [3, 5], [5, 9], [9, 10], [10, 14]])
    got = trained_tokens(offsets, [(4, 9), (12, 13)])
    assert got.tolist() == [False, False, True, True, False, True]


def test_batch_is_right_padded_and_padding_is_not_trained():
    tok = tokenizer()
    ids, trained = tokenize_conversations(tok, CONVERSATIONS)
    lengths = [len(tok(vicuna_prompt(c))["input_ids"]) for c in CONVERSATIONS]
    assert ids.shape == (3, max(lengths))
    for row, n in enumerate(lengths):
        assert (ids[row, n:] == tok.eos_token_id).all() and not trained[row, n:].any()
        assert torch.equal(
            ids[row, :n], torch.tensor(tok(vicuna_prompt(CONVERSATIONS[row]))["input_ids"])
        )


def test_masked_loss_equals_transformers_model_loss():
    """Our loss on our model's logits vs LlamaForCausalLM(ids, labels=labels).loss: values and every
    parameter's gradient, on the catalogue row of Vicuna (llama-mha), fp32 (transformers computes its
    loss in fp32 whatever the model's dtype; fp64 against ForCausalLMLoss is in test_sft.py)."""
    tok = tokenizer()
    ids, trained = tokenize_conversations(tok, CONVERSATIONS)
    labels = masked_labels(ids, trained)
    assert (labels == IGNORE_INDEX).any() and (labels != IGNORE_INDEX).any()
    ours, reference = ROWS["llama-mha"].pair(vocab_size=len(tok))
    ours_loss = causal_lm_loss(ours(ids), labels)
    ref_loss = reference(ids, labels=labels).loss
    ours_loss.backward()
    ref_loss.backward()
    tol = 1e-5  # the suite's fp32 parity tolerance (tests/conftest.py)
    torch.testing.assert_close(ours_loss, ref_loss, atol=tol, rtol=tol)
    ref_params = dict(reference.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        scale = max(1.0, ref_params[name].grad.abs().max().item())
        torch.testing.assert_close(p.grad, ref_params[name].grad, atol=tol * scale, rtol=tol)


BAD = [
    ([], "non-empty list"),
    ("USER: hi", "non-empty list"),
    ([{"role": "user"}], "keys 'role' and 'content'"),
    ([{"role": "user", "content": ""}], "non-empty string"),
    ([{"role": "user", "content": 3}], "non-empty string"),
    ([{"role": "assistant", "content": "hi"}], "expected 'user'"),
    ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "expected 'assistant'"),
    (
        [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}],
        "expected 'assistant'",
    ),
    ([{"role": "system", "content": "s"}], None),  # a system prompt alone is fine
]


@pytest.mark.parametrize("messages, match", BAD)
def test_malformed_conversations_are_a_value_error(messages, match):
    if match is None:
        assert vicuna_prompt(messages) == fastchat_prompt(messages)
        return
    with pytest.raises(ValueError, match=match):
        render_vicuna(messages)


@pytest.mark.parametrize(
    "offsets",
    [torch.zeros(3, 2), torch.zeros(3, 3, dtype=torch.long), [[0, 1]], torch.zeros(3, 2) > 0],
)
def test_trained_tokens_needs_integer_offsets(offsets):
    with pytest.raises(ValueError, match=r"offsets must be an integer tensor of shape \(t, 2\)"):
        trained_tokens(offsets, [(0, 1)])


def test_the_template_refuses_turns_out_of_order():
    from jinja2.exceptions import TemplateError

    with pytest.raises(TemplateError, match="alternate"):
        tokenizer().apply_chat_template(
            [{"role": "assistant", "content": "hi"}],
            tokenize=False,
            chat_template=VICUNA_CHAT_TEMPLATE,
        )
