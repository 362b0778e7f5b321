"""The catalogue (``demos/catalog.py``) is complete and true: every model module has a row, every
registry family's architecture has a class, rows named after a family have its released shape
ratios, and a row that claims a feature turns it on. The decoder shell gives each block its index.
"""

from __future__ import annotations

import dataclasses
import pkgutil

import pytest
import torch

import demos
import demos.models
from demos.catalog import ARCHITECTURES, ROWS, T, class_for_model_type, rows_of, shape_ratios
from demos.registry import families, family_sizes, hf_config
from demos.testing import tiny_config

NOT_MODELS = {"decoder", "upscaling"}  # the shell every decoder shares; depth up-scaling of one


def released_configs() -> dict[str, list]:
    """family -> the transformers configs of its sizes that have an architecture."""
    out: dict[str, list] = {}
    for family in families():
        for size in family_sizes(family):
            if size.hf and "_test" not in size.notes:
                out.setdefault(family, []).append((size.name, hf_config(size)))
    return out


RELEASED = released_configs()


def test_every_model_module_has_an_architecture_and_a_row():
    modules = {m.name for m in pkgutil.iter_modules(demos.models.__path__)} - NOT_MODELS
    served = {a.ours.partition(":")[0].rsplit(".", 1)[1] for a in ARCHITECTURES.values() if a.ours}
    assert modules - served == set(), "a module in demos/models/ has no entry in ARCHITECTURES"
    for module in modules:
        assert module in ARCHITECTURES, f"demos/models/{module}.py is not named after a model_type"
        assert rows_of(module), f"model_type {module!r} has no row in demos.catalog.ROWS"


@pytest.mark.parametrize("model_type", [a for a, arch in ARCHITECTURES.items() if arch.ours])
def test_each_class_reads_its_model_type_and_is_exported(model_type):
    cls = ARCHITECTURES[model_type].ours_class()
    assert cls.__module__ == f"demos.models.{model_type}"
    assert model_type in cls.config_class.model_types
    for name in (cls.__name__, cls.config_class.__name__):
        assert name in demos.__all__, f"{name} is missing from demos/__init__.py's export list"
    assert class_for_model_type(model_type) == f"{cls.__module__}.{cls.__name__}"


def test_every_registry_familys_architecture_has_a_class():
    missing = {
        f"{family} ({config.model_type})"
        for family, sizes in RELEASED.items()
        for _, config in sizes
        if class_for_model_type(config.model_type) is None
    }
    assert missing == set(), f"no class serves {sorted(missing)}"


def test_every_row_is_a_known_architecture_with_a_class():
    for name, row in ROWS.items():
        assert row.model_type in ARCHITECTURES, name
        assert row.ours is ARCHITECTURES[row.model_type].ours_class(), name
        assert row.shows, f"row {name} does not say what it shows"


FAMILY_ROWS = [(name, family) for name, row in ROWS.items() for family in row.families]


@pytest.mark.parametrize("name,family", FAMILY_ROWS, ids=[f"{n}-{f}" for n, f in FAMILY_ROWS])
def test_a_row_named_after_a_family_has_its_released_shape_ratios(name, family):
    """Heads per key/value head, head_dim against c/h, the rotary fraction and the window of the row
    equal those of at least one released size of the family (a tiny MQA row cannot stand for GQA)."""
    assert family in RELEASED, (
        f"{family} has no released size with a transformers architecture: a family row needs the "
        "family's sizes in src/demos/registry/registry.yaml, with hf: {model_type: ...}"
    )
    ours = shape_ratios(ROWS[name].hf_config())
    released = {size: shape_ratios(config) for size, config in RELEASED[family]}
    assert ours in released.values(), f"{name}: {ours}; {family}'s sizes: {released}"


def test_every_family_with_a_class_has_a_row():
    covered = {family for row in ROWS.values() for family in row.families}
    assert set(RELEASED) - covered == set()


@pytest.mark.parametrize("name", ROWS)
def test_a_rows_window_is_shorter_than_the_tables_sequence(name):
    """A row that has a window in some layer turns it on: W < T, the conformance table's length."""
    config = ROWS[name].hf_config()
    if shape_ratios(config).get("sliding window"):
        assert config.sliding_window < T


