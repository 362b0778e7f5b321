"""Each component of the Llama 3 and Gemma chapters, its reference, and the largest error measured.

    PYTHONPATH=src python scripts/parity_llama3_gemma.py

Builds every model from a row of the catalogue (``demos.catalog.ROWS``: the tiny random models the
tests run, nothing downloaded), copies the weights, and prints ``max |ours - reference|`` over
outputs and every gradient, in float32 and bfloat16 on the CPU.
"""

from __future__ import annotations

import torch
from transformers import LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
from transformers.models.gemma.modeling_gemma import GemmaMLP, GemmaTextScaledWordEmbedding
from transformers.models.gemma.modeling_gemma import GemmaRMSNorm as HFGemmaRMSNorm

from demos.book import compare_lm, max_abs_diff
from demos.catalog import ROWS as CATALOGUE
from demos.layers.mlp import GatedMLP
from demos.layers.norms import GemmaRMSNorm
from demos.layers.rope import rope_inv_freq
from demos.layers.rope_scaling import Llama3RopeScaling, llama3_inv_freq
from demos.models.gemma import GemmaLM, GemmaLMScaledEmbedding
from demos.models.llama import LlamaLM
from demos.parity import random_linear_backward
from demos.testing import cast_parameters
from demos.weights import load_hf_weights, randomize_weights_

ROWS: list[tuple[str, str, float]] = []


def record(component: str, reference: str, error: float) -> None:
    ROWS.append((component, reference, error))


def worst(pairs: dict) -> float:
    return max(max_abs_diff(a, b) for a, b in pairs.values())


def llama3_frequencies() -> None:
    errors = []
    for factor, low, high, original, d, theta in [
        (8.0, 1.0, 4.0, 8192, 128, 500000.0),
        (32.0, 1.0, 4.0, 8192, 64, 500000.0),
        (4.0, 2.0, 8.0, 2048, 128, 10000.0),
        (2.0, 0.5, 1.5, 64, 16, 10000.0),
    ]:
        rope = dict(rope_type="llama3", rope_theta=theta, factor=factor, low_freq_factor=low)
        rope |= dict(high_freq_factor=high, original_max_position_embeddings=original)
        config = LlamaConfig(
            hidden_size=4 * d,
            num_attention_heads=4,
            head_dim=d,
            max_position_embeddings=4 * original,
            rope_parameters=rope,
        )
        expected, _ = ROPE_INIT_FUNCTIONS["llama3"](config)
        ours = llama3_inv_freq(rope_inv_freq(d, theta), Llama3RopeScaling.from_hf(config))
        errors.append(max_abs_diff(ours, expected))
    record(
        "llama3_inv_freq (4 settings)",
        "modeling_rope_utils._compute_llama3_parameters",
        max(errors),
    )


def llama3_model() -> None:
    torch.manual_seed(0)
    reference = CATALOGUE["llama3-like"].reference()  # factor 8, original context 64, d = 8
    ids = torch.randint(0, reference.config.vocab_size, (2, 160))
    error = worst(compare_lm(LlamaLM.from_hf(reference), reference, ids))
    record("LlamaLM, llama3-like (rope_type llama3), 160 tokens, fp32", "LlamaForCausalLM", error)


def gemma_layers(dtype: torch.dtype) -> None:
    name = str(dtype).removeprefix("torch.")
    config = CATALOGUE["gemma-2b-like"].hf_config()
    c, f = config.hidden_size, config.intermediate_size
    for component, ours, hf in [
        (
            "GatedMLP(hidden_act='gelu_pytorch_tanh')",
            GatedMLP(c, f, hidden_act="gelu_pytorch_tanh"),
            GemmaMLP(config),
        ),
        ("GemmaRMSNorm (1 + w)", GemmaRMSNorm(c), HFGemmaRMSNorm(c)),
    ]:
        hf = cast_parameters(randomize_weights_(hf), "cpu", dtype)
        ours = load_hf_weights(ours, hf)
        x = torch.randn(2, 5, c, dtype=dtype)
        x_ours, x_ref = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        ref, out = hf(x_ref), ours(x_ours)
        random_linear_backward(out, ref)  # one random linear loss on both sides
        pairs = {"out": (out, ref), "dx": (x_ours.grad, x_ref.grad)}
        pairs |= {
            n: (p.grad, dict(hf.named_parameters())[n].grad) for n, p in ours.named_parameters()
        }
        record(f"{component}, {name}", f"modeling_gemma.{type(hf).__name__}", worst(pairs))
    hf = GemmaTextScaledWordEmbedding(11, 3072, None, embed_scale=3072**0.5)
    ours = GemmaLMScaledEmbedding(11, 3072)
    ours.load_state_dict(hf.state_dict())
    ids = torch.tensor([[0, 3, 10, 7]])
    error = max_abs_diff(
        cast_parameters(ours, "cpu", dtype)(ids), cast_parameters(hf, "cpu", dtype)(ids)
    )
    record(f"GemmaLMScaledEmbedding (c = 3072), {name}", "GemmaTextScaledWordEmbedding", error)


def gemma_model(row: str, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    reference = CATALOGUE[row].reference(dtype=dtype)
    ids = torch.randint(0, reference.config.vocab_size, (2, 19))
    error = worst(compare_lm(GemmaLM.from_hf(reference), reference, ids))
    config = reference.config
    kind = "MQA" if config.num_key_value_heads == 1 else "MHA"
    heads = config.num_attention_heads * config.head_dim
    label = f"{kind}, h*d {'=' if heads == config.hidden_size else '!='} c"
    name = str(dtype).removeprefix("torch.")
    record(f"GemmaLM ({row}: {label}), {name}", "GemmaForCausalLM", error)


def main() -> None:
    torch.manual_seed(0)
    llama3_frequencies()
    llama3_model()
    for dtype in (torch.float32, torch.bfloat16):
        gemma_layers(dtype)
        gemma_model("gemma-2b-like", dtype)
        gemma_model("gemma-7b-like", dtype)
    width = max(len(c) for c, _, _ in ROWS)
    print(
        f"{'component'.ljust(width)}  {'reference (transformers==5.23.0)'.ljust(48)}  max |error|"
    )
    for component, reference, error in ROWS:
        print(f"{component.ljust(width)}  {reference.ljust(48)}  {error:.3e}")
    print(f"largest error over {len(ROWS)} comparisons: {max(e for _, _, e in ROWS):.3e}")


if __name__ == "__main__":
    main()
