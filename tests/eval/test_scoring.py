"""Our continuation scorer against lm-evaluation-harness's ``HFLM.loglikelihood`` (lm-eval 0.4.13):
same model, same tokenizer (trained here), same requests; log-likelihoods and greedy flags equal."""

from __future__ import annotations

import pytest
import torch

from demos.eval.harness_reference import harness_loglikelihood, train_tokenizer
from demos.eval.scoring import encode_pair, loglikelihood, max_length_of
from demos.models.llama import LlamaLM
from demos.toys.benchmarks import corpus, tiny_llama

PAIRS = [
    ("Question: Which gas do plants take in?\nAnswer:", " carbon dioxide"),
    ("Question: Which gas do plants take in?\nAnswer: ", "oxygen"),  # the space moves over
    ("Question: Which gas?\nAnswer:  ", "helium"),  # two trailing spaces
    ("", "Which gas do plants take in"),  # empty context: BOS (or EOS) stands in
    ("A man sprays the car", "s with a hose."),  # a merge across the boundary
    ("Köln is a city in", " Deutschland — größer als Bonn."),  # multi-byte characters
    ("the Sun " * 400, " the Moon"),  # longer than the window: cut from the left
]


@pytest.fixture(scope="module", params=[True, False], ids=["with BOS", "without BOS"])
def tokenizer(request):
    return train_tokenizer(corpus(), vocab_size=400, bos=request.param)


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_llama(len(tokenizer), seed=0, max_position_embeddings=512)


def greedy_pairs(model, tokenizer, n=3):
    """Requests whose continuation is the model's own greedy text, so is_greedy can be True."""
    pairs = []
    for context in ("Question: What is", "The following are", "Runners line"):
        ids = tokenizer.encode(context)
        for _ in range(n):
            logits = model(torch.tensor([ids])).logits[0, -1]
            ids = ids + [int(logits.argmax())]
        continuation = tokenizer.decode(ids[-n:])
        if continuation.strip():
            pairs.append((context, continuation))
    return pairs


def assert_same(ours, reference, atol=1e-5):
    assert len(ours) == len(reference) > 0
    for (ll, greedy), (ref_ll, ref_greedy) in zip(ours, reference, strict=True):
        assert isinstance(ll, float) and torch.isfinite(torch.tensor(ll))
        assert greedy == ref_greedy
        torch.testing.assert_close(ll, ref_ll, atol=atol, rtol=1e-6)


def test_loglikelihood_equals_hflm(model, tokenizer):
    pairs = PAIRS + greedy_pairs(model, tokenizer)
    ours = loglikelihood(model, tokenizer, pairs)
    reference = harness_loglikelihood(model, tokenizer, pairs)
    assert_same(ours, reference)
    assert any(greedy for _, greedy in reference), "no greedy continuation: the flag is untested"
    assert not all(greedy for _, greedy in reference)


def test_our_llama_scores_like_hflm_on_transformers_llama(model, tokenizer):
    # no max_length given: our config carries the checkpoint's max_position_embeddings (512), the
    # window HFLM takes from the transformers config; the 400-"the Sun" request is cut to it
    ours_model = LlamaLM.from_hf(model).eval()
    assert ours_model.config.max_position_embeddings == model.config.max_position_embeddings
    over_long = [p for p in PAIRS if len(sum(encode_pair(tokenizer, *p), [])) > 513]
    assert over_long, "no request longer than the window: the cut is untested"
    ours = loglikelihood(ours_model, tokenizer, PAIRS)
    assert_same(ours, harness_loglikelihood(model, tokenizer, PAIRS))
    # the old behaviour (a 2,048-token window) scores the over-long request differently
    wide = loglikelihood(ours_model, tokenizer, over_long, max_length=2048)
    narrow = loglikelihood(ours_model, tokenizer, over_long)
    assert all(abs(a[0] - b[0]) > 1e-3 for a, b in zip(wide, narrow, strict=True))


def test_an_empty_continuation_after_a_space_scores_the_space_as_hflm(model, tokenizer):
    """("Answer: ", ""): the trailing space moves to the continuation, and the harness scores it."""
    pairs = [("Question: Which gas?\nAnswer: ", ""), ("Answer:  ", "")]
    assert_same(
        loglikelihood(model, tokenizer, pairs), harness_loglikelihood(model, tokenizer, pairs)
    )


