"""Depth up-scaling: a deeper model grown from a trained one by repeating a span of its layers.

Yi-9B was grown from Yi-6B this way [young2024yi]: the 32 layers of Yi-6B became 48 by
duplicating the 16 layers 12-28 (layers 12 to 27, a half-open span) and then training on
0.8T more tokens; the 16 copies sit right after the originals, as layers 28-43 [ai2024yi9bblog].
SOLAR 10.7B did the same to Mistral 7B with another layout [kim2023solar]. The grown model is
the same architecture with more layers, so only ``num_hidden_layers`` (and per-layer data such as
``layer_types``) changes in the configuration; every block is built anew with its new
``layer_idx`` and loads the weights of the layer it copies, so no two layers share a tensor and a
cache has one slot per layer.

Axes and names:
    n      layers of the original model
    [i, j) the span of layers copied (half-open: layers i .. j - 1), 0 <= i < j <= n
    m      layers of the grown model, n + (j - i)
    layer_map  for each layer of the grown model, the original layer it copies

References:
    young2024yi       Yi, Section 7.3 (depth up-scaling of Yi-6B to Yi-9B).
    ai2024yi9bblog    01.AI, "Dive deeper into Yi-9B" (layers 12-28 duplicated, new layers 28-44).
    kim2023solar      SOLAR 10.7B, Section 2.1 (depth up-scaling).

Reference implementation:
    none in transformers (a grown model is an ordinary ``LlamaForCausalLM``); the tests grow
    transformers==5.23.0 ``models/llama/modeling_llama.py::LlamaForCausalLM`` by renaming its
    state-dict keys and compare.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from demos.models.decoder import DecoderLM
from demos.weights import count_parameters


def check_span(span: Any, num_layers: int) -> tuple[int, int]:
    """``(i, j)`` as ints; ``ValueError`` unless ``0 <= i < j <= num_layers`` (half-open, not empty)."""
    if not isinstance(span, (tuple, list)) or len(span) != 2:
        raise ValueError(f"span must be a pair (start, stop) of layer indices, got {span!r}")
    i, j = span
    for name, value in (("start", i), ("stop", j)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"span {name} must be an int, got {value!r}")
    if not 0 <= i < j <= num_layers:
        raise ValueError(
            f"span ({i}, {j}) must satisfy 0 <= start < stop <= num_hidden_layers ({num_layers}): "
            "a non-empty, half-open range of existing layers (Yi-9B: (12, 28) of 32)"
        )
    return i, j


def upscaled_layer_map(num_layers: int, span: tuple[int, int]) -> tuple[int, ...]:
    """For each layer of the grown model, the original layer it copies: layers ``0 .. j - 1``,
    then the copies of ``i .. j - 1``, then ``j .. n - 1``. ``(32, (12, 28))`` gives 48 entries,
    entry 28 being 12 (Yi-9B's layout). ``ValueError`` for a bad span (:func:`check_span`)."""
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
    i, j = check_span(span, num_layers)
    return (*range(j), *range(i, j), *range(j, num_layers))


def upscaled_config(config: Any, layer_map: tuple[int, ...]) -> Any:
    """``config`` with ``num_hidden_layers = len(layer_map)`` and its per-layer list
    ``layer_types`` (if any) read through ``layer_map``. Works on our frozen dataclass configs and
    on a transformers ``PretrainedConfig`` (a deep copy; the original is left unchanged)."""
    from transformers import PretrainedConfig

    layer_types = getattr(config, "layer_types", None)
    new_types = None if layer_types is None else [layer_types[k] for k in layer_map]
    if isinstance(config, PretrainedConfig):  # transformers' (itself a dataclass in 5.x)
        grown = copy.deepcopy(config)
        grown.num_hidden_layers = len(layer_map)
        if layer_types is not None:
            grown.layer_types = new_types  # transformers wants a list
        return grown
    if not dataclasses.is_dataclass(config):
        raise ValueError(f"config must be a dataclass or a PretrainedConfig, got {type(config)}")
    fields = {"num_hidden_layers": len(layer_map)}
    if layer_types is not None:
        fields["layer_types"] = tuple(new_types)
    return dataclasses.replace(config, **fields)


@dataclass(frozen=True)
class Upscaled:
    """What :func:`depth_upscale` returns."""

    model: DecoderLM  # the grown model, in the original's mode, device and dtype
    config: Any  # its configuration (model.config)
    layer_map: tuple[int, ...]  # for each new layer, the original layer it copies
    parameters_before: int  # distinct parameters of the original
    parameters_after: int  # distinct parameters of the grown model


def depth_upscale(model: DecoderLM, span: tuple[int, int]) -> Upscaled:
    """Grow ``model`` by duplicating its layers ``span = (i, j)`` (half-open) right after them.

    A new model of the same class is built from the grown configuration, so block ``k`` gets
    ``layer_idx = k`` (its cache slot and its entry of ``layer_types``), and every parameter is a
    copy: the duplicated layers train independently. Embedding, final norm and head are copied.
    Before any training the grown model computes ``layers[j-1] o ... o layers[i]`` twice in a row;
    its outputs differ from the original's by what that second pass adds.

    Args:
        model: a :class:`~demos.models.decoder.DecoderLM` (``LlamaLM`` and its families) whose
            config is a frozen dataclass with ``num_hidden_layers``.
        span: ``(i, j)`` with ``0 <= i < j <= num_hidden_layers``; Yi-9B from Yi-6B: ``(12, 28)``.

    Returns:
        :class:`Upscaled`: the model, its config, the layer map and the parameter counts.

    Raises:
        ValueError: ``model`` is not a ``DecoderLM``, or the span is out of range, empty or
            reversed (:func:`check_span`).
    """
    if not isinstance(model, DecoderLM):
        raise ValueError(f"model must be a DecoderLM (e.g. LlamaLM), got {type(model).__name__}")
    layer_map = upscaled_layer_map(model.config.num_hidden_layers, span)
    config = upscaled_config(model.config, layer_map)
    p = next(model.parameters())
    grown = type(model)(config).to(device=p.device, dtype=p.dtype)  # block k: layer_idx k
    state = {}
    layers_prefix = f"{model.module_names[0]}.{model.module_names[2]}."
    old = model.state_dict()
    for name in grown.state_dict():
        if name.startswith(layers_prefix):  # model.layers.<k>.rest -> model.layers.<map[k]>.rest
            k, rest = name[len(layers_prefix) :].split(".", 1)
            name_in_old = f"{layers_prefix}{layer_map[int(k)]}.{rest}"
        else:
            name_in_old = name
        state[name] = old[name_in_old].detach().clone()
    grown.load_state_dict(state)
    grown.train(model.training)
    return Upscaled(grown, config, layer_map, count_parameters(model), count_parameters(grown))


def upscaled_state_dict(
    state_dict: dict[str, torch.Tensor], layer_map: tuple[int, ...], prefix: str = "model.layers."
) -> dict[str, torch.Tensor]:
    """A transformers-style state dict grown by ``layer_map``: each ``<prefix><k>.`` key of the
    new model reads ``<prefix><layer_map[k]>.`` of ``state_dict`` (cloned); other keys are copied.
    What a checkpoint tool does to a safetensors file; the tests grow transformers' model with it."""
    grown: dict[str, torch.Tensor] = {}
    for name, tensor in state_dict.items():
        if not name.startswith(prefix):
            grown[name] = tensor.clone()
    for k, source in enumerate(layer_map):
        old = f"{prefix}{source}."
        for name, tensor in state_dict.items():
            if name.startswith(old):
                grown[f"{prefix}{k}.{name[len(old) :]}"] = tensor.clone()
    return grown


def output_shift(
    original: DecoderLM, grown: DecoderLM, input_ids: torch.Tensor
) -> dict[str, float]:
    """How far ``grown``'s next-token distributions moved from ``original``'s on ``input_ids (b, t)``.

    Returns ``{"kl": mean over positions of KL(p_original || p_grown) in nats, "max_logit_change":
    max |logits_grown - logits_original|, "top1_agreement": fraction of positions whose argmax is
    the same}``, computed without gradients in float64.
    """
    with torch.no_grad():
        before = original(input_ids).double()  # (b, t, v)
        after = grown(input_ids).double()  # (b, t, v)
    log_p, log_q = before.log_softmax(-1), after.log_softmax(-1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)  # (b, t)
    return {
        "kl": kl.mean().item(),
        "max_logit_change": (after - before).abs().max().item(),
        "top1_agreement": (before.argmax(-1) == after.argmax(-1)).double().mean().item(),
    }


def layer_cosines(model: DecoderLM, input_ids: torch.Tensor) -> torch.Tensor:
    """``(n,)``: for each block, the cosine similarity between its input and its output hidden
    states, averaged over positions (the first left out, as 01.AI did) and the batch: near 1, the
    block changes little, and a copy of it after itself changes little more [ai2024yi9bblog]."""
    cosines: list[torch.Tensor] = []

    def hook(block, args, output):
        x, y = args[0].double(), output.double()  # (b, t, c) each
        cosines.append(torch.nn.functional.cosine_similarity(x, y, dim=-1)[:, 1:].mean())

    handles = [block.register_forward_hook(hook) for block in model.blocks]
    try:
        with torch.no_grad():
            model(input_ids)
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(cosines)  # (n,)
