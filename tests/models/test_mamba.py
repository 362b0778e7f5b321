"""The selective scan, the Mamba mixer, block and LM against transformers' Mamba; decoding properties
(the checks every model shares are in tests/test_conformance.py)."""

from __future__ import annotations

import pytest
import torch
from transformers.models.mamba import modeling_mamba as hf_mamba

from demos.layers.selective_scan import selective_scan, selective_scan_parallel
from demos.models.mamba import MambaLM, MambaLMBlock, MambaLMConfig, MambaLMMixer
from demos.weights import randomize_weights_ as randomize_
from helpers import (
    assert_lm_parity,
    assert_same_grads,
    cast_parameters,
    tiny_config,
    tiny_model,
)

SCANS = {"sequential": selective_scan, "parallel": selective_scan_parallel}
# (D, z, delta_bias, delta_softplus): none, each alone, all (the block's setting)
OPTIONS = [
    (False, False, False, False),
    (True, False, False, False),
    (False, True, False, False),
    (False, False, True, False),
    (False, False, False, True),
    (True, True, True, True),
]


def paper_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """Algorithm 2 of the Mamba paper, one batch row and one time step at a time, in float64.

    Written from the equations, independently of the code under test: Delta = softplus(delta +
    bias); A_bar = exp(Delta A) (zero-order hold, Eq. 4); B_bar = Delta B (the reference code's
    simplification); x_t = A_bar x_{t-1} + B_bar u_t; y_t = C_t x_t + D u_t; out = y * silu(z).
    """
    u, delta, A, B, C = (t.double() for t in (u, delta, A, B, C))
    b, e, length = u.shape
    out = torch.zeros(b, e, length, dtype=torch.float64)
    states = torch.zeros(b, e, A.shape[1], dtype=torch.float64)
    for i in range(b):
        x = torch.zeros_like(A)  # (e, n)
        for t in range(length):
            dt = delta[i, :, t] + (0 if delta_bias is None else delta_bias.double())  # (e,)
            if delta_softplus:
                dt = torch.log1p(torch.exp(dt))
            x = torch.exp(dt[:, None] * A) * x + (dt * u[i, :, t])[:, None] * B[i, :, t][None, :]
            y = x @ C[i, :, t]  # (e,)
            if D is not None:
                y = y + D.double() * u[i, :, t]
            if z is not None:
                y = y * torch.nn.functional.silu(z[i, :, t].double())
            out[i, :, t] = y
        states[i] = x
    return out, states


def scan_inputs(b, e, n, length, options, device="cpu", dtype=torch.float32, requires_grad=False):
    with_D, with_z, with_bias, _ = options
    t = {
        "u": torch.randn(b, e, length),
        "delta": 0.5 * torch.randn(b, e, length),
        "A": -torch.exp(0.5 * torch.randn(e, n)),
        "B": torch.randn(b, n, length),
        "C": torch.randn(b, n, length),
        "D": torch.randn(e) if with_D else None,
        "z": torch.randn(b, e, length) if with_z else None,
        "delta_bias": 0.3 * torch.randn(e) if with_bias else None,
    }
    if not options[3]:
        t["delta"] = t["delta"].abs() + 0.05  # without softplus, delta must already be positive
    out = {}
    for k, v in t.items():
        if v is not None:
            v = v.to(device, torch.float32 if k in ("A", "D", "delta_bias") else dtype)
            v.requires_grad_(requires_grad)
        out[k] = v
    return out


@pytest.mark.parametrize("form", list(SCANS))
@pytest.mark.parametrize(
    "options", OPTIONS, ids=lambda o: "".join("Dzbs"[i] for i in range(4) if o[i]) or "plain"
)
@pytest.mark.parametrize("length", [1, 7, 300])
def test_scan_matches_the_paper_equations(form, options, length):
    x = scan_inputs(2, 6, 5, length, options)
    out, state = SCANS[form](**x, delta_softplus=options[3], return_last_state=True)
    ref, ref_state = paper_scan(**x, delta_softplus=options[3])
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state.double(), ref_state, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("form", list(SCANS))
@pytest.mark.parametrize("options", OPTIONS[:1] + OPTIONS[-1:], ids=["plain", "Dzbs"])
@pytest.mark.parametrize("length", [1, 7, 300])
@pytest.mark.parametrize("last", [False, True], ids=["out", "out+state"])
def test_scan_matches_transformers_fallback(setting, form, options, length, last):
    """Outputs, final state and every input's gradient vs transformers' ``mamba_selective_scan``."""
    x = scan_inputs(2, 6, 5, length, options, setting.device, setting.dtype, requires_grad=True)
    kwargs = dict(delta_softplus=options[3], return_last_state=last)
    ours = SCANS[form](**x, **kwargs)
    ref = hf_mamba.mamba_selective_scan(
        x["u"], x["delta"], x["A"], x["B"], x["C"], x["D"], x["z"], x["delta_bias"], **kwargs
    )
    ours, ref = (ours, ref) if last else ((ours, None), (ref, None))
    assert ours[0].dtype == x["u"].dtype
    setting.close(ours[0], ref[0].to(ours[0].dtype))
    if last:
        setting.close(ours[1], ref[1].float())
    w = torch.randn_like(ours[0], dtype=torch.float32)
    grads = {}
    for name, y in (("ours", ours[0]), ("ref", ref[0])):
        inputs = [v for v in x.values() if v is not None]
        grads[name] = torch.autograd.grad((y.float() * w).sum(), inputs)
    for name, g, g_ref in zip(
        [k for k, v in x.items() if v is not None], grads["ours"], grads["ref"], strict=True
    ):
        setting.close(g, g_ref, grad=True, msg=f"d/d{name}")


