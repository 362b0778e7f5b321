"""Builders for tiny random transformers models (nothing downloaded, eager attention)."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from demos.weights import randomize_weights_ as randomize_


def tiny_llama_config(num_key_value_heads: int = 2, **overrides) -> LlamaConfig:
    fields = dict(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=56,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=num_key_value_heads,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        attn_implementation="eager",
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    fields.update(overrides)
    return LlamaConfig(**fields)


def tiny_llama(
    num_key_value_heads: int = 2,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    **overrides,
):
    """A randomly initialised ``LlamaForCausalLM`` with visible (not near-zero) weights."""
    model = randomize_(LlamaForCausalLM(tiny_llama_config(num_key_value_heads, **overrides)))
    return cast_parameters(model, device, dtype).eval()


def cast_parameters(model: torch.nn.Module, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """Move to ``device`` and cast the *parameters* to ``dtype``, keeping float buffers in fp32.

    This is what ``from_pretrained(..., dtype=torch.bfloat16)`` gives: RoPE's ``inv_freq`` buffer stays
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


def assert_same_greedy_tokens(ours, reference, prompt: torch.Tensor, new_tokens: int) -> None:
    """``ours.generate`` and transformers' greedy ``generate`` produce the same tokens (prompt included)."""
    ref = reference.generate(
        prompt, max_new_tokens=new_tokens, do_sample=False, attention_mask=torch.ones_like(prompt)
    )
    out = ours.generate(prompt, max_new_tokens=new_tokens)
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


def tiny_mistral_config(num_key_value_heads: int = 2, sliding_window: int | None = 4, **overrides):
    """A tiny ``MistralConfig``: Llama's shape plus a sliding window of ``sliding_window`` keys."""
    from transformers import MistralConfig

    fields = tiny_llama_config(num_key_value_heads).to_dict()
    fields = {
        k: fields[k]
        for k in (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "max_position_embeddings",
            "rms_norm_eps",
        )
    }
    fields.update(
        sliding_window=sliding_window,
        attn_implementation="eager",
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    fields.update(overrides)
    return MistralConfig(**fields)


def tiny_mistral(
    num_key_value_heads: int = 2,
    sliding_window: int | None = 4,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    **overrides,
):
    """A randomly initialised ``MistralForCausalLM`` with visible weights."""
    from transformers import MistralForCausalLM

    config = tiny_mistral_config(num_key_value_heads, sliding_window, **overrides)
    model = randomize_(MistralForCausalLM(config))
    return cast_parameters(model, device, dtype).eval()


def tiny_mamba_config(**overrides):
    """A tiny transformers ``MambaConfig``; no special tokens, so ``generate`` never stops early."""
    from transformers import MambaConfig

    fields = dict(
        vocab_size=97,
        hidden_size=32,
        num_hidden_layers=2,
        state_size=8,
        expand=2,
        conv_kernel=4,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    fields.update(overrides)
    return MambaConfig(**fields)


def tiny_mamba(device: str = "cpu", dtype: torch.dtype = torch.float32, **overrides):
    """A randomly initialised ``MambaForCausalLM`` with visible (not near-zero) weights."""
    from transformers import MambaForCausalLM

    model = randomize_(MambaForCausalLM(tiny_mamba_config(**overrides)))
    return cast_parameters(model, device, dtype).eval()


def tiny_falcon_config(new_decoder_architecture: bool = False, num_kv_heads: int = 2, **overrides):
    """A tiny ``FalconConfig``: Falcon-7B style (multi-query) by default, Falcon-40B style if
    ``new_decoder_architecture`` (``num_kv_heads`` key/value groups, two LayerNorms)."""
    from transformers import FalconConfig

    fields = dict(
        vocab_size=97,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_kv_heads=num_kv_heads,
        multi_query=True,
        new_decoder_architecture=new_decoder_architecture,
        max_position_embeddings=256,
        attn_implementation="eager",
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    fields.update(overrides)
    return FalconConfig(**fields)


def tiny_falcon(
    new_decoder_architecture: bool = False,
    num_kv_heads: int = 2,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    **overrides,
):
    """A randomly initialised ``FalconForCausalLM`` with visible weights.

    Falcon's LayerNorms are named ``ln_*``/``*_layernorm``; they get weights near one and small
    biases, as after training (``randomize_`` only recognises names containing "norm").
    """
    from transformers import FalconForCausalLM

    config = tiny_falcon_config(new_decoder_architecture, num_kv_heads, **overrides)
    model = randomize_(FalconForCausalLM(config))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name or "layernorm" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * torch.randn_like(p))
    return cast_parameters(model, device, dtype).eval()


def tiny_mixtral_config(**overrides):
    """A tiny transformers ``MixtralConfig``: 5 experts, 2 per token, 3 layers."""
    from transformers import MixtralConfig

    fields = dict(
        vocab_size=50,
        hidden_size=16,
        intermediate_size=24,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=5,
        num_experts_per_tok=2,
        attn_implementation="eager",
    )
    return MixtralConfig(**(fields | overrides))
