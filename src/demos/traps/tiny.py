"""What the traps share: a tiny random transformers model, token ids, a seeded block, and the logit
errors of a right and a wrong model against the reference.

Every trap runs in a few milliseconds on a model of two layers and width 32, built by
:func:`demos.testing.tiny_model` from the tiny configs the tests use (:data:`demos.testing.TINY`):
eager attention, visible random weights, nothing downloaded. Each ``measure`` calls :func:`seeded`
so that it draws the same numbers every time and leaves the caller's random state alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

from demos.testing import TINY, tiny_model
from demos.traps import Measured

__all__ = [
    "TINY",
    "measure_logits",
    "measure_models",
    "seeded",
    "seeded_reference",
    "tiny_reference",
    "token_ids",
]


@contextlib.contextmanager
def seeded(seed: int = 0) -> Iterator[None]:
    """Run the block with ``torch.manual_seed(seed)``; restore the random state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def tiny_reference(model_type: str, **overrides) -> nn.Module:
    """A transformers ``...ForCausalLM`` of :data:`TINY`'s shape, random weights, fp32, eval mode
    (:func:`demos.testing.tiny_model`; ``dtype=`` among ``overrides`` casts its parameters)."""
    return tiny_model(model_type, **overrides)


def token_ids(vocab_size: int = 97, b: int = 2, t: int = 12) -> torch.Tensor:
    """``(b, t)`` random token ids (draw them inside :func:`seeded`)."""
    return torch.randint(0, vocab_size, (b, t))


def seeded_reference(model_type: str, **overrides) -> tuple[nn.Module, torch.Tensor]:
    """``(reference, ids)``: :func:`tiny_reference` and ``(2, 12)`` :func:`token_ids` for it,
    both drawn inside ``seeded(0)``, so every call gives the same pair."""
    with seeded(0):
        reference = tiny_reference(model_type, **overrides)
        return reference, token_ids(reference.config.vocab_size)


def measure_models(
    reference: nn.Module,
    right: nn.Module,
    wrong: nn.Module,
    ids: torch.Tensor,
    quantity: str,
    tolerance: float | None = None,
) -> Measured:
    """max |logits - the reference's| of ``right`` and of ``wrong`` on ``ids (b, t)``, without
    gradients, in float64 (:func:`demos.book.max_abs_diff`): for traps whose wrong version is a
    second model with the same weights. ``tolerance=None``: ``1e-5 * max(1, max |logits|)``, fp32
    rounding relative to the size of the reference's logits."""
    with torch.no_grad():
        expected = reference(ids).logits  # (b, t, v)
        right_logits, wrong_logits = right(ids), wrong(ids)
    if tolerance is None:
        tolerance = 1e-5 * max(1.0, expected.abs().max().item())
    return Measured.of(right_logits, wrong_logits, expected, tolerance, quantity)


def measure_logits(
    model_type: str,
    ours_class: type,
    wrong: Callable[[nn.Module], contextlib.AbstractContextManager],
    tolerance: float,
    quantity: str,
    **overrides,
) -> Measured:
    """Logits of ``ours_class.from_hf(reference)`` against the tiny reference, then again inside
    ``wrong(ours)``, a context that plants the mistake and takes it out again."""
    reference, ids = seeded_reference(model_type, **overrides)
    with torch.no_grad():
        expected = reference(ids).logits  # (b, t, v)
        ours = ours_class.from_hf(reference).eval()
        right = ours(ids)
        with wrong(ours):
            wrong_logits = ours(ids)
    return Measured.of(right, wrong_logits, expected, tolerance, quantity)
