"""``Config.from_hf`` declares what it reads: every field of a transformers config is one of our
dataclass fields, a field read another way (``hf_reads``), a field the eager forward does not read in
eval mode (``hf_ignores``) or one every config carries (``demos.models.HF_COMMON``); any other field
set away from its default is refused, naming it, instead of being silently ignored."""

from __future__ import annotations

import dataclasses
import types

import pytest
import torch
from transformers import LlamaConfig

from demos.catalog import ARCHITECTURES, ROWS, class_for_model_type
from demos.eval.scoring import max_length_of
from demos.models import HF_COMMON
from demos.models.falcon import FalconLMConfig
from demos.models.gemma import GemmaLMConfig
from demos.models.gpt_neox import GPTNeoXLMConfig
from demos.models.llama import LlamaLMConfig
from demos.models.mamba import MambaLMConfig
from demos.models.mistral import MistralLMConfig
from demos.models.persimmon import PersimmonLMConfig
from demos.models.phi import PhiLMConfig
from demos.models.phi3 import Phi3LMConfig
from demos.models.qwen2 import Qwen2LMConfig
from demos.models.qwen2_moe import Qwen2MoeLMConfig
from demos.registry.hf import hf_config
from demos.registry.load import load_registry
from helpers import TINY, tiny_config, tiny_model

SERVED = sorted(mt for mt, arch in ARCHITECTURES.items() if arch.ours is not None)
CONFIG_CLASSES = {mt: ARCHITECTURES[mt].ours_class().config_class for mt in SERVED}
# (model_type, config overrides): every tiny config we test on, the architectures' and the rows'
TINY_CONFIGS = {f"arch-{mt}": (mt, {}) for mt in SERVED} | {
    f"row-{name}": (row.model_type, row.config) for name, row in ROWS.items()
}
RELEASED = [s for s in load_registry() if s.hf and "_test" not in s.notes]


def accounted(config_class: type) -> set[str]:
    """The transformers fields ``config_class.from_hf`` declares: fields, reads, ignores, common."""
    fields = {f.name for f in dataclasses.fields(config_class)}
    return fields | set(config_class.hf_reads) | set(config_class.hf_ignores) | HF_COMMON


# ---- (a) no false refusals, and every field of our tiny configs is declared ----


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_every_tiny_config_reads(name):
    model_type, overrides = TINY_CONFIGS[name]
    config = tiny_config(model_type, **overrides)
    ours = CONFIG_CLASSES[model_type].from_hf(config)
    assert ours.vocab_size == config.vocab_size


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_every_field_of_a_tiny_config_is_declared(name):
    """A field a newer transformers adds shows up here, by name, until a class declares it."""
    model_type, overrides = TINY_CONFIGS[name]
    config_class = CONFIG_CLASSES[model_type]
    undeclared = sorted(
        set(tiny_config(model_type, **overrides).to_dict()) - accounted(config_class)
    )
    assert not undeclared, f"{config_class.__name__} declares none of {undeclared}"


@pytest.mark.parametrize("model_type", SERVED)
def test_the_declarations_are_consistent(model_type):
    config_class = CONFIG_CLASSES[model_type]
    fields = {f.name for f in dataclasses.fields(config_class)}
    reads, ignores = config_class.hf_reads, config_class.hf_ignores
    assert not set(reads) & set(ignores), "a field is both read and ignored"
    assert not set(ignores) & (fields | HF_COMMON), "an ignored field is a field or a common one"
    assert not set(reads) & HF_COMMON
    assert all(isinstance(why, str) and why for why in (*reads.values(), *ignores.values()))


def test_a_new_transformers_field_at_its_default_reads_and_set_is_refused():
    """As in a newer transformers than 5.23 (Colab): a new field loads while it changes nothing."""

    class NewerLlamaConfig(LlamaConfig):  # LlamaConfig with a field 5.23 does not have
        def __post_init__(self, **kwargs):
            self.new_switch = kwargs.pop("new_switch", False)
            super().__post_init__(**kwargs)

    assert LlamaLMConfig.from_hf(NewerLlamaConfig(**TINY["llama"])).hidden_size == 32
    with pytest.raises(ValueError, match=r"does not implement 'new_switch' \(= True\)"):
        LlamaLMConfig.from_hf(NewerLlamaConfig(**TINY["llama"], new_switch=True))