def test_the_family_ratios_the_table_relies_on():
    """The ratios that once were wrong: Yi is grouped-query with two or more key/value heads,
    Falcon-40B has 16 query heads per key/value head, Gemma-2B's head_dim is c/h and 7B's is not."""
    assert shape_ratios(ROWS["yi-like"].hf_config())["attention"] == "GQA h/g=8"
    assert ROWS["yi-like"].hf_config().num_key_value_heads == 2
    assert shape_ratios(ROWS["yi-34b-like"].hf_config())["attention"] == "GQA h/g=7"
    for name in ("yi-like", "yi-34b-like"):  # Yi's RoPE base, as its configs ship it
        assert ROWS[name].hf_config().rope_parameters["rope_theta"] == 5e6
    assert shape_ratios(ROWS["falcon-40b"].hf_config())["attention"] == "GQA h/g=16"
    assert shape_ratios(ROWS["gemma-2b-like"].hf_config())["head_dim == hidden/heads"]
    assert not shape_ratios(ROWS["gemma-7b-like"].hf_config())["head_dim == hidden/heads"]


# ---- the decoder shell ----

DECODERS = [name for name, row in ROWS.items() if row.model_type != "mamba"]


@pytest.mark.parametrize("name", DECODERS)
def test_the_shell_gives_each_block_its_layer_index(name):
    ours, _ = ROWS[name].pair()
    assert [block.layer_idx for block in ours.blocks] == list(range(len(ours.blocks)))


def test_the_window_is_per_layer():
    """qwen2-window-top: layer 0 attends to everything, layer 1 to a window of 3; a window in the
    config that no layer uses reaches no attention."""
    top, _ = ROWS["qwen2-window-top"].pair()
    assert [b.self_attn.config.sliding_window for b in top.blocks] == [None, 3]
    unused, _ = ROWS["qwen2-window-unused"].pair()
    assert unused.config.sliding_window == 3
    assert [b.self_attn.config.sliding_window for b in unused.blocks] == [None, None]
    assert [type(c).__name__ for c in top.new_cache()] == ["KVCache", "RollingKVCache"]


def test_applying_an_unused_window_everywhere_changes_the_logits():
    """What Llama's reader did with a Qwen2 config: the window on every layer. The row is only a
    proof if that mistake shows, so it must change the logits at T tokens."""
    ours, reference = ROWS["qwen2-window-unused"].pair()
    wrong_config = dataclasses.replace(ours.config, layer_types=None)  # the window on every layer
    wrong = type(ours)(wrong_config)
    wrong.load_state_dict(ours.state_dict())
    ids = torch.randint(0, reference.config.vocab_size, (2, T))
    with torch.no_grad():
        right, mistaken, expected = ours(ids), wrong.eval()(ids), reference(ids).logits
    torch.testing.assert_close(right, expected, atol=1e-5, rtol=1e-5)
    assert (mistaken - expected).abs().max() > 0.1


def test_qwen2_has_a_bias_on_q_k_v_and_none_on_o():
    ours, _ = ROWS["qwen1.5-like"].pair()
    attn = ours.blocks[0].self_attn
    assert all(getattr(attn, n).bias is not None for n in ("q_proj", "k_proj", "v_proj"))
    assert attn.o_proj.bias is None


def test_from_hf_takes_a_model_not_a_config():
    ours, reference = ROWS["llama-gqa"].pair()
    with pytest.raises(ValueError, match=r"takes a transformers model .* LlamaLMConfig.from_hf"):
        type(ours).from_hf(reference.config)


def test_reading_another_familys_config_names_the_class_that_serves_it():
    from demos.models.llama import LlamaLMConfig

    with pytest.raises(ValueError, match=r"got 'qwen2'; use demos\.models\.qwen2\.Qwen2LM"):
        LlamaLMConfig.from_hf(ROWS["qwen1.5-like"].hf_config())
    with pytest.raises(ValueError, match=r"got 'mixtral'; no class here serves it"):
        LlamaLMConfig.from_hf(tiny_config("mixtral"))


def test_a_family_can_choose_its_block_per_layer():
    """make_block(config, layer_idx) decides per layer: here a block of another kind on odd layers,
    as StripedHyena alternates its mixers."""
    from demos.models.llama import LlamaLM, LlamaLMBlock

    class OtherBlock(LlamaLMBlock):
        pass

    class Alternating(LlamaLM):
        def make_block(self, config, layer_idx):
            return (OtherBlock if layer_idx % 2 else LlamaLMBlock)(config, layer_idx)

    ours, _ = ROWS["llama-gqa"].pair()
    model = Alternating(ours.config)
    assert [type(b).__name__ for b in model.blocks] == ["LlamaLMBlock", "OtherBlock"]