def test_a_whitespace_only_context_without_bos(model):
    """Without BOS, "   " leaves no context token once its spaces move over: the harness stops on
    an assert (shown), ours names the cause. With BOS both score it."""
    without = train_tokenizer(corpus(), vocab_size=400, bos=False)
    with pytest.raises(AssertionError):
        harness_loglikelihood(model, without, [("   ", "oxygen")])
    with pytest.raises(ValueError, match=r"context '   ' is only whitespace.*adds no BOS"):
        loglikelihood(model, without, [("   ", "oxygen")])
    with_bos = train_tokenizer(corpus(), vocab_size=400, bos=True)
    assert_same(
        loglikelihood(model, with_bos, [("   ", "oxygen")]),
        harness_loglikelihood(model, with_bos, [("   ", "oxygen")]),
    )


@pytest.mark.parametrize("add_bos_token", [True, False])
def test_add_bos_token_override_equals_hflm(model, tokenizer, add_bos_token):
    ours = loglikelihood(model, tokenizer, PAIRS[:5], add_bos_token=add_bos_token)
    reference = harness_loglikelihood(model, tokenizer, PAIRS[:5], add_bos_token=add_bos_token)
    assert_same(ours, reference)


@pytest.mark.parametrize("batch_size", [3, 16])
def test_batched_scoring_equals_hflm_batched(model, tokenizer, batch_size):
    """Right-padded batches: equal to HFLM's own batches up to float32 rounding."""
    pairs = PAIRS + greedy_pairs(model, tokenizer)
    ours = loglikelihood(model, tokenizer, pairs, batch_size=batch_size)
    reference = harness_loglikelihood(model, tokenizer, pairs, batch_size=batch_size)
    assert_same(ours, reference, atol=1e-4)


def test_short_window_equals_hflm(model, tokenizer):
    pairs = [p for p in PAIRS if len(encode_pair(tokenizer, *p)[1]) <= 12]
    assert len(pairs) >= 5
    ours = loglikelihood(model, tokenizer, pairs, max_length=12)
    assert_same(ours, harness_loglikelihood(model, tokenizer, pairs, max_length=12))


def test_continuation_longer_than_the_window_raises(model, tokenizer):
    # the harness stops on an assert here; we say what is wrong
    with pytest.raises(ValueError, match="more than max_length"):
        loglikelihood(model, tokenizer, [("Köln", " " + "größer als Bonn " * 10)], max_length=12)


def test_bos_changes_the_score(model):
    """The BOS token is not a formality: dropping it changes every log-likelihood."""
    tok = train_tokenizer(corpus(), vocab_size=400, bos=True)
    with_bos = loglikelihood(model, tok, PAIRS[:3])
    without = loglikelihood(model, tok, PAIRS[:3], add_bos_token=False)
    assert all(abs(a[0] - b[0]) > 1e-3 for a, b in zip(with_bos, without, strict=True))


def test_split_at_the_space(tokenizer):
    context_ids, continuation_ids = encode_pair(tokenizer, "Answer: ", "oxygen")
    assert tokenizer.decode(continuation_ids) == " oxygen"
    assert encode_pair(tokenizer, "Answer:", " oxygen") == (context_ids, continuation_ids)


def test_max_length_resolution(model, tokenizer):
    assert max_length_of(model, tokenizer) == model.config.max_position_embeddings
    assert max_length_of(LlamaLM.from_hf(model), tokenizer) == 512  # read from the checkpoint
    assert max_length_of(object()) == 2048


@pytest.mark.parametrize(
    "requests, words",
    [
        ([("context", "")], "continuation is empty"),
        ([("context", 3)], "pair of strings"),
        ([("only one",)], "(context, continuation) pair"),
        (("context", "continuation"), "got one pair"),
    ],
)
def test_bad_requests_raise(model, tokenizer, requests, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        loglikelihood(model, tokenizer, requests)


def test_bad_max_length_raises(model, tokenizer):
    with pytest.raises(ValueError, match="max_length"):
        loglikelihood(model, tokenizer, PAIRS[:1], max_length=0)