def test_keys_of_released_config_jsons_the_modeling_does_not_read_are_accepted():
    """Keys the checkpoints' config.json carry that 5.23's modeling files do not read."""
    assert Phi3LMConfig.from_hf(tiny_config("phi3", attention_bias=False)).attention_bias is False
    GemmaLMConfig.from_hf(tiny_config("gemma", hidden_activation="gelu_pytorch_tanh"))
    FalconLMConfig.from_hf(tiny_config("falcon", apply_residual_connection_post_layernorm=False))
    legacy = dict(d_model=32, n_layer=2, fused_add_norm=True, rms_norm=True, ssm_cfg={})
    MambaLMConfig.from_hf(tiny_config("mamba", pad_vocab_size_multiple=8, **legacy))


@pytest.mark.parametrize("model_type", ["qwen2", "phi3"])
def test_head_dim_is_read_where_transformers_reads_it_though_its_config_does_not_declare_it(
    model_type,
):
    assert CONFIG_CLASSES[model_type].from_hf(tiny_config(model_type, head_dim=16)).head_dim == 16


# ---- (b) a setting we do not implement is refused, naming the field ----

# (config class, model_type, overrides, the field the message names): each changes transformers'
# outputs (or would change ours and not transformers')
REFUSED = [
    # masking_utils reads getattr(config, "is_causal", True): False gives a bidirectional mask
    *[
        (CONFIG_CLASSES[mt], mt, {"is_causal": False}, "is_causal")
        for mt in SERVED
        if mt != "mamba"
    ],
    # not LlamaConfig fields: transformers' Llama has no window; ours would slide
    (LlamaLMConfig, "llama", {"sliding_window": 3}, "sliding_window"),
    # MistralConfig has no layer_types (transformers warns and slides in every layer); ours would not
    (
        MistralLMConfig,
        "mistral",
        {"sliding_window": 3, "layer_types": ["full_attention", "sliding_attention"]},
        "layer_types",
    ),
    (Qwen2LMConfig, "qwen2", {"mlp_bias": True}, "mlp_bias"),  # Qwen2MLP has no bias switch
    # Qwen2MoeMLP has no bias switch either
    (Qwen2MoeLMConfig, "qwen2_moe", {"mlp_bias": True}, "mlp_bias"),
    (GemmaLMConfig, "gemma", {"use_bidirectional_attention": True}, "use_bidirectional_attention"),
    (GemmaLMConfig, "gemma", {"mlp_bias": True}, "mlp_bias"),
    (
        Phi3LMConfig,
        "phi3",
        {
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1e4,
                "partial_rotary_factor": 0.5,
            }
        },
        "partial_rotary_factor",
    ),
    (Phi3LMConfig, "phi3", {"attention_bias": True}, "attention_bias"),  # Phi3Attention: no bias
    (FalconLMConfig, "falcon", {"alibi": True}, "alibi"),
    (
        FalconLMConfig,
        "falcon",
        {"new_decoder_architecture": True, "parallel_attn": False},
        "parallel",
    ),
    (FalconLMConfig, "falcon", {"num_ln_in_parallel_attn": 2}, "num_ln_in_parallel_attn"),
    # the rotary embedding reads getattr(config, "head_dim"); GPT-NeoX's attention does not
    (GPTNeoXLMConfig, "gpt_neox", {"head_dim": 4}, "head_dim"),
    # PersimmonConfig has no attention_bias: transformers' q/k/v always has one; ours would not
    (PersimmonLMConfig, "persimmon", {"attention_bias": False}, "attention_bias"),
    (PhiLMConfig, "phi", {"head_dim": 16}, "head_dim"),  # PhiAttention reads it; ours is c / h
    (PhiLMConfig, "phi", {"qk_layernorm": True}, "qk_layernorm"),
    (MambaLMConfig, "mamba", {"intermediate_size": 100}, "intermediate_size"),  # not expand * c
    (MambaLMConfig, "mamba", {"hidden_act": "gelu"}, "hidden_act"),
]


@pytest.mark.parametrize(
    ("config_class", "model_type", "overrides", "field"),
    REFUSED,
    ids=[f"{c.__name__}-{f}" for c, _, _, f in REFUSED],
)
def test_a_setting_we_do_not_implement_is_refused_naming_it(
    config_class, model_type, overrides, field
):
    with pytest.raises(ValueError, match=field):
        config_class.from_hf(tiny_config(model_type, **overrides))


