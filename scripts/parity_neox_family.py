"""Largest differences between the GPT-NeoX, Persimmon and Phi code here and transformers', per component.

    PYTHONPATH=src python scripts/parity_neox_family.py

Each component gets its transformers counterpart's weights (the catalogue's rows,
``demos.catalog.ROWS``: the tiny random models the tests run, fp32 and bf16, nothing downloaded),
the same input, and one random linear loss; the table gives the largest absolute difference of the
outputs and of every gradient (input and parameters). The tests assert these
(tests/models/test_gpt_neox.py, test_persimmon.py, test_phi.py, tests/layers/test_mlp.py and the
rows of tests/test_conformance.py); this script only prints them, for the issue's closing note.
"""

from __future__ import annotations

import torch

from demos.catalog import ROWS, T
from demos.layers.mlp import GeluMLP, SquaredReLUMLP
from demos.models.gpt_neox import GPTNeoXLM, GPTNeoXLMAttention, GPTNeoXLMBlock, GPTNeoXLMConfig
from demos.models.persimmon import (
    PersimmonLM,
    PersimmonLMAttention,
    PersimmonLMBlock,
    PersimmonLMConfig,
)
from demos.models.phi import PhiLM, PhiLMAttention, PhiLMBlock, PhiLMConfig, PhiLMMLP
from demos.parity import random_linear_backward
from demos.weights import load_hf_weights


def _grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad for n, p in module.named_parameters()}


def module_errors(ours, hf, run_ours, run_hf, width: int, dtype) -> tuple[float, float]:
    """(max |output diff|, max |gradient diff|) for one random input of shape (2, T, width)."""
    ours.zero_grad(set_to_none=True)
    hf.zero_grad(set_to_none=True)  # the transformers modules are shared between rows
    x = torch.randn(2, T, width, dtype=dtype)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out, ref = run_ours(a), run_hf(b)
    random_linear_backward(out, ref)
    grads = [(a.grad, b.grad)] + [(g, _grads(hf)[n]) for n, g in _grads(ours).items()]
    return (out - ref).abs().max().item(), max((g - h).abs().max().item() for g, h in grads)


def lm_errors(ours, hf, dtype) -> tuple[float, float]:
    hf.zero_grad(set_to_none=True)
    ids = torch.randint(0, hf.config.vocab_size, (2, T))
    out, ref = ours(ids), hf(ids).logits
    random_linear_backward(out, ref)
    theirs = _grads(hf)
    diff = max((g - theirs[n]).abs().max().item() for n, g in _grads(ours).items())
    return (out - ref).abs().max().item(), diff


def block_and_lm_rows(prefix: str, hf, block, lm, cos, sin, mask, dtype):
    """The rows of a decoder layer (the first) and of the whole model, Persimmon's and Phi's."""
    layer = hf.model.layers[0]
    yield (
        f"{prefix}LMBlock",
        type(layer).__name__,
        module_errors(
            block,
            layer,
            lambda x: block(x, (cos[0], sin[0])),
            lambda x: layer(x, attention_mask=mask, position_embeddings=(cos, sin)),
            hf.config.hidden_size,
            dtype,
        ),
    )
    yield f"{prefix}LM", type(hf).__name__, lm_errors(lm, hf, dtype)


