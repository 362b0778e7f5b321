"""Checkers for the Llama 2 chapter's exercises: mean-pooling a multi-head checkpoint's key/value heads
into grouped-query attention, the longest context a KV-cache budget allows, finding a planted
mistake, and grouped-query attention with its weights without copying the key/value heads
(transfer).

Over ~300 lines on purpose: one chapter's checkers, one module per chapter as the layout rule has it
(``demos/exercises/<chapter>.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral

import torch
from torch.overrides import TorchFunctionMode

from demos.catalog import ARCHITECTURES
from demos.exercises.core import (
    TEMPLATE_MARK,
    Check,
    check_recorded,
    untouched_template,
)
from demos.exercises.describe import describe_error
from demos.exercises.recorded import recorded
from demos.models.llama import LlamaLM, LlamaLMBlock


def check_mean_pool_kv(fn: Callable[[torch.Tensor, int, int], torch.Tensor]) -> Check:
    """Check a learner's ``mean_pool_kv(weight, num_heads, num_key_value_heads)``: a multi-head
    ``k_proj``/``v_proj`` weight ``(h d, c)`` -> ``(g d, c)``, each key/value head the mean of its
    group's ``h / g`` consecutive heads; float64, to 1e-12 (the float64 policy for reductions)."""
    return check_recorded(
        fn,
        recorded(__name__, "check_mean_pool_kv"),
        ("weight", "num_heads", "num_key_value_heads"),
        atol=1e-12,
        rtol=1e-12,
    )


def check_max_seq_len(fn: Callable[..., int]) -> Check:
    """Check a learner's ``max_seq_len(budget_bytes, num_hidden_layers, num_key_value_heads,
    head_dim, batch, bytes_per_value, max_position_embeddings)``: the longest context (whole
    tokens, at most ``max_position_embeddings``) each of ``batch`` sequences can have in a KV
    cache of ``budget_bytes``; an int (a float, numpy or 0-d tensor equal to it is accepted)."""
    names = ("budget_bytes", "num_hidden_layers", "num_key_value_heads", "head_dim", "batch")
    return check_recorded(
        fn,
        recorded(__name__, "check_max_seq_len"),
        (*names, "bytes_per_value", "max_position_embeddings"),
    )


# ---------------------------------------------------------------- find the planted mistake

PLANTED_SUBSTEP = "post-attention norm"  # where BuggyBlock's mistake first shows
PLANTED_MODULE = "post_attention_layernorm"
# the layers of planted_mistake_models' tiny Llama (the catalogue's tiny llama config)
NUM_LAYERS = ARCHITECTURES["llama"].tiny["num_hidden_layers"]
SUBSTEPS = (  # a sequential block's sub-steps in forward order, as demos.debugging names them
    "input norm",
    "attention",
    "residual after attention",
    "post-attention norm",
    "MLP",
    "residual after MLP",
)


class BuggyBlock(LlamaLMBlock):
    """Llama's block with one planted mistake: it runs, its shapes are right, and it is wrong."""

    def forward(self, x, rope, cache=None, mask=None):
        """``x (b, t, c)``; ``rope`` (cos, sin), ``cache`` and ``mask`` as for LlamaLMBlock."""
        attn_in = self.input_layernorm(x)  # (b, t, c)
        h = x + self.self_attn(attn_in, rope, cache, mask)  # (b, t, c)
        return h + self.mlp(self.post_attention_layernorm(x))  # (b, t, c)


def planted_mistake_models(layer: int = 1) -> tuple[LlamaLM, torch.nn.Module, torch.Tensor]:
    """A tiny random ``LlamaForCausalLM`` (2 layers), a ``LlamaLM`` with its weights whose block
    ``layer`` is a :class:`BuggyBlock`, and ``(2, 12)`` token ids: ``(ours, reference, input_ids)``.
    Seeded: the same models on every call."""
    from demos.traps.tiny import seeded, tiny_reference, token_ids

    with seeded(0):
        reference = tiny_reference("llama")
        input_ids = token_ids(reference.config.vocab_size)
    ours = LlamaLM.from_hf(reference)
    buggy = BuggyBlock(ours.config, layer)
    buggy.load_state_dict(ours.blocks[layer].state_dict())
    ours.blocks[layer] = buggy
    return ours.eval(), reference, input_ids


def _read_answer(value) -> tuple[int, str] | str:
    """``(layer, substep)`` from what the learner returned, or a message saying what is wrong."""
    if value is None:
        return "returned None; return the pair (layer, substep) that first_divergence reports"
    if hasattr(value, "layer") and hasattr(value, "substep"):  # a Divergence itself
        value = (value.layer, value.substep)
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        return f"returned {type(value).__name__} {value!r:.60}, not a pair (layer, substep)"
    layer, substep = value
    if isinstance(layer, bool) or not isinstance(layer, Integral) or not isinstance(substep, str):
        return f"returned {value!r:.60}: layer must be an int and substep a str"
    name = substep.strip()
    name = PLANTED_SUBSTEP if name == PLANTED_MODULE else name
    canonical = {s.lower(): s for s in SUBSTEPS}  # "mlp" reads as "MLP"
    return layer, canonical.get(name.lower(), name)


