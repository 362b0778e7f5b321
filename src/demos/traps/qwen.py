"""The Qwen chapter's traps: reading a Qwen2 config as Llama's or Mistral's reader would.

Measured on the logits of tiny random ``Qwen2ForCausalLM`` models (two layers, width 32, 12 tokens,
fp32): the right version is :class:`demos.models.qwen2.Qwen2LM`; the wrong ones are the same weights
with (1) the config's window applied to every layer, as a Mistral config means it, though
``layer_types`` keeps layer 0 full (row ``qwen2-window-top``), and (2) no bias on q/k/v, as a
``LlamaConfig`` with ``attention_bias=False`` builds it: a loader that ignores unexpected keys drops
the three biases silently (row ``qwen1.5-like``).

Reference implementation: transformers==5.23.0, models/qwen2/modeling_qwen2.py::Qwen2Attention,
models/qwen2/configuration_qwen2.py::Qwen2Config.__post_init__ (``layer_types``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from torch import nn

from demos.catalog import ROWS
from demos.models.llama import LlamaLM, LlamaLMConfig
from demos.models.qwen2 import Qwen2LM
from demos.traps import Measured, Trap
from demos.traps.tiny import measure_models, seeded, token_ids


def _measure(row: str, make_wrong: Callable[[Qwen2LM], nn.Module], quantity: str) -> Measured:
    """Ours and ``make_wrong(ours)`` (the same weights) against the row's reference."""
    with seeded(0):
        ours, reference = ROWS[row].pair()
        ids = token_ids(reference.config.vocab_size)
    return measure_models(reference, ours, make_wrong(ours).eval(), ids, quantity)


def window_everywhere(right: Qwen2LM) -> Qwen2LM:
    """The same model with ``layer_types=None``: every layer slides, as in a Mistral config."""
    wrong = Qwen2LM(dataclasses.replace(right.config, layer_types=None))
    wrong.load_state_dict(right.state_dict())
    return wrong


def without_qkv_bias(right: Qwen2LM) -> LlamaLM:
    """Llama's model of the same shape, ``attention_bias=False``: the q/k/v biases are dropped."""
    shared = {f.name: getattr(right.config, f.name) for f in dataclasses.fields(LlamaLMConfig)}
    wrong = LlamaLM(LlamaLMConfig(**{**shared, "attention_bias": False}))
    wrong.load_state_dict(right.state_dict(), strict=False)  # ignores q/k/v_proj.bias, silently
    return wrong


def measure_window_everywhere() -> Measured:
    """Row ``qwen2-window-top`` (layer 0 full, layer 1 a window of 3), and the window on both."""
    quantity = "logits of a 2-layer Qwen2ForCausalLM, layer 1 sliding (W = 3), 12 tokens, fp32"
    return _measure("qwen2-window-top", window_everywhere, quantity)


def measure_no_qkv_bias() -> Measured:
    """Row ``qwen1.5-like`` read as a Llama with ``attention_bias=False``."""
    quantity = "logits of a 2-layer Qwen2ForCausalLM (q/k/v biased), 12 tokens, fp32"
    return _measure("qwen1.5-like", without_qkv_bias, quantity)


TRAPS = [
    Trap(
        chapter="qwen",
        title="The window on every layer",
        wrong="window = config.sliding_window  # every layer, as Mistral's reader",
        right="window = W if config.layer_types[i] == 'sliding_attention' else None",
        shows="every token past the window in the layers that should see everything; a test "
        "whose prompt fits in the window, or whose config has no window, misses it",
        measure=measure_window_everywhere,
    ),
    Trap(
        chapter="qwen",
        title="q, k and v without their biases",
        wrong="LlamaConfig(attention_bias=False)  # loader drops q/k/v biases",
        right="nn.Linear(c, h * d, bias=True)  # on q, k and v; none on o",
        shows="every query, key and value, so every logit",
        measure=measure_no_qkv_bias,
    ),
]
