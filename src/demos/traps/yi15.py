"""The Yi-1.5 chapter's traps: three ways to grow a model by depth that look right and are not.

Copying a span of layers is a few lines of code, and each of these versions runs: (1) stacking the
copies on top of the model instead of right after the span; (2) putting the same module
object in the layer list twice, so the copies share their weights: the parameter count does not
grow, and one training step moves both copies by the sum of their gradients; (3) reading Yi's
"layers 12-28" as inclusive, which copies 17 layers and builds a 49-layer model. Each is measured
against transformers==5.23.0 ``LlamaForCausalLM`` built from the grown configuration.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from demos.models.upscaling import (
    depth_upscale,
    upscaled_config,
    upscaled_layer_map,
    upscaled_state_dict,
)
from demos.testing import cast_parameters
from demos.traps import Measured, Trap
from demos.traps.tiny import seeded, tiny_reference, token_ids

SPAN = (1, 3)  # of 4 layers: Yi's (12, 28) of 32, scaled down (2 of 4 copied, 6 layers in all)
LAYERS = 4


def _yi_like(**overrides) -> nn.Module:
    from demos.catalog import ROWS

    return tiny_reference("llama", **{**ROWS["yi-like"].config, **overrides})


def grown_reference(reference: nn.Module, span: tuple[int, int]) -> nn.Module:
    """transformers' ``LlamaForCausalLM`` built from the grown config, its weights renamed from
    ``reference``'s state dict (:func:`~demos.models.upscaling.upscaled_state_dict`): the right
    growth, done on the reference's side."""
    from transformers import AutoModelForCausalLM

    layer_map = upscaled_layer_map(reference.config.num_hidden_layers, span)
    grown = AutoModelForCausalLM.from_config(upscaled_config(reference.config, layer_map))
    grown.load_state_dict(upscaled_state_dict(reference.state_dict(), layer_map))
    p = next(reference.parameters())
    return cast_parameters(grown, p.device, p.dtype).eval()  # float buffers (RoPE) stay fp32


def appended_on_top(model: nn.Module, span: tuple[int, int]) -> nn.Module:
    """The mistake: the span's copies stacked after the last layer (layer map ``0 .. n - 1, i ..
    j - 1``) instead of right after the span. Same layers, same count, another model."""
    n = model.config.num_hidden_layers
    i, j = span
    layer_map = (*range(n), *range(i, j))
    wrong = copy.deepcopy(model)
    wrong.model.layers = nn.ModuleList(copy.deepcopy(wrong.blocks[k]) for k in layer_map)
    return wrong


def measure_appended_on_top() -> Measured:
    """Right: :func:`depth_upscale` (copies right after the span); wrong: copies on top. Both
    against transformers' model grown with Yi's layout, before any training."""
    from demos.models.llama import LlamaLM

    with seeded(0):
        reference = _yi_like(num_hidden_layers=LAYERS)
        ids = token_ids(reference.config.vocab_size)
    ours = LlamaLM.from_hf(reference).eval()
    right, wrong = depth_upscale(ours, SPAN).model, appended_on_top(ours, SPAN)
    expected_model = grown_reference(reference, SPAN)
    with torch.no_grad():
        expected = expected_model(ids).logits  # (b, t, v)
        right_logits, wrong_logits = right(ids), wrong(ids)
    tolerance = 1e-5 * max(1.0, expected.abs().max().item())
    quantity = (
        "logits of a tiny yi-like Llama grown from 4 to 6 layers (span (1, 3)), against "
        "transformers' grown model with Yi's layout, before training, fp32"
    )
    return Measured.of(right_logits, wrong_logits, expected, tolerance, quantity)


def copied_without_renumbering(reference: nn.Module, span: tuple[int, int]) -> nn.Module:
    """A mistake transformers catches: a deep copy of ``reference`` whose layer list repeats deep
    copies of the span's layers, each keeping its ``self_attn.layer_idx``, so two layers own one
    cache slot. Without a cache it is right; with one, transformers 5.23's eager attention fails on
    the mask's shape (the page says so; the tests check it)."""
    layer_map = upscaled_layer_map(reference.config.num_hidden_layers, span)
    wrong = copy.deepcopy(reference)
    wrong.model.layers = nn.ModuleList(copy.deepcopy(reference.model.layers[k]) for k in layer_map)
    wrong.config.num_hidden_layers = len(layer_map)
    return wrong


