"""Tiny random transformers models: the one table of tiny configs the tests, traps and scripts share.

``tiny_config(model_type, **overrides)`` is transformers' config class for that ``model_type`` with
the fields of :data:`TINY` (two layers, width 32 unless a row says otherwise), eager attention and
no special tokens; ``tiny_model(model_type, ...)`` builds its ``...ForCausalLM`` with visible random
weights (:func:`demos.weights.randomize_weights_`), cast to a device and dtype, in eval mode.
Nothing is downloaded. The models draw from torch's global random state: seed it first (the traps
use :func:`demos.traps.tiny.seeded`).

The tiny configs are :data:`demos.catalog.ARCHITECTURES`' ``tiny`` fields, here as :data:`TINY`;
``tests/helpers.py`` re-exports these names.
"""

from __future__ import annotations

import torch
from torch import nn

from demos.catalog import ARCHITECTURES
from demos.weights import randomize_weights_

# transformers model_type -> the fields of a tiny config of that type (the catalogue's table)
TINY = {model_type: arch.tiny for model_type, arch in ARCHITECTURES.items()}
# no special tokens, so generate never stops early; eager attention, the reference path
COMMON = dict(attn_implementation="eager", bos_token_id=None, eos_token_id=None, pad_token_id=None)


def tiny_config(model_type: str, **overrides):
    """transformers' config of ``model_type`` with :data:`TINY`'s fields, then ``overrides``.

    Raises ``KeyError`` for a ``model_type`` without a row in :data:`TINY`.
    """
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    return CONFIG_MAPPING[model_type](**{**TINY[model_type], **COMMON, **overrides})


def tiny_model(
    model_type: str, device: str = "cpu", dtype: torch.dtype = torch.float32, **overrides
) -> nn.Module:
    """A randomly initialised ``...ForCausalLM`` with visible (not near-zero) weights, in eval mode.

    LayerNorms get weights near one and small biases, as after training (``randomize_weights_``
    only recognises parameter names containing "norm", and gives their biases values near one).
    The parameters are cast to ``dtype``, float buffers stay fp32 (:func:`cast_parameters`).
    """
    from transformers import AutoModelForCausalLM

    config = tiny_config(model_type, **overrides)
    model = randomize_weights_(AutoModelForCausalLM.from_config(config))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.copy_(1.0 + 0.1 * torch.randn_like(module.weight))
                if module.bias is not None:
                    module.bias.copy_(0.1 * torch.randn_like(module.bias))
    return cast_parameters(model, device, dtype).eval()


def cast_parameters(model: nn.Module, device: str, dtype: torch.dtype) -> nn.Module:
    """Move to ``device`` and cast the *parameters* to ``dtype``, keeping float buffers in fp32.

    This is what loading a checkpoint with ``dtype=torch.bfloat16`` gives: RoPE's ``inv_freq``
    buffer stays fp32. A plain ``model.to(torch.bfloat16)`` would round it to bf16 and make the
    reference, not our code, the less accurate side of the comparison.
    """
    model.to(device)
    for p in model.parameters():
        p.data = p.data.to(dtype)
    return model