def test_every_config_class_refuses_at_least_one_field():
    assert set(CONFIG_CLASSES.values()) <= {c for c, *_ in REFUSED}


def test_the_message_names_the_field_its_value_and_the_class():
    with pytest.raises(ValueError) as info:
        PhiLMConfig.from_hf(tiny_config("phi", foo=3))
    assert str(info.value) == (
        "PhiLMConfig.from_hf does not implement 'foo' (= 3); it may change the outputs. This "
        "class cannot build the model that value describes; to build it anyway, remove the field "
        "(a fresh config of that class does not carry it)."
    )


def test_the_message_names_transformers_default_when_the_config_class_has_one(monkeypatch):
    """A field transformers' config class defines: the message gives its default (here a field
    made undeclared on purpose, so the generic check meets it)."""
    ignores = {k: v for k, v in PhiLMConfig.hf_ignores.items() if k != "initializer_range"}
    monkeypatch.setattr(PhiLMConfig, "hf_ignores", ignores)
    with pytest.raises(ValueError, match=r"'initializer_range' \(= 0\.5\).* default, 0\.02\."):
        PhiLMConfig.from_hf(tiny_config("phi", initializer_range=0.5))


def test_is_causal_false_does_change_transformers_outputs():
    """Why it is refused: read silently before, and transformers' Llama attends both ways with it."""
    ids = torch.randint(0, 97, (1, 9))
    torch.manual_seed(0)
    causal = tiny_model("llama")
    torch.manual_seed(0)
    both_ways = tiny_model("llama", is_causal=False)
    with torch.no_grad():
        assert (causal(ids).logits - both_ways(ids).logits).abs().max() > 0.1


def test_transformers_mistral_ignores_layer_types():
    """Why Mistral's layer_types is refused: transformers slides in every layer whatever it says."""
    ids = torch.randint(0, 97, (1, 9))
    torch.manual_seed(0)
    plain = tiny_model("mistral", sliding_window=3)
    torch.manual_seed(0)
    per_layer = tiny_model(
        "mistral", sliding_window=3, layer_types=["full_attention", "sliding_attention"]
    )
    with torch.no_grad():
        torch.testing.assert_close(plain(ids).logits, per_layer(ids).logits, rtol=0, atol=0)


# ---- (c) a config of another model_type is refused, naming the class that serves it ----


def test_reading_another_familys_config_names_the_class_that_serves_it():
    with pytest.raises(ValueError, match=r"use demos\.models\.qwen2\.Qwen2LM"):
        LlamaLMConfig.from_hf(tiny_config("qwen2"))
    with pytest.raises(ValueError, match=r"use demos\.models\.llama\.LlamaLM"):
        GemmaLMConfig.from_hf(tiny_config("llama"))


@pytest.mark.parametrize("model_type", SERVED)
@pytest.mark.parametrize("other", SERVED)
def test_every_class_refuses_every_other_model_type(model_type, other):
    if other == model_type:
        return
    serving = class_for_model_type(other).replace(".", r"\.")
    with pytest.raises(ValueError, match=rf"got '{other}'; use {serving}$"):
        CONFIG_CLASSES[model_type].from_hf(tiny_config(other))


# ---- (d) every released size with a transformers architecture still reads ----


@pytest.mark.parametrize("size", RELEASED, ids=[s.name for s in RELEASED])
def test_every_released_size_reads(size):
    config = hf_config(size)
    ours = ARCHITECTURES[config.model_type].ours_class().config_class.from_hf(config)
    assert ours.hidden_size == size.hidden_size


@pytest.mark.parametrize("row", sorted(ROWS))
def test_the_context_length_is_read(row):
    """Every config carries the checkpoint's max_position_embeddings (None where transformers' has
    none: Mamba): lm-eval's HFLM scores in that window, so demos.eval.loglikelihood does too."""
    hf_config = ROWS[row].hf_config()
    ours = ROWS[row].ours.config_class.from_hf(hf_config)
    expected = getattr(hf_config, "max_position_embeddings", None)
    assert getattr(ours, "max_position_embeddings", None) == expected
    if expected is not None:
        assert max_length_of(types.SimpleNamespace(config=ours)) == expected