def rows(dtype: torch.dtype):
    mask = torch.full((T, T), float("-inf")).triu(1).to(dtype)[None, None]
    positions = torch.arange(T)[None]
    one = torch.ones(1, dtype=dtype)
    for row in (ROWS["pythia-parallel"], ROWS["neox-sequential"]):
        hf = row.reference(dtype=dtype)
        parallel = hf.config.use_parallel_residual
        c, f = hf.config.hidden_size, hf.config.intermediate_size
        cos, sin = hf.gpt_neox.rotary_emb(one, positions)
        layer = hf.gpt_neox.layers[0]
        cfg = GPTNeoXLMConfig.from_hf(hf.config)
        kind = "parallel" if parallel else "sequential"
        if parallel:  # pythia-parallel: rotary_pct 0.25
            att = GPTNeoXLMAttention.from_hf(layer.attention)
            yield (
                "GPTNeoXLMAttention (rotary_pct 0.25)",
                "GPTNeoXAttention",
                module_errors(
                    att,
                    layer.attention,
                    lambda x, m=att, c=cos, s=sin: m(x, (c[0], s[0])),
                    lambda x, m=layer.attention, c=cos, s=sin: m(
                        x, mask, position_embeddings=(c, s)
                    )[0],
                    c,
                    dtype,
                ),
            )
            mlp = load_hf_weights(GeluMLP(c, f), layer.mlp)
            yield "GeluMLP", "GPTNeoXMLP", module_errors(mlp, layer.mlp, mlp, layer.mlp, c, dtype)
        block = load_hf_weights(GPTNeoXLMBlock(cfg, 0), layer)
        yield (
            f"GPTNeoXLMBlock ({kind})",
            "GPTNeoXLayer",
            module_errors(
                block,
                layer,
                lambda x, m=block, c=cos, s=sin: m(x, (c[0], s[0])),
                lambda x, m=layer, c=cos, s=sin: m(
                    x, attention_mask=mask, position_embeddings=(c, s)
                ),
                c,
                dtype,
            ),
        )
        yield (
            f"GPTNeoXLM ({kind})",
            "GPTNeoXForCausalLM",
            lm_errors(GPTNeoXLM.from_hf(hf), hf, dtype),
        )

    hf = ROWS["persimmon"].reference(dtype=dtype)
    c, f = hf.config.hidden_size, hf.config.intermediate_size
    cos, sin = hf.model.rotary_emb(one, positions)
    layer = hf.model.layers[0]
    cfg = PersimmonLMConfig.from_hf(hf.config)
    mlp = load_hf_weights(SquaredReLUMLP(c, f), layer.mlp)
    yield "SquaredReLUMLP", "PersimmonMLP", module_errors(mlp, layer.mlp, mlp, layer.mlp, c, dtype)
    att = PersimmonLMAttention.from_hf(layer.self_attn)
    yield (
        "PersimmonLMAttention (QK LayerNorm)",
        "PersimmonAttention",
        module_errors(
            att,
            layer.self_attn,
            lambda x: att(x, (cos[0], sin[0])),
            lambda x: layer.self_attn(x, attention_mask=mask, position_embeddings=(cos, sin))[0],
            c,
            dtype,
        ),
    )
    block = load_hf_weights(PersimmonLMBlock(cfg, 0), layer)
    lm = PersimmonLM.from_hf(hf)
    yield from block_and_lm_rows("Persimmon", hf, block, lm, cos, sin, mask, dtype)

    hf = ROWS["phi"].reference(dtype=dtype, num_key_value_heads=2)  # the row, with g = 2
    c = hf.config.hidden_size
    cos, sin = hf.model.rotary_emb(one, positions)
    layer = hf.model.layers[0]
    cfg = PhiLMConfig.from_hf(hf.config)
    att = PhiLMAttention.from_hf(layer.self_attn)
    yield (
        "PhiLMAttention (g = 2)",
        "PhiAttention",
        module_errors(
            att,
            layer.self_attn,
            lambda x: att(x, (cos[0], sin[0])),
            lambda x: layer.self_attn(x, (cos, sin), mask)[0],
            c,
            dtype,
        ),
    )
    mlp = load_hf_weights(PhiLMMLP(cfg), layer.mlp)
    yield "PhiLMMLP (gelu_new)", "PhiMLP", module_errors(mlp, layer.mlp, mlp, layer.mlp, c, dtype)
    block = load_hf_weights(PhiLMBlock(cfg, 0), layer)
    yield from block_and_lm_rows("Phi", hf, block, PhiLM.from_hf(hf), cos, sin, mask, dtype)


def main() -> None:
    import transformers

    print(f"reference: transformers=={transformers.__version__}, torch=={torch.__version__}, CPU")
    print(
        f"{'component':38} {'reference':24} {'dtype':8} {'max |out diff|':>15} {'max |grad diff|':>16}"
    )
    for dtype in (torch.float32, torch.bfloat16):
        torch.manual_seed(0)
        for name, reference, (out, grad) in rows(dtype):
            label = str(dtype).removeprefix("torch.")
            print(f"{name:38} {reference:24} {label:8} {out:15.3e} {grad:16.3e}")


if __name__ == "__main__":
    main()
