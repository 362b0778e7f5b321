"""The conformance table: every language model here runs every check the models share.

A row is a model of the catalogue (``demos/catalog.py::ROWS``): the transformers model it must equal
(a tiny random config), our class, and a tolerance factor on the setting's (``conftest.py``). A new
Llama-architecture family costs one row there; a new ``model_type`` also its entry in
``ARCHITECTURES`` (its tiny config and our class).
Checks: logits and gradients equal to transformers (CPU fp32/bf16, CUDA when present; at 1 and 2
torch threads, each within half its tolerance: ``demos.parity``), the same on a left-padded batch,
cached decoding equal to the full forward, greedy tokens equal to transformers' ``generate`` (one
prompt, and a left-padded batch), sampling reproducible with a seed, parameter
count, bad token ids and bad masks raise ``ValueError``. What is particular to one family stays in
``tests/models/test_<family>.py``.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch
from torch import nn

from demos.catalog import ROWS, Row, T
from demos.models.falcon import FalconLM
from demos.models.llama import LlamaLM
from demos.weights import count_parameters
from helpers import assert_lm_parity, assert_same_grads, assert_same_greedy_tokens

rows = pytest.mark.parametrize("row", list(ROWS.values()), ids=list(ROWS))


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request: pytest.FixtureRequest):
    """The numeric checks run with torch at 1 and at 2 CPU threads: a matmul split across threads
    sums in another order, and a verdict must hold either way (the margin of demos.parity)."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def tolerant(setting, row: Row):
    f = row.tolerance
    return dataclasses.replace(
        setting,
        atol=setting.atol * f,
        rtol=setting.rtol * f,
        grad_atol=setting.grad_atol * f,
        grad_rtol=setting.grad_rtol * f,
    )


def token_ids(t: int = T, b: int = 2, device: str = "cpu") -> torch.Tensor:
    return torch.randint(0, 97, (b, t), device=device)


