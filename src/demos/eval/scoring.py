"""Continuation log-likelihoods: how lm-evaluation-harness scores a multiple-choice answer.

Every multiple-choice benchmark of the Open LLM Leaderboard reduces to one request, a pair of strings
``(context, continuation)``: the log-probability a causal LM gives the continuation's tokens after
the context's, and whether each of them is the greedy (argmax) token. Tokenisation decides most of
the number: where the context ends, whether a BOS token comes first, what is cut when it is too long.

Axes: ``t`` tokens fed to the model, ``v`` vocabulary.

References: gao2023harness (lm-evaluation-harness).

Reference implementation: lm-eval==0.4.13, ``lm_eval/api/model.py::TemplateLM.loglikelihood`` and
``_encode_pair``, ``lm_eval/models/huggingface.py::HFLM.tok_encode``, ``prefix_token_id``,
``_loglikelihood_tokens`` (causal branch), ``lm_eval/models/utils.py::resolve_max_length``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from demos.validation import check_positive_int

DEFAULT_MAX_LENGTH = 2048  # lm-eval's models/utils.py::DEFAULT_MAX_LENGTH


def max_length_of(model: Any, tokenizer: Any = None) -> int:
    """The longest input the harness feeds ``model``: the first of the config's ``n_positions``,
    ``max_position_embeddings``, ``n_ctx``, then the tokenizer's ``model_max_length`` (unless it is
    transformers' "unset" 1e30), then 2048 (``resolve_max_length``)."""
    config = getattr(model, "config", None)
    config = getattr(config, "text_config", None) or config
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, name, None)
        if value is not None:
            return int(value)
    tok_max = getattr(tokenizer, "model_max_length", None)
    if tok_max is not None and tok_max != int(1e30):
        return int(tok_max)
    return DEFAULT_MAX_LENGTH


def prefix_token_id(tokenizer: Any) -> int:
    """The token an empty context is replaced by: BOS if the tokenizer has one, else EOS."""
    token = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if token is None:
        raise ValueError("an empty context needs a BOS or EOS token; the tokenizer has neither")
    return token


def encode(tokenizer: Any, text: str, add_bos_token: bool | None = None) -> list[int]:
    """``tokenizer.encode`` as ``HFLM.tok_encode`` calls it: with the tokenizer's own special tokens
    unless ``add_bos_token`` says otherwise, and none when ``text`` already starts with the BOS text."""
    kwargs = {} if add_bos_token is None else {"add_special_tokens": add_bos_token}
    prefix = (
        tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    )
    prefix_text = "" if prefix is None else tokenizer.decode(prefix)
    if prefix_text and text.startswith(prefix_text):
        kwargs["add_special_tokens"] = False
    return list(tokenizer.encode(text, **kwargs))


def encode_pair(
    tokenizer: Any, context: str, continuation: str, add_bos_token: bool | None = None
) -> tuple[list[int], list[int]]:
    """Token ids of one request, split as the harness splits them.

    1. An empty context becomes the prefix token (BOS, else EOS), unless the continuation's own
       first token is that token.
    2. Trailing spaces of the context move to the front of the continuation (``"Answer: "`` +
       ``"Paris"`` is scored as ``"Answer:"`` + ``" Paris"``): BPE vocabularies glue a space to the
       word after it.
    3. The whole string is encoded once and cut after the context's own token count, so the
       continuation's tokens are those of the full text (a merge across the boundary counts on the
       continuation's side).

    An empty continuation after a context with trailing spaces is scored as the harness scores
    it: ``("Answer: ", "")`` is ``("Answer:", " ")``, the log-probability of the moved space.

    Returns:
        ``(context_ids, continuation_ids)``, each a list of ints.

    Raises:
        ValueError: an empty continuation with no trailing space before it (nothing to score; the
            harness stops on an ``assert``), non-string arguments, or a context of whitespace only
            with a tokenizer that adds no BOS: once its spaces move over, the context has no token
            to predict the continuation's first from (the harness stops on an ``assert`` too; an
            empty context ``""`` is scored after the EOS token instead).
    """
    if not isinstance(context, str) or not isinstance(continuation, str):
        raise ValueError(
            f"a request is a (context, continuation) pair of strings, got "
            f"({type(context).__name__}, {type(continuation).__name__})"
        )
    if continuation == "" and context == context.rstrip():
        raise ValueError(f"continuation is empty for context {context[-40:]!r}: nothing to score")
    if context == "":
        cont = encode(tokenizer, continuation, add_bos_token=False)
        prefix = prefix_token_id(tokenizer)
        return ([prefix], cont) if cont[0] != prefix else (cont[:1], cont[1:])
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = encode(tokenizer, context + continuation, add_bos_token)
    context_ids = encode(tokenizer, context, add_bos_token)
    if not context_ids:
        raise ValueError(
            f"the context {context + continuation[:n_spaces]!r} is only whitespace and the "
            "tokenizer adds no BOS token: once the spaces move to the continuation, no token is "
            "left to predict its first token from. Pass the context '' (scored after the BOS or "
            "EOS token, as the harness does) or add_bos_token=True"
        )
    return context_ids, whole[len(context_ids) :]


