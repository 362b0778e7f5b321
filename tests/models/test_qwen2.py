"""What is particular to Qwen2LM beyond the conformance table: first-generation Qwen's inference-time
switches (dynamic NTK, LogN) against transformers and against themselves, the report's lower-layer
windows read from a Qwen2Config's layer_types, and the registry's note on Qwen's MLP width."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from demos.catalog import ROWS
from demos.layers.long_context import LogNAttention, lower_layers_window
from demos.models.qwen2 import Qwen2LM, Qwen2LMConfig
from demos.toys.qwen import dynamic_ntk_pair

L = 16  # the tiny pair's training length


@pytest.mark.parametrize("t", [5, L, 2 * L, 4 * L])
def test_dynamic_ntk_equals_transformers_dynamic_at_powers_of_two(t):
    """Logits and every gradient. Up to L the two are the same floats; past it transformers' forward
    rounds its scale 2r - 1 raised to d / (d - 2) in float32 (seq_len is a tensor there) while
    Qwen's code and ours keep it in float64: one ulp on the frequencies, 1e-5 relative at most."""
    torch.manual_seed(0)
    ours, reference = dynamic_ntk_pair(L)
    ids = torch.randint(0, reference.config.vocab_size, (2, t))
    from demos.book import compare_lm

    for name, (a, b) in compare_lm(ours, reference, ids).items():
        if t <= L:
            assert torch.equal(a, b), name
        else:
            scale = max(1.0, b.abs().max().item())
            torch.testing.assert_close(a, b, atol=1e-5 * scale, rtol=0, msg=name)


def test_between_chunks_qwens_scale_differs_from_transformers():
    torch.manual_seed(0)
    ours, reference = dynamic_ntk_pair(L)
    ids = torch.randint(0, reference.config.vocab_size, (1, 3 * L))  # alpha 7 vs 5
    with torch.no_grad():
        assert (ours(ids) - reference(ids).logits).abs().max() > 0.1


def test_dynamic_ntk_changes_nothing_inside_the_training_length():
    torch.manual_seed(0)
    ours, _ = ROWS["qwen1.5-like"].pair()
    ntk = Qwen2LM(dataclasses.replace(ours.config, use_dynamic_ntk=True, seq_length=8))
    ntk.load_state_dict(ours.state_dict())
    ids = torch.randint(0, 97, (2, 8))
    assert torch.equal(ntk(ids), ours(ids))
    longer = torch.randint(0, 97, (2, 12))
    assert not torch.equal(ntk(longer), ours(longer))


def test_logn_model_uses_logn_attention_and_decodes_as_it_forwards():
    torch.manual_seed(0)
    ours, _ = ROWS["qwen1.5-like"].pair()
    config = dataclasses.replace(ours.config, use_logn_attn=True, seq_length=4)
    logn = Qwen2LM(config).eval()
    logn.load_state_dict(ours.state_dict())
    assert all(isinstance(b.self_attn, LogNAttention) for b in logn.blocks)
    ids = torch.randint(0, 97, (1, 10))
    with torch.no_grad():
        assert torch.equal(logn(ids[:, :4]), ours(ids[:, :4]))  # inside L: the identity
        full = logn(ids)
        cache = logn.new_cache()
        steps = [logn(ids[:, i : i + 1], cache) for i in range(10)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)


def test_the_reports_lower_layer_window_read_from_layer_types():
    """The report windows the lower layers; transformers' max_window_layers windows the upper ones,
    so the report's assignment is an explicit layer_types, which both models read."""
    torch.manual_seed(0)
    row = ROWS["qwen2-window-top"]
    layer_types = lower_layers_window(2, 1)  # layer 0 windowed, layer 1 full
    reference = row.reference(layer_types=list(layer_types))
    assert list(reference.config.layer_types) == ["sliding_attention", "full_attention"]
    ours = Qwen2LM.from_hf(reference)
    assert [b.self_attn.config.sliding_window for b in ours.blocks] == [3, None]
    ids = torch.randint(0, 97, (2, 9))
    from demos.book import compare_lm

    for name, (a, b) in compare_lm(ours, reference, ids).items():
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=name)


def test_switches_need_a_training_length():
    ours, _ = ROWS["qwen1.5-like"].pair()
    with pytest.raises(ValueError, match="need seq_length"):
        dataclasses.replace(ours.config, use_logn_attn=True)
    with pytest.raises(ValueError, match=r"seq_length \(1\) must be >= 2"):
        dataclasses.replace(ours.config, use_dynamic_ntk=True, seq_length=1)
    with pytest.raises(ValueError, match="use_logn_attn"):
        dataclasses.replace(ours.config, use_logn_attn=1, seq_length=4)
    assert Qwen2LMConfig.from_hf(ROWS["qwen1.5-like"].hf_config()).use_dynamic_ntk is False


def test_qwen_7b_config_json_doubles_the_mlp_width():
    """Qwen/Qwen-7B's config.json says intermediate_size 22016 and its QWenMLP builds w1 and w2 of
    intermediate_size // 2 each [qwen2023modeling]: the registry keeps 11,008, one projection's."""
    from demos.registry import family_sizes

    size = next(s for s in family_sizes("Qwen") if s.name == "Qwen-7B")
    assert 22016 // 2 == size.intermediate_size == 11008
