"""What the traps share: a tiny random transformers model, token ids and a seeded block.

Every trap runs in a few milliseconds on a model of two layers and width 32, built from a
transformers config with the fields of the tests' tiny configs (``tests/helpers.py``'s ``TINY``),
eager attention, visible random weights (:func:`demos.weights.randomize_weights_`), nothing
downloaded. Each ``measure`` calls :func:`seeded` so that it draws the same numbers every time and
leaves the caller's random state alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

from demos.traps import Measured
from demos.weights import randomize_weights_

_LLAMA = dict(
    vocab_size=97,
    hidden_size=32,
    intermediate_size=56,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    rms_norm_eps=1e-5,
)
TINY = {  # transformers model_type -> the fields of its tiny config
    "llama": _LLAMA,
    "mistral": {**_LLAMA, "sliding_window": 4},
    "falcon": dict(
        vocab_size=97,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_kv_heads=2,
        new_decoder_architecture=True,  # Falcon-40B/180B: grouped key/value heads
        max_position_embeddings=256,
    ),
}


@contextlib.contextmanager
def seeded(seed: int = 0) -> Iterator[None]:
    """Run the block with ``torch.manual_seed(seed)``; restore the random state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def tiny_reference(model_type: str, **overrides) -> nn.Module:
    """A transformers ``...ForCausalLM`` of :data:`TINY`'s shape, random weights, fp32, eval mode."""
    from transformers import AutoModelForCausalLM
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    fields = {**TINY[model_type], "attn_implementation": "eager", **overrides}
    model = AutoModelForCausalLM.from_config(CONFIG_MAPPING[model_type](**fields))
    return randomize_weights_(model).eval()


def token_ids(vocab_size: int = 97, b: int = 2, t: int = 12) -> torch.Tensor:
    """``(b, t)`` random token ids (draw them inside :func:`seeded`)."""
    return torch.randint(0, vocab_size, (b, t))


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
    from demos.book import max_abs_diff

    with seeded(0), torch.no_grad():
        reference = tiny_reference(model_type, **overrides)
        ids = token_ids(reference.config.vocab_size)
        expected = reference(ids).logits  # (b, t, v)
        ours = ours_class.from_hf(reference).eval()
        right = ours(ids)
        with wrong(ours):
            wrong_logits = ours(ids)
    return Measured(
        max_abs_diff(right, expected), max_abs_diff(wrong_logits, expected), tolerance, quantity
    )
