"""Builders for tiny random transformers models (nothing downloaded, eager attention), and the checks
the parity tests share.

One builder pattern: ``tiny_config(model_type, **overrides)`` is transformers' config class for that
``model_type`` with the tiny fields of :data:`TINY`; ``tiny_model(model_type, ...)`` builds its
``...ForCausalLM`` with visible random weights, cast to a device and dtype.
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from demos.weights import randomize_weights_ as randomize_

_LLAMA = dict(
    vocab_size=97,
    hidden_size=32,
    intermediate_size=56,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    rms_norm_eps=1e-5,
)
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
    "gpt_neox": dict(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=56,
        num_hidden_layers=2,
        num_attention_heads=4,
        rotary_pct=0.5,
        use_parallel_residual=True,
        max_position_embeddings=256,
    ),
    # Persimmon: squared ReLU, q/k LayerNorm, head_dim 8, half of it rotated
    "persimmon": dict(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=56,
        num_hidden_layers=2,
        num_attention_heads=4,
        partial_rotary_factor=0.5,
        qk_layernorm=True,
        rope_theta=25000.0,
        max_position_embeddings=256,
    ),
    # Phi (phi-1/1.5/2): one shared LayerNorm, head_dim 8, half of it rotated, gelu_new
    "phi": dict(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=56,
        num_hidden_layers=2,
        num_attention_heads=4,
        partial_rotary_factor=0.5,
        max_position_embeddings=256,
    ),
    # Gemma-2B style: head_dim 16 != hidden / heads = 8, one key/value head, tied embeddings
    "gemma": dict(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=56,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
    ),
}
# no special tokens, so generate never stops early; eager attention, the reference path
COMMON = dict(attn_implementation="eager", bos_token_id=None, eos_token_id=None, pad_token_id=None)


def tiny_config(model_type: str, **overrides):
    """transformers' config of ``model_type`` with :data:`TINY`'s fields, then ``overrides``."""
    return CONFIG_MAPPING[model_type](**{**TINY[model_type], **COMMON, **overrides})


def tiny_model(
    model_type: str, device: str = "cpu", dtype: torch.dtype = torch.float32, **overrides
):
    """A randomly initialised ``...ForCausalLM`` with visible (not near-zero) weights, in eval mode.

    LayerNorms get weights near one and small biases, as after training (``randomize_`` only
    recognises parameter names containing "norm").
    """
    model = randomize_(AutoModelForCausalLM.from_config(tiny_config(model_type, **overrides)))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(1.0 + 0.1 * torch.randn_like(module.weight))
                if module.bias is not None:
                    module.bias.copy_(0.1 * torch.randn_like(module.bias))
    return cast_parameters(model, device, dtype).eval()


def tiny_llama_config(num_key_value_heads: int = 2, **overrides):
    return tiny_config("llama", num_key_value_heads=num_key_value_heads, **overrides)


def tiny_llama(
    num_key_value_heads: int = 2,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    **overrides,
):
    """A tiny random ``LlamaForCausalLM`` (``num_key_value_heads`` first, as most callers vary it)."""
    return tiny_model("llama", device, dtype, num_key_value_heads=num_key_value_heads, **overrides)


def tiny_mixtral_config(**overrides):
    return tiny_config("mixtral", **overrides)


def cast_parameters(model: torch.nn.Module, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """Move to ``device`` and cast the *parameters* to ``dtype``, keeping float buffers in fp32.

    This is what loading a checkpoint with ``dtype=torch.bfloat16`` gives: RoPE's ``inv_freq`` buffer stays
    fp32. A plain ``model.to(torch.bfloat16)`` would round it to bf16 and make the reference, not our
    code, the less accurate side of the comparison.
    """
    model.to(device)
    for p in model.parameters():
        p.data = p.data.to(dtype)
    return model


def grads_by_name(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad for n, p in model.named_parameters()}


def assert_same_grads(ours: torch.nn.Module, reference: torch.nn.Module, setting) -> None:
    """Same parameter names, and each gradient of ``ours`` equal to the reference's (``setting``'s tolerance)."""
    ref_grads, our_grads = grads_by_name(reference), grads_by_name(ours)
    assert set(ref_grads) == set(our_grads)
    for name, grad in our_grads.items():
        setting.close(grad, ref_grads[name], grad=True, msg=f"d/d{name}")


def assert_same_greedy_tokens(
    ours, reference, prompt: torch.Tensor, new_tokens: int, attention_mask=None
) -> None:
    """``ours.generate`` and transformers' greedy ``generate`` produce the same tokens (prompt included),
    on the same (left-padded, if ``attention_mask`` has zeros) batch."""
    mask = torch.ones_like(prompt) if attention_mask is None else attention_mask
    ref = reference.generate(
        prompt, max_new_tokens=new_tokens, do_sample=False, attention_mask=mask
    )
    out = ours.generate(prompt, new_tokens, attention_mask=attention_mask)
    assert out.shape == (prompt.shape[0], prompt.shape[1] + new_tokens)
    assert torch.equal(out, ref)


def assert_lm_parity(ours, reference, ids: torch.Tensor, setting, **forward_kwargs) -> None:
    """``ours(ids)`` equals the reference's logits, then every gradient of one random linear loss of them."""
    ref = reference(ids).logits
    out = ours(ids, **forward_kwargs)
    setting.close(out, ref)
    w = torch.randn_like(out)  # a random linear loss: every gradient is non-trivial
    (ref * w).sum().backward()
    (out * w).sum().backward()
    assert_same_grads(ours, reference, setting)


def assert_same_input_grads(out, ref, inputs: dict, setting) -> None:
    """``out`` equals ``ref``, and so do their gradients with respect to each of ``inputs`` (name ->
    tensor) under one random linear loss, within ``setting``'s tolerances."""
    setting.close(out, ref)
    w = torch.randn_like(out)  # a random linear loss: every gradient is non-trivial
    ours = torch.autograd.grad((out * w).sum(), tuple(inputs.values()))
    theirs = torch.autograd.grad((ref * w).sum(), tuple(inputs.values()))
    for name, a, b in zip(inputs, ours, theirs, strict=True):
        setting.close(a, b, grad=True, msg=f"d/d{name}")


# ---- one layer or block against its transformers module (GPT-NeoX, Persimmon, Phi tests) ----


def causal(t: int, setting) -> torch.Tensor:
    """transformers' additive causal mask ``(1, 1, t, t)``."""
    mask = torch.full((t, t), float("-inf"), device=setting.device).triu(1)
    return mask.to(setting.dtype)[None, None]


def assert_module_parity(ours, hf, run_ours, run_hf, shape, setting) -> None:
    """Same output, same gradient of one random linear loss for the input and every parameter."""
    x = torch.randn(*shape, device=setting.device, dtype=setting.dtype)
    x_ours, x_ref = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out, ref = run_ours(x_ours), run_hf(x_ref)
    setting.close(out, ref)
    w = torch.randn_like(out)
    (out * w).sum().backward()
    (ref * w).sum().backward()
    setting.close(x_ours.grad, x_ref.grad, grad=True, msg="d/dx")
    assert_same_grads(ours, hf, setting)


def tables(rotary_emb, t: int, setting):
    """transformers' own partial cos/sin tables ``(1, t, r)`` in the setting's dtype."""
    x = torch.ones(1, device=setting.device, dtype=setting.dtype)  # only its dtype is read
    return rotary_emb(x, torch.arange(t, device=setting.device)[None])
