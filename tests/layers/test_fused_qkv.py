"""Fused q/k/v layouts against the transformers classes that define them: Falcon, GPT-NeoX, Persimmon, Phi-3.

Each layout is checked on the real class's own split: its q, k, v are captured where it hands them
to ``eager_attention_forward`` (RoPE switched off with cos = 1, sin = 0), or read from Falcon's
``_split_heads``. Then :class:`FusedQKVAttention` with the class's weights gives its attention output.
"""

from __future__ import annotations

import pytest
import torch

from demos.layers.fused_qkv import FusedQKVAttention, split_fused_qkv
from demos.layers.rope import rope_cos_sin
from demos.weights import load_hf_weights
from helpers import cast_parameters, randomize_, tiny_model

# model_type -> (our layout, tiny config overrides: full rotary, no q/k LayerNorm)
FAMILIES = {
    "gpt_neox": ("gpt_neox", dict(num_attention_heads=4, rotary_pct=1.0, attention_bias=True)),
    "persimmon": (
        "gpt_neox",
        dict(num_attention_heads=4, partial_rotary_factor=1.0, qk_layernorm=False),
    ),
    "phi3": ("phi3", dict(num_attention_heads=4, num_key_value_heads=2)),
}
BASE = dict(
    vocab_size=97, hidden_size=32, intermediate_size=56, num_hidden_layers=1, pad_token_id=None
)


def hf_attention(model_type: str, setting=None):
    """The first attention layer of a tiny random ``model_type`` model, and its config."""
    from transformers import AutoModelForCausalLM
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    _, overrides = FAMILIES[model_type]
    config = CONFIG_MAPPING[model_type](**BASE, **overrides, attn_implementation="eager")
    model = randomize_(AutoModelForCausalLM.from_config(config))
    if setting is not None:
        cast_parameters(model, setting.device, setting.dtype)
    layers = model.gpt_neox.layers if model_type == "gpt_neox" else model.model.layers
    attn = layers[0].attention if model_type == "gpt_neox" else layers[0].self_attn
    return attn.eval(), config


def captured_qkv(model_type: str, attn, x: torch.Tensor, monkeypatch) -> tuple[torch.Tensor, ...]:
    """Run the HF layer with RoPE as the identity and catch the q, k, v it attends with."""
    import importlib

    module = importlib.import_module(f"transformers.models.{model_type}.modeling_{model_type}")
    seen = {}
    original = module.eager_attention_forward

    def spy(mod, query, key, value, *args, **kwargs):
        seen["qkv"] = (query, key, value)
        return original(mod, query, key, value, *args, **kwargs)

    monkeypatch.setattr(module, "eager_attention_forward", spy)
    b, t, _ = x.shape
    d = attn.head_dim if hasattr(attn, "head_dim") else attn.head_size
    identity = (torch.ones(b, t, d), torch.zeros(b, t, d))  # cos = 1, sin = 0: no rotation
    attn(x, attention_mask=None, position_embeddings=identity)
    return seen["qkv"]


def fused_weight(model_type: str, attn) -> torch.nn.Linear:
    return attn.qkv_proj if model_type == "phi3" else attn.query_key_value


@pytest.mark.parametrize("model_type", list(FAMILIES))
def test_split_matches_the_transformers_class(model_type, monkeypatch):
    attn, config = hf_attention(model_type)
    layout, _ = FAMILIES[model_type]
    h = config.num_attention_heads
    g = getattr(config, "num_key_value_heads", h)
    d = config.hidden_size // h
    x = torch.randn(2, 5, config.hidden_size)
    with torch.no_grad():
        q_ref, k_ref, v_ref = captured_qkv(model_type, attn, x, monkeypatch)  # (b, heads, t, d)
        q, k, v = split_fused_qkv(fused_weight(model_type, attn)(x), h, g, d, layout=layout)
    for ours, ref in ((q, q_ref), (k, k_ref), (v, v_ref)):
        torch.testing.assert_close(ours, ref, atol=0, rtol=0)