def shared_modules(model: nn.Module, span: tuple[int, int]) -> nn.Module:
    """The mistake: a copy of our ``model`` whose layer list holds the span's block objects twice
    (``ModuleList([blocks[k] for k in layer_map])``): the copies share every weight."""
    layer_map = upscaled_layer_map(model.config.num_hidden_layers, span)
    wrong = copy.deepcopy(model)
    blocks = list(wrong.blocks)
    wrong.model.layers = nn.ModuleList(blocks[k] for k in layer_map)
    return wrong


def _one_sgd_step(model: nn.Module, ids: torch.Tensor, lr: float = 0.1) -> None:
    """One plain SGD step on the next-token cross-entropy of ``ids`` (ours or transformers')."""
    model.zero_grad(set_to_none=True)
    out = model(ids)
    logits = out if isinstance(out, torch.Tensor) else out.logits  # (b, t, v)
    loss = nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():  # a shared parameter appears once: its grads were summed
            p -= lr * p.grad


def measure_shared_modules() -> Measured:
    """Right: :func:`depth_upscale`; wrong: the same blocks listed twice. Both trained one SGD
    step, as is transformers' grown model; their logits compared afterwards."""
    from demos.models.llama import LlamaLM

    with seeded(0):
        reference = _yi_like(num_hidden_layers=LAYERS)
        ids = token_ids(reference.config.vocab_size)
    ours = LlamaLM.from_hf(reference)
    right, wrong = depth_upscale(ours, SPAN).model, shared_modules(ours, SPAN)
    expected_model = grown_reference(reference, SPAN)
    for model in (right, wrong, expected_model):
        _one_sgd_step(model, ids)
    with torch.no_grad():
        expected = expected_model(ids).logits  # (b, t, v)
        right_logits, wrong_logits = right(ids), wrong(ids)
    tolerance = 1e-5 * max(1.0, expected.abs().max().item())
    quantity = (
        "logits after one SGD step (lr 0.1) of a tiny yi-like Llama grown from 4 to 6 layers, "
        "against transformers' grown model trained the same step, fp32"
    )
    return Measured.of(right_logits, wrong_logits, expected, tolerance, quantity)


def measure_inclusive_span() -> Measured:
    """Right: Yi-1.5-6B grown by (12, 28); wrong: by (12, 29), "12-28" read as inclusive. Both
    counted on the meta device against the released Yi-1.5-9B configuration's parameters."""
    from demos.models.llama import LlamaLM, LlamaLMConfig
    from demos.registry import model_size
    from demos.registry.hf import counted_parameters, released_config
    from demos.weights import count_parameters

    six = LlamaLMConfig.from_hf(released_config("Yi-1.5-6B"))
    counts = []
    for span in ((12, 28), (12, 29)):
        config = upscaled_config(six, upscaled_layer_map(six.num_hidden_layers, span))
        with torch.device("meta"):
            counts.append(float(count_parameters(LlamaLM(config))))
    expected = float(counted_parameters(model_size("Yi-1.5-9B")))
    quantity = "parameters of Yi-1.5-6B grown by 16 layers, against Yi-1.5-9B's released config"
    return Measured.of([counts[0]], [counts[1]], [expected], 0.5, quantity, exact=True)


TRAPS = [
    Trap(
        chapter="yi15",
        title="The copies stacked on top of the model instead of after the span",
        wrong="layer_map = (*range(n), *range(i, j))",
        right="layer_map = (*range(j), *range(i, j), *range(j, n))",
        shows="every logit: layers j .. n - 1 now run before the copies, not after them",
        measure=measure_appended_on_top,
    ),
    Trap(
        chapter="yi15",
        title="The span's blocks listed twice: the copies share their weights",
        wrong="model.layers = ModuleList(blocks[k] for k in layer_map)",
        right="depth_upscale(model, span)  # a new block per layer, weights cloned",
        shows="after the first training step (and in the parameter count, which does not grow)",
        measure=measure_shared_modules,
    ),
    Trap(
        chapter="yi15",
        title='"Layers 12-28" read as inclusive: 17 layers copied, not 16',
        wrong="depth_upscale(yi_6b, (12, 29))  # 49 layers",
        right="depth_upscale(yi_6b, (12, 28))  # 48 layers, as Yi-9B",
        shows="the configuration: 49 layers and 173M parameters more than Yi-9B's released 48",
        measure=measure_inclusive_span,
    ),
]
