"""Tiny random transformers models: the one table of tiny configs the tests, traps and scripts share.

``tiny_config(model_type, **overrides)`` is transformers' config class for that ``model_type`` with
the fields of :data:`TINY` (two layers, width 32 unless a row says otherwise), eager attention and
no special tokens; ``tiny_model(model_type, ...)`` builds its ``...ForCausalLM`` with visible random
weights (:func:`demos.weights.randomize_weights_`), cast to a device and dtype, in eval mode.
Nothing is downloaded. The models draw from torch's global random state: seed it first (the traps
use :func:`demos.traps.tiny.seeded`).

A new ``model_type`` adds its row to :data:`TINY`; ``tests/helpers.py`` re-exports these names.
"""

from __future__ import annotations

import torch
from torch import nn

from demos.weights import randomize_weights_

_BASE = dict(  # two layers, width 32, four heads: what every row below starts from
    vocab_size=97,
    hidden_size=32,
    intermediate_size=56,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=256,
)
_LLAMA = {**_BASE, "num_key_value_heads": 2, "rms_norm_eps": 1e-5}
TINY = {  # transformers model_type -> the fields of a tiny config of that type
    "llama": _LLAMA,
    "mistral": {**_LLAMA, "sliding_window": 4},
    "falcon": dict(  # Falcon-7B style (multi-query); new_decoder_architecture=True: 40B style
        vocab_size=97,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_kv_heads=2,
        multi_query=True,
        new_decoder_architecture=False,
        max_position_embeddings=256,
    ),
    "mamba": dict(
        vocab_size=97, hidden_size=32, num_hidden_layers=2, state_size=8, expand=2, conv_kernel=4
    ),
    "phi3": _LLAMA,  # Phi3Config: the same fields; qkv_proj and gate_up_proj are fused
    "mixtral": dict(  # 5 experts, 2 per token, 3 layers
        vocab_size=50,
        hidden_size=16,
        intermediate_size=24,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=5,
        num_experts_per_tok=2,
    ),
    # GPT-NeoX (Pythia): head_dim 8, rotary_pct 0.5 -> 4 rotated channels (Pythia: 0.25 of 64+)
    "gpt_neox": {**_BASE, "rotary_pct": 0.5, "use_parallel_residual": True},
    # Persimmon: squared ReLU, q/k LayerNorm, head_dim 8, half of it rotated
    "persimmon": {
        **_BASE,
        "partial_rotary_factor": 0.5,
        "qk_layernorm": True,
        "rope_theta": 25000.0,
    },
    # Phi (phi-1/1.5/2): one shared LayerNorm, head_dim 8, half of it rotated, gelu_new
    "phi": {**_BASE, "partial_rotary_factor": 0.5},
    # Gemma-2B style: head_dim 16 != hidden / heads = 8, one key/value head, tied embeddings
    "gemma": {**_LLAMA, "num_key_value_heads": 1, "head_dim": 16},
}
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
