"""Gemma's layers against transformers' own modules: GeGLU vs GemmaMLP, the (1 + w) RMSNorm vs
GemmaRMSNorm (fp32 and bf16, where the order of multiply and cast matters), and the sqrt(c)
embedding vs GemmaTextScaledWordEmbedding."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import GemmaConfig, LlamaConfig
from transformers.models.gemma.modeling_gemma import (
    GemmaMLP,
    GemmaTextScaledWordEmbedding,
)
from transformers.models.gemma.modeling_gemma import GemmaRMSNorm as HFGemmaRMSNorm
from transformers.models.llama.modeling_llama import LlamaMLP

from demos.layers.mlp import GatedMLP
from demos.layers.norms import GemmaRMSNorm, RMSNorm
from demos.models.gemma import GemmaLMScaledEmbedding, embedding_normalizer
from helpers import assert_layer_parity, cast_parameters


@pytest.mark.parametrize("act", ["gelu_pytorch_tanh", "gelu"])
def test_geglu_matches_gemma_mlp(setting, act):
    config = GemmaConfig(hidden_size=32, intermediate_size=56)
    config.hidden_act = act  # GemmaConfig maps "gelu" to tanh on load; the module reads it as set
    assert_layer_parity(GatedMLP(32, 56, hidden_act=act), GemmaMLP(config), setting)


def test_gated_mlp_default_is_still_swiglu(setting):
    config = LlamaConfig(hidden_size=32, intermediate_size=56)
    assert_layer_parity(GatedMLP(32, 56), LlamaMLP(config), setting)


def test_geglu_uses_the_tanh_approximation():
    """Not the exact GELU: the two differ by up to ~5e-4 per activation, enough to fail parity."""
    mlp = GatedMLP(8, 16, hidden_act="gelu_pytorch_tanh")
    z = torch.linspace(-4, 4, 101)
    assert torch.equal(mlp.act(z), F.gelu(z, approximate="tanh"))
    assert (mlp.act(z) - F.gelu(z)).abs().max() > 1e-4


def test_gemma_rms_norm_matches_transformers(setting):
    assert_layer_parity(GemmaRMSNorm(32, eps=1e-6), HFGemmaRMSNorm(32, eps=1e-6), setting)


def test_gemma_rms_norm_in_bf16_multiplies_before_casting():
    """bf16, bit for bit: (x_hat * (1 + w)).to(bf16) as transformers; cast-then-multiply differs."""
    torch.manual_seed(0)
    ours, hf = GemmaRMSNorm(64), HFGemmaRMSNorm(64)
    with torch.no_grad():
        hf.weight.normal_(0.0, 0.5)
    ours.load_state_dict(hf.state_dict())
    ours, hf = ours.bfloat16(), hf.bfloat16()
    x = torch.randn(4, 16, 64).bfloat16()
    expected = hf(x)
    assert torch.equal(ours(x), expected)
    x_hat = RMSNorm(64, eps=1e-6)(x)  # Llama's order: normalise, cast to bf16, ...
    cast_first = x_hat * (1.0 + ours.weight)  # ... then multiply in bf16
    assert not torch.equal(cast_first, expected)


def test_gemma_rms_norm_starts_as_the_identity_gain():
    norm = GemmaRMSNorm(16)
    assert torch.equal(norm.weight, torch.zeros(16))
    x = torch.randn(3, 16, dtype=torch.float64)
    torch.testing.assert_close(norm(x), x / x.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("hidden", [2048, 3072, 32])
def test_scaled_embedding_matches_transformers(dtype, hidden):
    hf = GemmaTextScaledWordEmbedding(11, hidden, None, embed_scale=hidden**0.5)
    ours = GemmaLMScaledEmbedding(11, hidden)
    ours.load_state_dict(hf.state_dict())
    hf, ours = cast_parameters(hf, "cpu", dtype), cast_parameters(ours, "cpu", dtype)
    ids = torch.tensor([[0, 3, 10, 7]])
    out = ours(ids)
    assert out.dtype == dtype
    assert torch.equal(out, hf(ids))


def test_the_normalizer_is_rounded_to_the_weights_dtype():
    assert embedding_normalizer(3072, torch.bfloat16).item() == 55.5  # sqrt(3072) = 55.4256...
    assert embedding_normalizer(2048, torch.bfloat16).item() == 45.25  # sqrt(2048) = 45.2548...
    assert embedding_normalizer(3072, torch.float64).item() == math.sqrt(3072)  # fp64 stays fp64


def test_unknown_activation_raises():
    with pytest.raises(ValueError, match=r"hidden_act \('relu'\) must be one of"):
        GatedMLP(4, 8, hidden_act="relu")


def test_gemma_rms_norm_refuses_integer_input():
    with pytest.raises(ValueError, match="floating"):
        GemmaRMSNorm(4)(torch.ones(2, 4, dtype=torch.long))


def test_gradcheck_gemma_norm_geglu_and_scaled_embedding():
    """float64 gradcheck: inputs and weights of the (1 + w) norm, GeGLU, and the scaled embedding."""
    from torch.autograd import gradcheck

    def leaf(*shape):
        return torch.randn(*shape, dtype=torch.float64, requires_grad=True)

    norm = GemmaRMSNorm(6).double()
    assert gradcheck(norm, (leaf(2, 3, 6),))
    assert gradcheck(
        lambda x, w: torch.func.functional_call(norm, {"weight": w}, (x,)), (leaf(2, 3, 6), leaf(6))
    )
    assert gradcheck(GatedMLP(6, 10, hidden_act="gelu_pytorch_tanh").double(), (leaf(2, 3, 6),))
    embed = GemmaLMScaledEmbedding(7, 4).double()
    ids = torch.tensor([[0, 3, 3, 6]])
    assert gradcheck(
        lambda w: torch.func.functional_call(embed, {"weight": w}, (ids,)), (leaf(7, 4),)
    )


def test_gated_mlp_pickles_with_any_activation():
    import pickle

    mlp = GatedMLP(4, 8, hidden_act="gelu_pytorch_tanh")
    copy = pickle.loads(pickle.dumps(mlp))
    x = torch.randn(2, 4)
    assert copy.hidden_act == "gelu_pytorch_tanh" and torch.equal(copy(x), mlp(x))
