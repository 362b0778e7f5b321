"""Builders for tiny random transformers models (nothing downloaded, eager attention), and the checks
the parity tests share. Their tolerances are ``setting``'s (tests/conftest.py, from the policy of
:mod:`demos.parity`), each comparison passing at half its tolerance.

The builders and the table of tiny configs live in :mod:`demos.testing` (the traps and scripts use
them too) and are re-exported here: ``tiny_config(model_type, **overrides)`` is transformers' config
class for that ``model_type`` with the tiny fields of :data:`TINY`; ``tiny_model(model_type, ...)``
builds its ``...ForCausalLM`` with visible random weights, cast to a device and dtype. A new
``model_type`` adds its row to ``demos.testing.TINY``.
"""

from __future__ import annotations

import torch

# re-exported: the tests import these names from here
from demos.parity import random_linear_backward
from demos.testing import COMMON, TINY, cast_parameters, tiny_config, tiny_model  # noqa: F401
from demos.weights import load_hf_weights
from demos.weights import randomize_weights_ as randomize_


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
    random_linear_backward(out, ref)  # one random linear loss: every gradient is non-trivial
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
    random_linear_backward(out, ref)
    setting.close(x_ours.grad, x_ref.grad, grad=True, msg="d/dx")
    assert_same_grads(ours, hf, setting)


def tables(rotary_emb, t: int, setting):
    """transformers' own partial cos/sin tables ``(1, t, r)`` in the setting's dtype."""
    x = torch.ones(1, device=setting.device, dtype=setting.dtype)  # only its dtype is read
    return rotary_emb(x, torch.arange(t, device=setting.device)[None])


def assert_block_parity(ours, hf, rotary_emb, setting, t: int = 6) -> None:
    """A decoder block ``ours(x, (cos, sin))`` against transformers' decoder layer ``hf`` (called
    with ``attention_mask=`` and ``position_embeddings=``) on ``x (2, t, c)``, both given the
    reference's own rotary tables from ``rotary_emb``; output and every gradient."""
    cos, sin = tables(rotary_emb, t, setting)  # (1, t, r)
    assert_module_parity(
        ours,
        hf,
        lambda x: ours(x, (cos[0], sin[0])),
        lambda x: hf(x, attention_mask=causal(t, setting), position_embeddings=(cos, sin)),
        (2, t, rotary_emb.config.hidden_size),
        setting,
    )


def assert_layer_parity(ours, hf, setting, width: int = 32) -> None:
    """Give transformers' layer ``hf`` (an MLP, a norm: ``x -> y``) visible random weights in the
    setting's device and dtype, copy them into ``ours``, and compare both on ``x (2, 5, width)``:
    output, input gradient and every parameter gradient."""
    hf = cast_parameters(randomize_(hf), setting.device, setting.dtype)
    ours = load_hf_weights(ours, hf)
    assert_module_parity(ours, hf, ours, hf, (2, 5, width), setting)


def markdown_with_myst(cells) -> list[str]:
    """The start of each markdown cell that still holds a {cite} role or an admonition fence."""
    return [
        c["source"][:120] if isinstance(c["source"], str) else "".join(c["source"])[:120]
        for c in cells
        if c["cell_type"] == "markdown"
        and any(m in "".join(c["source"]) for m in ("{cite}", "```{admonition}"))
    ]
