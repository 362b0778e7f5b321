"""The MLPs against transformers' own MLP modules: outputs and every gradient, fp32 and bf16."""

from __future__ import annotations

import pytest
import torch
from transformers import FalconConfig, GPTNeoXConfig, LlamaConfig, PersimmonConfig
from transformers.models.falcon.modeling_falcon import FalconMLP
from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXMLP
from transformers.models.llama.modeling_llama import LlamaMLP, LlamaRMSNorm
from transformers.models.persimmon.modeling_persimmon import PersimmonMLP

from demos.layers.mlp import GatedMLP, GeluMLP, SquaredReLUMLP, gelu_tanh, squared_relu
from demos.layers.norms import RMSNorm
from helpers import assert_layer_parity


@pytest.mark.parametrize("bias", [False, True])
def test_gated_mlp_matches_llama(setting, bias):
    config = LlamaConfig(hidden_size=32, intermediate_size=56, mlp_bias=bias)
    assert_layer_parity(GatedMLP(32, 56, bias), LlamaMLP(config), setting)


def test_gelu_mlp_matches_falcon(setting):
    config = FalconConfig(hidden_size=32, ffn_hidden_size=48, bias=True)
    assert_layer_parity(GeluMLP(32, 48, bias=True), FalconMLP(config), setting)


@pytest.mark.parametrize("act, approximate", [("gelu", "none"), ("gelu_pytorch_tanh", "tanh")])
def test_gelu_mlp_matches_gpt_neox(setting, act, approximate):
    config = GPTNeoXConfig(
        hidden_size=32, num_attention_heads=4, intermediate_size=48, hidden_act=act
    )
    assert_layer_parity(
        GeluMLP(32, 48, bias=True, approximate=approximate), GPTNeoXMLP(config), setting
    )


def test_rms_norm_matches_llama(setting):
    assert_layer_parity(RMSNorm(32, eps=1e-5), LlamaRMSNorm(32, eps=1e-5), setting)


def test_gelu_mlp_refuses_an_unknown_approximation():
    with pytest.raises(ValueError, match=r"approximate \('fast'\) must be 'none' or 'tanh'"):
        GeluMLP(4, 8, approximate="fast")


def test_squared_relu_mlp_matches_persimmon(setting):
    config = PersimmonConfig(hidden_size=32, num_attention_heads=4, intermediate_size=48)
    assert config.hidden_act == "relu2"
    assert_layer_parity(SquaredReLUMLP(32, 48), PersimmonMLP(config), setting)


def test_squared_relu_is_zero_below_and_square_above():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 3.0], dtype=torch.float64)
    expected = torch.where(x > 0, x * x, torch.zeros_like(x))  # the definition, elementwise
    torch.testing.assert_close(squared_relu(x), expected, atol=0, rtol=0)
    assert squared_relu(x).dtype == torch.float64


@pytest.mark.parametrize("fn", [squared_relu, gelu_tanh], ids=["squared_relu", "gelu_tanh"])
def test_activations_pass_float64_gradcheck(fn):
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    x.data[x.data.abs() < 1e-3] = 0.5  # away from relu's kink at 0, where no derivative exists
    assert torch.autograd.gradcheck(fn, (x,))


def test_gelu_tanh_equals_transformers_gelu_new_bit_for_bit():
    from transformers.activations import NewGELUActivation

    x = torch.randn(4, 7, requires_grad=True)
    y = x.detach().clone().requires_grad_(True)
    out, ref = gelu_tanh(x), NewGELUActivation()(y)
    assert torch.equal(out, ref)
    w = torch.randn_like(out)
    (out * w).sum().backward()
    (ref * w).sum().backward()
    assert torch.equal(x.grad, y.grad)  # same terms in the same order: the same gradient sums