def _logits(model: Callable[..., Any], input_ids: torch.Tensor) -> torch.Tensor:
    """``(1, t, v)`` logits from a demos LM (returns a tensor) or a transformers one (``.logits``)."""
    out = model(input_ids)
    return out if isinstance(out, torch.Tensor) else out.logits


@torch.no_grad()
def score_tokens(
    model: Callable[..., Any], requests: Sequence[tuple[list[int], list[int]]], max_length: int
) -> list[tuple[float, bool]]:
    """Log-probability of each request's continuation ids after its context ids, and whether every
    continuation token is the greedy one, for ``b`` requests in one forward pass.

    Each input is the last ``max_length + 1`` tokens of context + continuation minus the last
    (which is only predicted, never fed): a long context loses its *start*. Rows are padded on the
    right, as HFLM pads a batch; a causal model's logits before the padding cannot see it. The
    sums are taken in the logits' dtype, at least float32.
    """
    inputs = []
    for context_ids, continuation_ids in requests:
        if not continuation_ids:
            raise ValueError("continuation has no tokens: nothing to score")
        if not context_ids:
            raise ValueError(
                "context has no tokens: the continuation's first token has nothing to be "
                "predicted from (start the context with the BOS or EOS token)"
            )
        if len(continuation_ids) > max_length:
            raise ValueError(
                f"continuation has {len(continuation_ids)} tokens, "
                f"more than max_length ({max_length})"
            )
        inputs.append((context_ids + continuation_ids)[-(max_length + 1) :][:-1])
    t = max(len(tokens) for tokens in inputs)
    device = next(iter(getattr(model, "parameters", lambda: iter([]))()), torch.empty(0)).device
    padded = [tokens + [0] * (t - len(tokens)) for tokens in inputs]  # right padding
    logits = _logits(model, torch.tensor(padded, dtype=torch.long, device=device))  # (b, t, v)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    results = []
    for row, tokens, (_, continuation_ids) in zip(logits, inputs, requests, strict=True):
        n = len(continuation_ids)
        logprobs = torch.log_softmax(row[: len(tokens)], dim=-1)[-n:]  # (n, v)
        target = torch.tensor(continuation_ids, device=logprobs.device)  # (n,)
        greedy = bool((logprobs.argmax(dim=-1) == target).all())
        results.append((float(logprobs.gather(1, target[:, None]).sum()), greedy))
    return results


def loglikelihood(
    model: Callable[..., Any],
    tokenizer: Any,
    requests: Sequence[tuple[str, str]],
    *,
    max_length: int | None = None,
    add_bos_token: bool | None = None,
    batch_size: int = 1,
) -> list[tuple[float, bool]]:
    """``HFLM.loglikelihood`` from scratch: one ``(log-probability, is_greedy)`` per request.

    Args:
        model: a causal LM called as ``model(input_ids)`` with ``(1, t)`` ids, returning ``(1, t, v)``
            logits or an object with ``.logits`` (demos' LMs and transformers models both work).
        tokenizer: a transformers tokenizer (``encode``, ``decode``, ``bos_token_id``,
            ``eos_token_id``).
        requests: ``(context, continuation)`` string pairs, as in lm-eval's ``Instance.args``.
        max_length: the model's window; default as the harness resolves it (:func:`max_length_of`).
        add_bos_token: None (the harness's default): the tokenizer's own choice; True/False force it.
        batch_size: requests per forward pass, right-padded (1, the setting compared with HFLM,
            feeds each request alone; more is faster and equal up to float rounding).

    Returns:
        A list of ``(float, bool)``: the continuation's summed log-probability (natural log) and
        whether every continuation token is the argmax of its position.

    Raises:
        ValueError: an empty continuation after a context without trailing spaces, a request
            that is not a pair of strings, a bad ``max_length``, an empty context with a
            tokenizer without BOS and EOS, or a whitespace-only context with a tokenizer that
            adds no BOS (:func:`encode_pair`).
    """
    if isinstance(requests, tuple) and len(requests) == 2 and isinstance(requests[0], str):
        raise ValueError("requests must be a list of (context, continuation) pairs, got one pair")
    if max_length is None:
        max_length = max_length_of(model, tokenizer)
    check_positive_int("max_length", max_length)
    check_positive_int("batch_size", batch_size)
    encoded = []
    for request in requests:
        if not isinstance(request, tuple | list) or len(request) != 2:
            raise ValueError(
                f"each request must be a (context, continuation) pair, got {request!r}"
            )
        encoded.append(encode_pair(tokenizer, *request, add_bos_token))
    results = []
    for start in range(0, len(encoded), batch_size):
        results += score_tokens(model, encoded[start : start + batch_size], max_length)
    return results
