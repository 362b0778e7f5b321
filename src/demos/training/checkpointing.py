"""Gradient checkpointing: keep fewer activations for the backward pass, recompute the rest.

Backpropagation needs the activations of the forward pass; a decoder keeps every block's, so their
memory grows with depth times length. Checkpointing runs a block without keeping what is inside
it, keeps only the block's input, and runs the block again during the backward pass to get the
rest back [chen2016sublinear]: the gradients are the same, paid for with one more forward pass of
the checkpointed blocks. Vicuna's fine-tune used it to raise the context from 512 to 2048 tokens
[chiang2023vicuna]. As transformers does, every ``every``-th block is checkpointed (``every=1``: all
of them); the others keep their activations, which trades memory back for speed.

Axes:
    b  batch
    t  sequence length
    c  hidden size
    v  vocabulary size
    L  number of blocks

References:
    chen2016sublinear  Training Deep Nets with Sublinear Memory Cost (drop activations, recompute them).
    chiang2023vicuna   gradient checkpointing in Vicuna's training recipe.

Reference implementation: transformers==5.23.0, modeling_utils.py::PreTrainedModel.activation_checkpointing_enable
(``every_n_layers``: decoder layer ``i`` is checkpointed when ``i % every_n_layers == 0``,
``use_reentrant=False``); torch==2.13.0, ``torch.utils.checkpoint.checkpoint``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from demos.generation import position_ids
from demos.validation import check_positive_int, check_token_ids


def checkpointed_forward(
    model: nn.Module, input_ids: torch.Tensor, every: int | None = 1
) -> torch.Tensor:
    """A :class:`~demos.models.decoder.DecoderLM`'s logits with every ``every``-th block checkpointed.

    Args:
        model: a decoder of ``demos.models`` (``embed``, ``blocks``, ``norm_f``, ``lm_head``).
        input_ids: ``(b, t)`` token ids (no padding, no cache: a training batch).
        every: block ``i`` is checkpointed when ``i % every == 0`` (a positive integer; 1: every
            block, as transformers' default); ``None`` keeps every activation.

    Returns:
        ``(b, t, v)`` logits, equal to ``model(input_ids)``; their gradients too.

    Raises:
        ValueError: ids outside the vocabulary or not ``(b, t)``; ``every`` not a positive integer.
    """
    check_token_ids(input_ids, model.config.vocab_size)
    if every is not None:
        check_positive_int("every", every)
    t = input_ids.shape[1]
    x = model.embed(input_ids)  # (b, t, c)
    cos_sin = model.position_embeddings(position_ids(t, 0, None, input_ids.device), x.dtype)
    for i, block in enumerate(model.blocks):
        if every is not None and i % every == 0:
            # keeps x and cos_sin; what the block computes inside is recomputed in the backward pass
            x = checkpoint(block, x, cos_sin, None, None, use_reentrant=False)  # (b, t, c)
        else:
            x = block(x, cos_sin, None, None)  # (b, t, c)
    return model.lm_head(model.norm_f(x))  # (b, t, v)


def saved_activation_bytes(
    fn: Callable[[], torch.Tensor], exclude: Sequence[torch.Tensor] = ()
) -> int:
    """Bytes of the tensors autograd keeps for the backward pass while ``fn()`` runs its forward.

    Counts each storage once and leaves out ``exclude`` (pass the model's parameters: they are
    kept anyway). With checkpointing, a block's inside is kept only while the backward pass
    recomputes it, so this is the memory held between the forward and the backward pass.
    Returns the count; ``fn``'s output is dropped.
    """
    skip = {p.untyped_storage().data_ptr() for p in exclude}
    seen: dict[int, int] = {}

    def pack(x: torch.Tensor) -> torch.Tensor:
        storage = x.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[storage.data_ptr()] = storage.nbytes()
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        fn()
    return sum(seen.values())


def activation_bytes(
    model: nn.Module, input_ids: torch.Tensor, every: int | None
) -> tuple[int, int]:
    """``(kept, recomputed)``: the activation bytes the forward pass keeps for the backward pass
    (parameters left out), and the most the backward pass holds again while it recomputes one
    checkpointed block (0 without checkpointing). Their sum approximates the peak of activation
    memory.

    Raises:
        ValueError: as :func:`checkpointed_forward`.
    """
    params = list(model.parameters())
    kept = saved_activation_bytes(lambda: checkpointed_forward(model, input_ids, every), params)
    if every is None:
        return kept, 0
    x = model.embed(input_ids).detach()  # (b, t, c): every block's input has this size
    t = input_ids.shape[1]
    cos_sin = model.position_embeddings(position_ids(t, 0, None, input_ids.device), x.dtype)
    recomputed = max(
        saved_activation_bytes(lambda b=block: b(x, cos_sin, None, None), params)
        for i, block in enumerate(model.blocks)
        if i % every == 0
    )
    return kept, recomputed