@pytest.mark.parametrize(
    "new, g, multi_query", [(False, 4, True), (False, 4, False), (True, 2, True)]
)
def test_falcon_layout_matches_falcon_split_heads(new, g, multi_query):
    """Falcon-7B (multi-query), the old multi-head layout, and the new architecture's groups."""
    hf = tiny_model("falcon", new_decoder_architecture=new, num_kv_heads=g, multi_query=multi_query)
    attn = hf.transformer.h[0].self_attention
    kv = g if new else (1 if multi_query else 4)
    fused = torch.randn(2, 5, (4 + 2 * kv) * 8)
    q_ref, k_ref, v_ref = attn._split_heads(fused)  # (b, t, heads, d); new arch: k, v to h heads
    q, k, v = split_fused_qkv(fused, 4, kv, 8)  # the default layout is "falcon"
    r = k_ref.shape[2] // kv
    torch.testing.assert_close(q.transpose(1, 2), q_ref, atol=0, rtol=0)
    torch.testing.assert_close(k.repeat_interleave(r, 1).transpose(1, 2), k_ref, atol=0, rtol=0)
    torch.testing.assert_close(v.repeat_interleave(r, 1).transpose(1, 2), v_ref, atol=0, rtol=0)
    if not multi_query and not new:  # Falcon's old multi-head layout is GPT-NeoX's
        for a, b in zip((q, k, v), split_fused_qkv(fused, 4, 4, 8, "gpt_neox"), strict=True):
            torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize("model_type", list(FAMILIES))
def test_fused_attention_matches_the_transformers_class(setting, model_type):
    """Our module with the class's weights: same causal attention output and gradients, real RoPE."""
    attn, config = hf_attention(model_type, setting)
    layout, _ = FAMILIES[model_type]
    h = config.num_attention_heads
    g = getattr(config, "num_key_value_heads", h)
    d = config.hidden_size // h
    bias = fused_weight(model_type, attn).bias is not None
    ours = FusedQKVAttention(config.hidden_size, h, g, d, bias=bias, layout=layout)
    if model_type == "phi3":  # Phi-3 calls them qkv_proj and o_proj
        state = {
            k.replace("qkv_proj", "query_key_value").replace("o_proj", "dense"): v
            for k, v in attn.state_dict().items()
        }
        ours.load_state_dict(state)
        ours.to(setting.device, setting.dtype)
    else:
        load_hf_weights(ours, attn)
    t = 7
    x = torch.randn(2, t, config.hidden_size, device=setting.device, dtype=setting.dtype)
    x_ref, x_ours = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    cos, sin = rope_cos_sin(
        torch.arange(t, device=setting.device), d, config.rope_parameters["rope_theta"]
    )
    mask = torch.full((t, t), float("-inf"), device=setting.device).triu(1)[None, None]
    ref = attn(
        x_ref,
        attention_mask=mask.to(setting.dtype),
        position_embeddings=(cos[None].to(setting.dtype), sin[None].to(setting.dtype)),
    )[0]
    out = ours(x_ours, (cos.to(setting.dtype), sin.to(setting.dtype)))
    setting.close(out, ref)
    w = torch.randn_like(out)
    (ref * w).sum().backward()
    (out * w).sum().backward()
    setting.close(x_ours.grad, x_ref.grad, grad=True, msg="d/dx")


# ---- bad input ----


def test_bad_fused_input_raises():
    fused = torch.randn(1, 2, 48)
    with pytest.raises(
        ValueError, match=r"fused must have shape \(b, t, \(h \+ 2g\) \* d\), got \(2, 48\)"
    ):
        split_fused_qkv(fused[0], 4, 1, 8)
    with pytest.raises(ValueError, match=r"fused qkv width \(40\) must be"):
        split_fused_qkv(torch.randn(1, 2, 40), 4, 1, 8)
    with pytest.raises(
        ValueError, match=r"num_heads \(4\) must be divisible by num_kv_heads \(3\)"
    ):
        split_fused_qkv(torch.randn(1, 2, 80), 4, 3, 8)
    with pytest.raises(ValueError, match=r"num_kv_heads \(0\) must be a positive integer"):
        split_fused_qkv(torch.randn(1, 2, 32), 4, 0, 8)
    with pytest.raises(ValueError, match=r"layout \('llama'\) must be one of"):
        split_fused_qkv(fused, 4, 1, 8, layout="llama")
    with pytest.raises(ValueError, match=r"num_kv_heads \(1\) must equal num_heads \(4\)"):
        split_fused_qkv(fused, 4, 1, 8, layout="gpt_neox")
    with pytest.raises(ValueError, match=r"x must have shape \(b, t, 32\)"):
        FusedQKVAttention(32, 4, 1, 8)(torch.randn(1, 2, 31), (None, None))