@pytest.mark.parametrize("form", list(SCANS))
def test_scan_matches_mamba_ssm_cuda_kernel(fp32_device_setting, form):
    """Against the official CUDA kernel, where a GPU and the ``mamba_ssm`` package are present."""
    setting = fp32_device_setting
    if setting.device != "cuda":
        pytest.skip("the mamba_ssm kernel runs on CUDA only")
    ops = pytest.importorskip("mamba_ssm.ops.selective_scan_interface")
    x = scan_inputs(2, 8, 16, 300, OPTIONS[-1], "cuda", torch.float32)
    ours, state = SCANS[form](**x, delta_softplus=True, return_last_state=True)
    ref, ref_state = ops.selective_scan_fn(
        x["u"], x["delta"], x["A"], x["B"], x["C"], x["D"], x["z"], x["delta_bias"], True, True
    )
    setting.close(ours, ref)
    setting.close(state, ref_state.float())


@pytest.mark.parametrize("chunk_size", [1, 3, 16, 64, 1000])
def test_parallel_equals_sequential_for_any_chunk_size(chunk_size):
    """Both compute in fp32 (as the reference does, whatever the input dtype): equal up to fp32 rounding."""
    x = scan_inputs(1, 4, 3, 130, OPTIONS[-1])
    seq, seq_state = selective_scan(**x, delta_softplus=True, return_last_state=True)
    par, par_state = selective_scan_parallel(
        **x, delta_softplus=True, return_last_state=True, chunk_size=chunk_size
    )
    torch.testing.assert_close(par, seq, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(par_state, seq_state, atol=1e-5, rtol=1e-5)


# ---- the mixer, the block, the LM ----


def copy_into(ours: torch.nn.Module, hf: torch.nn.Module, setting) -> torch.nn.Module:
    ours.load_state_dict(hf.state_dict())  # same names, no rename map
    return cast_parameters(ours, setting.device, setting.dtype)


@pytest.mark.parametrize("parallel", [True, False], ids=["parallel", "sequential"])
@pytest.mark.parametrize("length", [1, 7, 40])
@pytest.mark.parametrize("unit", ["mixer", "block"])
def test_mixer_and_block_match_transformers(setting, parallel, length, unit):
    config = tiny_config("mamba", use_bias=True)
    hf_cls = hf_mamba.MambaMixer if unit == "mixer" else hf_mamba.MambaBlock
    ours_cls = MambaLMMixer if unit == "mixer" else MambaLMBlock
    hf = cast_parameters(randomize_(hf_cls(config, layer_idx=0)), setting.device, setting.dtype)
    hf.eval()  # in training mode transformers would try the fused mamba_ssm kernel where installed
    ours = copy_into(ours_cls(MambaLMConfig.from_hf(config)), hf, setting)
    h = torch.randn(2, length, 32, device=setting.device, dtype=setting.dtype, requires_grad=True)
    ref, out = hf(h), ours(h, parallel=parallel)
    setting.close(out, ref)
    w = torch.randn_like(out)
    (ref * w).sum().backward()
    g_ref = h.grad.clone()
    h.grad = None
    (out * w).sum().backward()
    setting.close(h.grad, g_ref, grad=True, msg="d/dh")
    assert_same_grads(ours, hf, setting)


@pytest.mark.parametrize(
    "parallel, length",
    [(True, 1), (True, 33), (False, 9)],  # the table runs (True, 9)
    ids=["parallel-1", "parallel-33", "sequential-9"],
)
def test_lm_logits_and_gradients_match_transformers(setting, parallel, length):
    hf = tiny_model("mamba", setting.device, setting.dtype)
    ours = MambaLM.from_hf(hf)
    ids = torch.randint(0, 97, (2, length), device=setting.device)
    assert_lm_parity(ours, hf, ids, setting, parallel=parallel)


def test_state_dict_keys_match_transformers():
    hf = tiny_model("mamba")
    ours = MambaLM.from_hf(hf)
    assert list(ours.state_dict()) == list(hf.state_dict())
    assert ours.lm_head.weight is ours.backbone.embeddings.weight


def test_untied_head_and_no_conv_bias_match_transformers(fp32_setting):
    hf = tiny_model("mamba", tie_word_embeddings=False, use_conv_bias=False, time_step_rank=3)
    ours = MambaLM.from_hf(hf)
    assert ours.lm_head.weight is not ours.backbone.embeddings.weight
    ids = torch.randint(0, 97, (2, 9))
    fp32_setting.close(ours(ids), hf(ids).logits)


@pytest.mark.parametrize("prompt", [1, 2, 5])
def test_step_decoding_equals_full_forward(setting, prompt):
    """After a prompt shorter or longer than the convolution, each step's logits equal the full forward."""
    ours = MambaLM.from_hf(tiny_model("mamba", setting.device, setting.dtype))
    ids = torch.randint(0, 97, (2, 12), device=setting.device)
    with torch.no_grad():
        full = ours(ids)
        cache = ours.new_cache()
        steps = [ours(ids[:, :prompt], cache)]  # the scan, leaving each block's state
        steps += [ours(ids[:, i : i + 1], cache) for i in range(prompt, 12)]  # recurrent steps
    setting.close(torch.cat(steps, dim=1), full)


def test_state_size_does_not_grow_with_the_sequence():
    ours = MambaLM.from_hf(tiny_model("mamba"))
    sizes = []
    for length in (3, 30):
        cache = ours.new_cache()
        ours(torch.randint(0, 97, (1, length)), cache)
        sizes.append([(tuple(s.conv.shape), tuple(s.ssm.shape)) for s in cache.states])
    assert sizes[0] == sizes[1] == [((1, 64, 3), (1, 64, 8))] * 2


def test_final_state_equals_transformers_cache(fp32_setting):
    hf = tiny_model("mamba")
    ours = MambaLM.from_hf(hf)
    ids = torch.randint(0, 97, (2, 9))
    cache = hf(ids, use_cache=True).cache_params
    filled = ours.new_cache()
    ours(ids, filled)
    for i, state in enumerate(filled.states):
        fp32_setting.close(state.ssm, cache.get_recurrent_state(i, state_idx=0).float())
        conv = cache.get_conv_state(i, state_idx=0)  # transformers keeps the last k inputs
        fp32_setting.close(state.conv, conv[:, :, -state.conv.shape[2] :])


# ---- bad input ----


@pytest.mark.parametrize("form", list(SCANS))
def test_inconsistent_scan_shapes_raise(form):
    scan = SCANS[form]
    x = scan_inputs(2, 6, 5, 7, OPTIONS[-1])
    bad = {
        "u": (x["u"][0], r"u must have shape \(b, e, l\), got \(6, 7\)"),
        "delta": (x["delta"][:, :, :6], r"delta \(2, 6, 6\) must have the shape of u"),
        "A": (x["A"][:5], r"A must have shape \(e, n\) with e = 6 \(from u\), got \(5, 5\)"),
        "B": (x["B"][:, :4], r"B must have shape \(b, n, l\) = \(2, 5, 7\).*got \(2, 4, 7\)"),
        "C": (x["C"][:, :, :3], r"C must have shape \(b, n, l\) = \(2, 5, 7\).*got \(2, 5, 3\)"),
        "D": (x["D"][:2], r"D must have shape \(6,\), got \(2,\)"),
        "z": (x["z"][:1], r"z must have shape \(2, 6, 7\), got \(1, 6, 7\)"),
        "delta_bias": (x["delta_bias"][None], r"delta_bias must have shape \(6,\), got \(1, 6\)"),
    }
    for name, (value, message) in bad.items():
        with pytest.raises(ValueError, match=message):
            scan(**{**x, name: value})


def test_bad_chunk_size_raises():
    x = scan_inputs(1, 2, 3, 5, OPTIONS[0])
    with pytest.raises(ValueError, match=r"chunk_size \(0\) must be a positive integer"):
        selective_scan_parallel(**x, chunk_size=0)


def test_bad_config_and_ids_raise():
    with pytest.raises(ValueError, match=r"state_size \(0\) must be a positive integer"):
        MambaLMConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, state_size=0)
    with pytest.raises(ValueError, match=r"hidden_act \('gelu'\) must be 'silu'"):
        MambaLMConfig.from_hf(tiny_config("mamba", hidden_act="gelu"))


def test_a_cache_reused_with_another_batch_size_raises():
    """A Mamba state serves one batch: reusing it with another batch size is a ValueError, not a
    torch.cat error from inside the convolution step."""
    ours = MambaLM(MambaLMConfig(vocab_size=11, hidden_size=8, num_hidden_layers=2))
    cache = ours.new_cache()
    ours(torch.randint(0, 11, (2, 5)), cache)  # the prompt fills a state for a batch of 2
    with pytest.raises(
        ValueError, match=r"conv state has shape \(2, 16, 3\), this call needs \(3, 16, 3\)"
    ):
        ours(torch.randint(0, 11, (3, 1)), cache)
