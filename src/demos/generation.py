"""One ``generate`` for every language model here: greedy or sampled, one prompt or a left-padded batch.

A model takes part by keeping one protocol: ``new_cache(batch_size)`` returns an empty cache (a list
of KV caches, or Mamba's recurrent state), and ``forward(input_ids, cache=None, attention_mask=None)``
returns ``(b, t, v)`` logits for ``t`` new tokens that continue what the cache holds. Prompts of
different lengths are padded on the left and described by an ``attention_mask``; each token's
position is the number of real tokens before it, as in transformers.

Axes:
    b  batch
    t  new tokens in this call
    s  all tokens so far (cache + new), the width of ``attention_mask``
    v  vocabulary size

Reference implementation:
    transformers==5.23.0, generation/utils.py::GenerationMixin._sample (greedy and multinomial
    decoding), ::GenerationMixin._prepare_position_ids_for_generation;
    generation/logits_process.py::TemperatureLogitsWarper, ::TopKLogitsWarper
"""

from __future__ import annotations

from typing import Any

import torch

from demos.validation import check_attention_mask, check_finite_number, check_positive_int


def position_ids(
    t: int, past: int, attention_mask: torch.Tensor | None, device: torch.device
) -> torch.Tensor:
    """Positions of the ``t`` new tokens: ``(t,)`` without a mask, else ``(b, t)`` counted over real tokens.

    With a mask, a token's position is the number of real tokens before it (``cumsum - 1``);
    padding gets position 0, as in transformers' ``GenerationMixin._prepare_position_ids_for_generation``.
    """
    if attention_mask is None:
        return torch.arange(past, past + t, device=device)  # (t,)
    positions = attention_mask.long().cumsum(-1) - 1  # (b, s)
    positions = positions.masked_fill(attention_mask == 0, 0)
    return positions[:, -t:]  # (b, t)


def next_token(
    logits: torch.Tensor,
    do_sample: bool,
    temperature: float,
    top_k: int | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """``(b, v)`` logits of the last position -> ``(b, 1)`` next token ids (argmax, or a sample)."""
    if not do_sample:
        return logits.argmax(dim=-1, keepdim=True)  # (b, 1)
    logits = logits.float() / temperature  # (b, v)
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (b, 1): the k-th largest
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)  # (b, v)
    return torch.multinomial(probs, 1, generator=generator)  # (b, 1)


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    *,
    attention_mask: torch.Tensor | None = None,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
) -> torch.Tensor:
    """Decode ``max_new_tokens`` tokens with the model's cache: the prompt once, then one token a step.

    Args:
        model: keeps the protocol of the module docstring.
        input_ids: ``(b, t)`` prompt token ids; with padding, padded on the left.
        max_new_tokens: how many tokens to add (>= 1).
        attention_mask: ``(b, t)``, 1 for a real token, 0 for left padding; ``None`` means all real.
        do_sample: sample from ``softmax(logits / temperature)`` (top ``top_k`` only, if given)
            instead of taking the argmax.
        temperature, top_k: as in transformers' sampling (temperature first, then top-k).
        seed: seeds the ``torch.Generator`` that sampling draws from: the same seed gives the
            same tokens. ``None`` draws a fresh seed.

    Returns:
        ``(b, t + max_new_tokens)``: the prompt (padding included) followed by the new tokens.

    Raises:
        ValueError: ``max_new_tokens < 1``; ``input_ids`` not ``(b, t)``; a mask of another shape,
            not 0/1, with an empty row, or padded on the right; ``temperature <= 0`` or ``top_k < 1``
            (with or without ``do_sample``: greedy decoding ignores them, but a bad value is a
            mistake all the same).
    """
    check_positive_int("max_new_tokens", max_new_tokens)
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        got = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids)
        raise ValueError(f"input_ids must have shape (b, t), got {got}")
    b, t = input_ids.shape
    mask = check_attention_mask(attention_mask, b, t)
    if mask is not None and not bool(mask[:, -1].all()):
        raise ValueError("attention_mask must pad on the left: its last column must be all ones")
    # checked with or without sampling: a greedy call with temperature=-1 is a mistake all the same
    # (transformers only warns there that the value is unused)
    check_finite_number("temperature", temperature)  # None or a string: say so, not TypeError
    if not temperature > 0:
        raise ValueError(f"temperature ({temperature!r}) must be positive")
    if top_k is not None:
        check_positive_int("top_k", top_k)
    generator = None
    if do_sample:
        generator = torch.Generator(device=input_ids.device)
        generator.manual_seed(seed) if seed is not None else generator.seed()
    cache = model.new_cache(b)
    logits = model(input_ids, cache=cache, attention_mask=mask)  # (b, t, v): the prompt at once
    out = [input_ids]
    for step in range(max_new_tokens):
        next_id = next_token(logits[:, -1], do_sample, temperature, top_k, generator)  # (b, 1)
        out.append(next_id)
        if step + 1 < max_new_tokens:
            if mask is not None:
                mask = torch.cat([mask, mask.new_ones(b, 1)], dim=1)  # (b, s + 1)
            logits = model(next_id, cache=cache, attention_mask=mask)  # (b, 1, v)
    return torch.cat(out, dim=1)


class GenerationMixin:
    """Gives a language model ``.generate(input_ids, max_new_tokens, ...)``: see :func:`generate`."""

    def generate(
        self, input_ids: torch.Tensor, max_new_tokens: int, **options: Any
    ) -> torch.Tensor:
        """:func:`demos.generation.generate` with this model; ``options`` are its keywords."""
        return generate(self, input_ids, max_new_tokens, **options)


def same_greedy_tokens(
    ours: torch.nn.Module,
    reference: torch.nn.Module,
    prompt: torch.Tensor,
    max_new_tokens: int,
    attention_mask: torch.Tensor | None = None,
) -> bool:
    """Whether our ``generate`` and transformers' greedy ``reference.generate`` return the same
    tokens (prompt included) for a ``(b, t)`` prompt: the check a chapter's parity cell prints.

    ``attention_mask`` marks the real tokens of a left-padded batch (all of them if None).
    """
    mask = torch.ones_like(prompt) if attention_mask is None else attention_mask
    with torch.no_grad():
        expected = reference.generate(
            prompt, max_new_tokens=max_new_tokens, do_sample=False, attention_mask=mask
        )
    got = ours.generate(prompt, max_new_tokens, attention_mask=attention_mask)
    return torch.equal(got, expected)