def left_padded(lengths: list[int], device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of prompts of ``lengths`` tokens, left-padded with token 0: ``(ids, mask)``."""
    width = max(lengths)
    mask = torch.tensor([[0] * (width - n) + [1] * n for n in lengths], device=device)
    return token_ids(width, len(lengths), device) * mask, mask


def reference_forward(reference: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """transformers' logits on a padded batch, with the position ids ``generate`` would give."""
    kwargs = {"attention_mask": mask}
    if "position_ids" in inspect.signature(reference.forward).parameters:
        kwargs["position_ids"] = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    return reference(ids, **kwargs).logits


def first_block_input(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """The hidden states that enter ``model``'s first block (the first entry of its first
    ``ModuleList``, ours and transformers' alike) when it reads ``ids``."""
    blocks = next(m for m in model.modules() if isinstance(m, nn.ModuleList))
    seen = []

    def catch(module, args, kwargs):
        seen.append(args[0] if args else kwargs["hidden_states"])

    hook = blocks[0].register_forward_pre_hook(catch, with_kwargs=True)
    try:
        with torch.no_grad():
            model(ids)
    finally:
        hook.remove()
    return seen[0]


# ---- equal to transformers ----


@rows
@pytest.mark.parametrize("t", [1, T])
def test_logits_and_gradients_match_transformers(setting, row, t, threads):
    hf = row.reference(setting.device, setting.dtype)
    ours = row.ours.from_hf(hf)
    assert_lm_parity(ours, hf, token_ids(t, device=setting.device), tolerant(setting, row))


@rows
def test_padded_batch_logits_and_gradients_match_transformers(setting, row, threads):
    """Real positions of a left-padded batch: logits, then gradients of a loss over them (no NaN
    from the padded positions may leak into a gradient)."""
    setting = tolerant(setting, row)
    hf = row.reference(setting.device, setting.dtype)
    ours = row.ours.from_hf(hf)
    ids, mask = left_padded([T, 5, 1], setting.device)
    real = mask.bool()
    ref, out = reference_forward(hf, ids, mask)[real], ours(ids, attention_mask=mask)[real]
    setting.close(out, ref)
    w = torch.randn_like(out)
    (ref * w).sum().backward()
    (out * w).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in ours.parameters())
    assert_same_grads(ours, hf, setting)


@rows
def test_first_block_input_equals_transformers_exactly(setting, row):
    """What enters the first block (the embedding, Gemma's times sqrt(c)) equals what enters
    transformers' first decoder layer bit for bit, in every dtype: a lookup and an elementwise product
    round once, in one place, on any CPU or GPU, so no tolerance is due. This is the check that sees a scale
    rounded in another dtype (Gemma's sqrt(c) in float32: 1e-4 relative at width 32, inside bf16's
    logit tolerance; tests/test_mutations.py plants it)."""
    hf = row.reference(setting.device, setting.dtype)
    ours = row.ours.from_hf(hf)
    ids = token_ids(device=setting.device)
    ours_in, hf_in = first_block_input(ours, ids), first_block_input(hf, ids)
    assert ours_in.dtype == hf_in.dtype == setting.dtype
    assert torch.equal(ours_in, hf_in), (
        f"first block's input differs from transformers' by up to "
        f"{(ours_in.double() - hf_in.double()).abs().max().item():.3g}"
    )


@rows
def test_greedy_generate_equals_transformers(fp32_device_setting, row, threads):
    """Tokens are compared in fp32 only: in bf16 two logits can tie and argmax may pick either."""
    setting = fp32_device_setting
    hf = row.reference(setting.device, setting.dtype)
    assert_same_greedy_tokens(row.ours.from_hf(hf), hf, token_ids(5, device=setting.device), 10)


@rows
def test_padded_batch_greedy_generate_equals_transformers(fp32_device_setting, row, threads):
    """Three prompts of 6, 3 and 1 tokens, left-padded, decoded together: the same tokens as HF."""
    setting = fp32_device_setting
    hf = row.reference(setting.device, setting.dtype)
    ids, mask = left_padded([6, 3, 1], setting.device)
    assert_same_greedy_tokens(row.ours.from_hf(hf), hf, ids, 8, attention_mask=mask)


@rows
def test_parameter_count_matches_transformers(row):
    hf = row.reference()
    assert count_parameters(row.ours.from_hf(hf)) == sum(p.numel() for p in hf.parameters())


# ---- properties without a reference ----


@rows
def test_cached_decoding_equals_full_forward(setting, row, threads):
    """A prompt of 4, then 7 steps: each call's logits equal the full forward of the sequence so far
    (its last positions). The prefix, not the whole sequence: with LongRoPE the full forward of 11
    tokens past the switch rotates every position with the long factors, while the logits of a
    step are those of the sequence it has seen, which is also what transformers' generate gives."""
    setting = tolerant(setting, row)
    ours = row.ours.from_hf(row.reference(setting.device, setting.dtype))
    ids = token_ids(11, device=setting.device)
    with torch.no_grad():
        cache = ours.new_cache(2)
        steps = [ours(ids[:, :4], cache)] + [ours(ids[:, i : i + 1], cache) for i in range(4, 11)]
        prefixes = [ours(ids[:, :4])] + [ours(ids[:, : i + 1])[:, -1:] for i in range(4, 11)]
    setting.close(torch.cat(steps, dim=1), torch.cat(prefixes, dim=1))


@rows
def test_sampling_is_reproducible_with_a_seed(row):
    ours = row.ours.from_hf(row.reference())
    prompt = token_ids(4)

    def sample(seed: int, **options) -> torch.Tensor:
        return ours.generate(prompt, 10, do_sample=True, seed=seed, **options)

    assert torch.equal(sample(1, temperature=0.7), sample(1, temperature=0.7))
    assert not torch.equal(sample(1, temperature=100.0), sample(2, temperature=100.0))
    assert torch.equal(sample(3, top_k=1), ours.generate(prompt, 10))  # top-1 sampling is greedy


# ---- bad input ----


@rows
def test_bad_token_ids_raise(row):
    ours = row.ours.from_hf(row.reference())
    with pytest.raises(
        ValueError, match=r"token ids must lie in \[0, 97\), got values from 0 to 97"
    ):
        ours(torch.tensor([[0, 97]]))
    with pytest.raises(ValueError, match="integer tensor"):
        ours(torch.tensor([[0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"integer tensor of shape \(b, [tl]\)"):
        ours(torch.tensor([1, 2, 3]))


@rows
def test_bad_masks_and_generation_options_raise(row):
    ours = row.ours.from_hf(row.reference())
    ids = token_ids(3)
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(b, s\) = \(2, 3\)"):
        ours(ids, attention_mask=torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="integers 0 .padding. and 1"):
        ours(ids, attention_mask=torch.full((2, 3), 2))
    with pytest.raises(ValueError, match="must pad on the left"):
        ours.generate(ids, 2, attention_mask=torch.tensor([[1, 1, 0], [1, 1, 1]]))
    with pytest.raises(ValueError, match=r"max_new_tokens \(0\) must be a positive integer"):
        ours.generate(ids, 0)
    with pytest.raises(ValueError, match=r"temperature \(0.0\) must be positive"):
        ours.generate(ids, 2, do_sample=True, temperature=0.0)
    with pytest.raises(ValueError, match=r"temperature \(None\)"):
        ours.generate(ids, 2, do_sample=True, temperature=None)
    cache = ours.new_cache(2)
    if isinstance(cache, list):
        cache = cache[:1]  # one KV cache for two layers
    else:
        cache.states = cache.states[:1]  # Mamba: one state for two layers
    with pytest.raises(ValueError, match=r"cache must hold one .* per layer \(2\), got 1"):
        ours(ids, cache)


# ---- the notebooks' parity cells run the same comparison ----


def test_compare_lm_pairs_logits_and_every_gradient():
    from demos.book import compare_lm, parity_report

    hf = ROWS["falcon-40b"].reference()
    pairs = compare_lm(FalconLM.from_hf(hf), hf, token_ids())
    assert set(pairs) == {"logits"} | {f"grad {name}" for name, _ in hf.named_parameters()}
    assert all(a.shape == b.shape and torch.isfinite(a).all() for a, b in pairs.values())
    # absolute tolerance here (parity_report's); the scale-aware parity checks are the table's
    assert "PARITY OK" in parity_report(pairs, tolerance=1e-3)
    with pytest.raises(ValueError, match="parameter names differ"):
        compare_lm(LlamaLM.from_hf(ROWS["llama-gqa"].reference()), hf, token_ids())