def _hint(answer: tuple[int, str], layer: int) -> str:
    """Why ``answer`` is not the first divergence of a model whose bug sits in block ``layer``."""
    got_layer, substep = answer
    if substep not in SUBSTEPS:
        return (
            f"{substep!r} is not a sub-step of a Llama block; first_divergence names them "
            f"{', '.join(SUBSTEPS)}."
        )
    if not 0 <= got_layer < NUM_LAYERS:
        return f"there is no layer {got_layer}: the model's layers are 0 to {NUM_LAYERS - 1}."
    if got_layer > layer:
        return (
            f"layer {got_layer} differs, but so does every layer after the first one that "
            "differs: it reads a wrong input. Look for the first."
        )
    if got_layer < layer:
        return f"layer {got_layer} still agrees with the reference; the mistake comes later."
    planted = SUBSTEPS.index(PLANTED_SUBSTEP)
    if SUBSTEPS.index(substep) > planted:
        return (
            f"the layer is right, and {substep!r} differs, but it inherits its difference from "
            "an earlier sub-step of that layer: report the first one."
        )
    return f"the layer is right, but {substep!r} still agrees with the reference there."


def check_planted_mistake(answer) -> Check:
    """Check where a learner says :class:`BuggyBlock` first leaves the reference.

    ``answer`` is a function ``(ours, reference, input_ids) -> (layer, substep)`` (it may return
    ``first_divergence``'s result itself), run on two models from :func:`planted_mistake_models`,
    with the bug in layer 1 and in layer 0; or the pair itself for the model with the bug in
    layer 1. ``substep`` as :mod:`demos.debugging` names it (``"MLP"``), or the module's name.
    Never raises on a wrong answer.
    """
    if (placeholder := untouched_template(answer)) is not None:
        name = getattr(answer, "__name__", "the function")
        return Check(
            False,
            f"`{name}` is still the template (`{placeholder}`). Replace `# {TEMPLATE_MARK}` and "
            "the placeholder: run first_divergence(ours, reference, input_ids) and return the "
            "layer and sub-step it reports, as a pair (layer, substep); then run the cell again.",
            attempted=False,
        )
    layers = (1, 0) if callable(answer) else (1,)
    for layer in layers:
        case = f"a 2-layer tiny Llama with BuggyBlock in layer {layer}, input_ids (2, 12)"
        value = answer
        if callable(answer):
            try:
                value = answer(*planted_mistake_models(layer))
            except Exception as error:  # the learner's code: report it, do not crash
                return Check(False, f"On {case}: it {describe_error(error)}")
        read = _read_answer(value)
        if isinstance(read, str):
            return Check(False, f"On {case}: the answer {read}.")
        if read == (1, PLANTED_SUBSTEP) and layer == 0:
            why = "the same pair as for layer 1: does the function look, or return a fixed pair?"
            return Check(False, f"On {case}: got {read}; {why}")
        if read != (layer, PLANTED_SUBSTEP):
            return Check(False, f"On {case}: got {read}; {_hint(read, layer)}")
    return Check(
        True,
        f"The first divergence is in the layer that holds BuggyBlock, at the {PLANTED_SUBSTEP}: "
        "its input, the residual after attention, agrees with the reference and its output "
        "does not. Now read show_source(BuggyBlock.forward): what does that norm read?",
    )


# ---------------------------------------------------------------------------- transfer: GQA, no copies

_COPYING = {"repeat", "repeat_interleave", "expand", "expand_as", "tile", "broadcast_to"}


class _Calls(TorchFunctionMode):
    """Records the names of the torch functions called while active."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.add(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def check_gqa_with_weights(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Check:
    """Check a learner's ``gqa_with_weights(q, k, v)``: causal attention with ``g`` key/value heads
    shared by ``h`` query heads, and its weights, computed WITHOUT copying the keys and values to
    ``h`` heads (no ``repeat``, ``repeat_interleave``, ``expand``): ``q (b, h, t, d)``,
    ``k, v (b, g, s, d)`` -> ``(output (b, h, t, d), weights (b, h, t, s))``, float64, to 1e-12
    (the float64 policy for reductions). The copying is detected with a ``TorchFunctionMode``."""
    declared = recorded(__name__, "check_gqa_with_weights")
    result = check_recorded(
        fn, declared, ("q", "k", "v"), atol=1e-12, rtol=1e-12, names=("output", "weights")
    )
    if not result.ok:
        return result
    calls = _Calls()
    try:
        with calls:
            fn(*(a.clone() for a in next(iter(declared.cases.values()))))
    except Exception as error:  # it passed a moment ago; never raise on the learner's code
        return Check(False, f"A second call {describe_error(error)}")
    copied = sorted(calls.names & _COPYING)
    if copied:
        return Check(
            False,
            f"The values are right, but the function copies tensors to all h heads (it called "
            f"{', '.join(copied)}). The exercise asks for no copy: reshape q to "
            "(b, g, h / g, t, d) and let matmul broadcast k and v over the h / g axis.",
        )
    return result
