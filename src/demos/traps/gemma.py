"""The Gemma chapter's traps: two one-line slips when porting Gemma from Llama code.

Both compare the logits of a tiny random ``GemmaForCausalLM`` with our ``GemmaLM`` as written and
with one line changed: RMSNorm's gain ``w`` instead of ``1 + w`` (fp32), and the embedding's
``sqrt(c)`` kept in float32 instead of rounded to the weights' bfloat16 (bf16, with Gemma-7B's
width c = 3072, where the normaliser is 55.4256 in float32 and 55.5 in bfloat16).

Reference implementation: transformers==5.23.0, models/gemma/modeling_gemma.py::GemmaRMSNorm,
::GemmaTextScaledWordEmbedding, ::GemmaForCausalLM
"""

from __future__ import annotations

import math

import torch

from demos.testing import cast_parameters
from demos.traps import Measured, Trap
from demos.traps.tiny import measure_models, seeded, tiny_reference, token_ids


def tiny_gemma(dtype: torch.dtype = torch.float32, **overrides):
    """``(model, ids)``: a tiny random ``GemmaForCausalLM`` (2 layers, MQA, head_dim 16) whose norm
    offsets ``w`` are near 0 as in a trained Gemma (transformers initialises them at 0: the gain
    1 + 0), and ``(2, 12)`` token ids. Seeded: the same on every call."""
    with seeded(0):
        model = tiny_reference("gemma", **overrides)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "norm" in name:
                    p.normal_(0.0, 0.1)  # the stored offset w, near 0
        ids = token_ids(model.config.vocab_size)
    # parameters only: RoPE's inv_freq buffer stays float32, as when a checkpoint loads in bf16
    return cast_parameters(model, "cpu", dtype), ids


def _measure(model, ids, wrong_forward, tolerance: float, quantity: str) -> Measured:
    """Our ``GemmaLM`` as written and with ``wrong_forward(ours)``'s one line changed, against
    ``model``'s logits on ``ids``."""
    from demos.models.gemma import GemmaLM

    right = GemmaLM.from_hf(model).eval()
    wrong = GemmaLM.from_hf(model).eval()
    wrong_forward(wrong)
    return measure_models(model, right, wrong, ids, quantity, tolerance)


def plain_gain(ours) -> None:
    """Plant the mistake in ``ours``: RMSNorm's ``w`` instead of ``1 + w`` in every norm."""
    from demos.layers.norms import GemmaRMSNorm

    for module in ours.modules():
        if isinstance(module, GemmaRMSNorm):  # Llama's formula on Gemma's weights
            module.forward = lambda x, m=module: (
                x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + m.eps) * m.weight
            ).to(x.dtype)


def float32_normalizer(ours) -> None:
    """Plant the mistake in ``ours``: the embedding times ``sqrt(c)`` in float32, not the weights' dtype."""
    embed = ours.embed
    c = embed.embedding_dim
    embed.forward = lambda ids: (
        torch.nn.functional.embedding(ids, embed.weight, embed.padding_idx)
        * torch.tensor(math.sqrt(c), dtype=torch.float32)  # 55.4256, not bf16's 55.5
    )


def measure_norm_gain() -> Measured:
    """RMSNorm's ``w`` instead of ``1 + w`` in every norm, fp32."""
    quantity = "logits of a 2-layer GemmaForCausalLM, fp32"
    return _measure(*tiny_gemma(), plain_gain, 1e-4, quantity)


def measure_normalizer_dtype() -> Measured:
    """The embedding multiplied by ``sqrt(c)`` in float32 instead of in the weights' bfloat16."""
    model, ids = tiny_gemma(torch.bfloat16, hidden_size=3072)
    quantity = "logits of a 2-layer GemmaForCausalLM of width 3072, bfloat16"
    return _measure(model, ids, float32_normalizer, 1e-6, quantity)


TRAPS = [
    Trap(
        chapter="gemma",
        title="Gemma's RMSNorm gain w instead of 1 + w",
        wrong="return x_hat * self.weight",
        right="return (x_hat * (1.0 + self.weight.float())).type_as(x)",
        shows="every norm: the stored offsets are near 0, so the wrong gain all but erases the input",
        measure=measure_norm_gain,
    ),
    Trap(
        chapter="gemma",
        title="Gemma's embedding scale sqrt(c) in float32 instead of the weights' dtype",
        wrong="x = embed(ids) * torch.tensor(c ** 0.5)  # float32: 55.4256",
        right="x = embed(ids) * torch.tensor(c ** 0.5).to(embed.weight.dtype)  # bf16: 55.5",
        shows="every logit in bfloat16: the residual stream starts 0.13 % smaller than in training",
        measure=measure_normalizer_dtype,
    ),
]
