"""The model registry: it loads, every value is cited, and its architectures are real.

The parameter check builds each transformers architecture at full size on the ``meta`` device
(shapes only: no memory, no weights, nothing downloaded) and compares its parameter count with the
figure the developer published. "Rounds to" is defined in ``demos.registry.parse_count``: the
count must lie within half a unit of the figure's last written digit ("7B" allows 6.5B-7.5B,
"2.7B" allows 2.65B-2.75B, "70B" allows 65B-75B, "70,426,624" must be exact).
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from demos import registry
from demos.catalog import ARCHITECTURES
from demos.layers.kv_cache import kv_cache_bytes_per_token
from demos.registry import (
    ModelSize,
    counted_parameters,
    facts_card,
    family_sizes,
    load_registry,
    meta_model,
    overview_rows,
    parse_count,
    released_config,
    rounds_to,
    weights_bytes,
)
from demos.registry.load import build_size
from demos.weights import count_parameters

ROOT = Path(__file__).resolve().parents[2]
SEED_FAMILIES = [  # the model families of the seed list's quick-start table, in its order
    "ChatGPT", "Llama 2", "Llama 3", "Orca 2", "Qwen", "Qwen1.5", "Vicuna", "XGen", "Falcon", "Phi",
    "Phi-3", "Gemma", "Mamba", "Pythia", "Mistral", "Yi", "Yi-1.5", "Zephyr", "StripedHyena",
    "Persimmon",
]  # fmt: skip


def bib_keys() -> set[str]:
    return set(re.findall(r"^@\w+\{([^,\s]+),", (ROOT / "references.bib").read_text(), re.M))


_MODELS: dict[str, torch.nn.Module] = {}


def built(size: ModelSize) -> torch.nn.Module:
    """The meta-device model of ``size``, built once per test session (shapes only, no memory)."""
    if size.name not in _MODELS:
        _MODELS[size.name] = meta_model(size)
    return _MODELS[size.name]


def buildable() -> list[ModelSize]:
    return [s for s in load_registry() if s.hf and "_test" not in s.notes]


# --- the registry loads and is cited -------------------------------------------------------


def test_registry_covers_every_family_of_the_seed_list():
    assert registry.families() == SEED_FAMILIES
    for family in SEED_FAMILIES:
        assert family_sizes(family)


def test_every_value_has_a_citation_key_in_references_bib():
    keys = bib_keys()
    for size in load_registry():
        for name in registry.FIELD_NAMES:
            if getattr(size, name) is not None:
                assert size.cite.get(name) in keys, f"{size.name}.{name}: {size.cite.get(name)}"


def test_every_null_says_why():
    """A null is unknown and says why; a null MoE field (``only_for``) means the model has none."""
    for size in load_registry():
        for spec in registry.FIELDS:
            name = spec.name
            if getattr(size, name) is None and not spec.only_for:
                assert size.notes.get(name) or size.notes.get("_all"), f"{size.name}.{name}"


def test_sizes_are_frozen():
    size = load_registry()[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        size.name = "x"


# --- bad input is refused --------------------------------------------------------------------


def _valid(**changes) -> dict:
    size = family_sizes("Llama 2")[0]
    values = {f.name: getattr(size, f.name) for f in dataclasses.fields(size)}
    values.update(changes)
    return values


def test_a_valid_copy_builds():
    assert ModelSize(**_valid()).name == "Llama-2-7B"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"layers": 0}, "layers"),
        ({"layers": "32"}, "layers"),
        ({"release": "July 2023"}, "YYYY-MM"),
        ({"attention": "flash"}, "attention"),
        ({"kv_heads": 5}, "divisible"),
        ({"parameters": "seven billion"}, "parameter figure"),
        ({"vocab_size": None}, "without a note"),
        ({"cite": {}}, "no citation key"),
    ],
)
def test_bad_entries_raise_value_error(changes, message):
    with pytest.raises(ValueError, match=message):
        ModelSize(**_valid(**changes))


def test_unknown_family_raises():
    with pytest.raises(ValueError, match="not in the registry"):
        facts_card("Llama 9")


@pytest.mark.parametrize("params, dtype", [(7e9, "fp64"), (-1, "fp16")])
def test_weights_bytes_rejects_bad_input(params, dtype):
    with pytest.raises(ValueError):
        weights_bytes(params, dtype)


# --- what "rounds to" means ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, value, precision",
    [
        ("7B", 7 * 10**9, 10**9),
        ("70B", 70 * 10**9, 10 * 10**9),
        ("2.7B", 2_700_000_000, 100_000_000),
        ("130M", 130_000_000, 10_000_000),
        ("0.5B", 500_000_000, 100_000_000),
        ("70,426,624", 70_426_624, 1),
    ],
)
def test_parse_count(text, value, precision):
    assert parse_count(text) == (value, precision)


def test_rounds_to_is_half_a_unit_of_the_last_digit():
    assert rounds_to(6_738_415_616, "7B") and rounds_to(7_499_999_999, "7B")
    assert not rounds_to(7_500_000_001, "7B")
    assert rounds_to(2_749_000_000, "2.7B") and not rounds_to(2_779_683_840, "2.7B")
    assert not rounds_to(70_426_625, "70,426,624")


# --- verified, not typed: the architecture behind every published figure ---------------------


@pytest.mark.parametrize("size", buildable(), ids=lambda s: s.name)
def test_parameter_count_of_the_meta_model_rounds_to_the_published_figure(size):
    count = sum(p.numel() for p in built(size).parameters())
    assert count == counted_parameters(size)  # the helper the book uses counts the same
    if "parameters" in size.notes:  # a documented mismatch: it must still be one
        assert not rounds_to(count, size.parameters), (
            f"{size.name}: {count:,} now rounds to {size.parameters}; drop the note"
        )
    else:
        assert rounds_to(count, size.parameters), (
            f"{size.name}: the config builds {count:,} parameters, published {size.parameters}"
        )


MOE_SIZES = [s for s in buildable() if s.experts]


def test_the_registry_has_an_moe_size_and_only_it_has_moe_fields():
    assert [s.name for s in MOE_SIZES] == ["Qwen1.5-MoE-A2.7B"]
    moe_fields = [f.name for f in registry.FIELDS if f.only_for == "MoE"]
    for size in load_registry():
        if not size.experts:
            assert all(getattr(size, f) is None for f in moe_fields), size.name


@pytest.mark.parametrize("size", MOE_SIZES, ids=lambda s: s.name)
def test_active_parameters_of_the_meta_model_round_to_the_published_figure(size):
    """Total and active parameters counted on the meta device (transformers' model of the registry's
    config) against the model card's figures: Qwen1.5-MoE-A2.7B, 14.3B and 2.7B."""
    from demos.layers.moe import moe_parameter_counts

    config = registry.hf_config(size)
    counts = moe_parameter_counts(config)
    assert counts.total == sum(p.numel() for p in built(size).parameters())
    assert rounds_to(counts.total, size.parameters) and rounds_to(
        counts.active, size.active_parameters
    )
    assert (counts.experts, counts.top_k) == (size.experts, size.experts_per_token)
    assert counts.layers == size.layers // size.sparse_step
    # one routed expert is a gated MLP of width expert_size: three c x f matrices
    assert counts.per_expert == 3 * size.hidden_size * size.expert_size


def test_a_dense_familys_card_has_no_moe_rows_and_an_moe_familys_card_has_them():
    assert "Routed experts" not in facts_card("Llama 2")
    card = facts_card("Qwen1.5")
    assert "| Routed experts |" in card and "n/a (dense)" in card


def test_moe_fields_are_checked():
    with pytest.raises(ValueError, match="experts_per_token"):
        ModelSize(
            **_valid(
                experts=4,
                experts_per_token=8,
                cite={**_valid()["cite"], "experts": "x", "experts_per_token": "x"},
            )
        )
    with pytest.raises(ValueError, match="parameter figure"):
        ModelSize(
            **_valid(active_parameters="two", cite={**_valid()["cite"], "active_parameters": "x"})
        )


def _has_our_class(size: ModelSize) -> bool:
    architecture = ARCHITECTURES.get(size.hf.get("model_type"))
    return architecture is not None and architecture.ours is not None


@pytest.mark.parametrize("size", buildable(), ids=lambda s: s.name)
def test_our_class_counts_what_transformers_counts_at_every_released_size(size):
    """Our class for the size's model_type (from the catalogue), built at full size on the meta
    device, has exactly the parameters of transformers' model of the same config."""
    config = registry.hf_config(size)
    try:
        cls = ARCHITECTURES[config.model_type].ours_class()
    except ValueError as error:
        pytest.fail(f"{size.name}: no class of ours for its model_type: {error}")
    with torch.device("meta"):
        ours = cls(cls.config_class.from_hf(config))
    theirs = sum(p.numel() for p in built(size).parameters())
    assert count_parameters(ours) == theirs, (
        f"{size.name}: {cls.__name__} counts {count_parameters(ours):,}, transformers {theirs:,}"
    )


def test_our_classes_are_checked_in_every_family_that_has_one():
    """The check above runs in every family with a size whose model_type has a class of ours."""
    checked = {s.family for s in buildable()}
    with_a_class = {s.family for s in load_registry() if s.hf and _has_our_class(s)}
    assert checked == with_a_class
    assert checked == set(SEED_FAMILIES) - {"ChatGPT", "StripedHyena"}  # no transformers class


def _kv_width(model: torch.nn.Module, size: ModelSize) -> int | None:
    """Output width of one layer's key projection, read off the built module."""
    for name, module in model.named_modules():
        if name.endswith("layers.0.self_attn.k_proj"):
            return module.out_features
        if name.endswith("layers.0.self_attn.qkv_proj"):  # Phi-3: q, k, v stacked
            return (module.out_features - size.heads * size.head_dim) // 2
        if name.endswith("h.0.self_attention.query_key_value"):  # Falcon: q, k, v stacked
            return (module.out_features - size.heads * size.head_dim) // 2
        if name.endswith("layers.0.attention.query_key_value"):  # GPT-NeoX: q, k, v stacked
            return module.out_features // 3
        if name.endswith("layers.0.self_attn.query_key_value"):  # Persimmon
            return module.out_features // 3
    return None


@pytest.mark.parametrize("size", [s for s in buildable() if s.kv_heads], ids=lambda s: s.name)
def test_kv_cache_bytes_per_token_matches_the_built_key_projection(size):
    width = _kv_width(built(size), size)
    assert width is not None, f"{size.name}: no key projection found"
    assert width == size.kv_heads * size.head_dim
    expected = 2 * size.layers * width * 2  # keys and values, every layer, 2 bytes each
    assert size.kv_cache_bytes_per_token() == expected
    assert size.kv_cache_bytes_per_token() == kv_cache_bytes_per_token(
        size.layers, size.kv_heads, size.head_dim
    )


def test_sizes_without_a_transformers_class_count_none():
    skipped = [s for s in load_registry() if s not in buildable()]
    assert {s.name for s in skipped} >= {"ChatGPT (gpt-3.5-turbo)", "StripedHyena-Hessian-7B"}
    for size in skipped:
        assert counted_parameters(size) is None


def test_kv_cache_is_none_without_attention():
    assert all(s.kv_cache_bytes_per_token() is None for s in family_sizes("Mamba"))


# --- the book's table, card and calculator agree with the registry ---------------------------


def test_overview_rows_agree_with_the_registry():
    rows = overview_rows()
    assert [r["family"] for r in rows] == SEED_FAMILIES
    for row in rows:
        sizes = family_sizes(row["family"])
        assert row["checkpoints"] == [s.checkpoint for s in sizes if s.checkpoint]
        for size in sizes:
            assert (size.parameters or "undisclosed") in row["sizes"]


def _card_tables(card: str) -> list[tuple[list[str], dict[str, list[str]]]]:
    """A facts card's tables, each as (its size names, its rows: the label cell -> the other cells)."""
    tables = []
    for block in card.split("\n\n"):
        lines = block.splitlines()
        if not lines[0].startswith("| | ") or not lines[0].endswith(" | source |"):
            continue
        names = lines[0].removeprefix("| | ").removesuffix(" | source |").split(" | ")
        rows = {}
        for line in lines[2:]:
            label, *cells = (c.strip() for c in line.strip("|").split(" | "))
            rows[label] = cells
        tables.append((names, rows))
    return tables


def _card_rows(card: str) -> dict[str, list[str]]:
    """The rows of a facts card's first table: the label cell -> the value cells."""
    return _card_tables(card)[0][1]


def _card_sources(card: str) -> dict[str, str]:
    """The numbers of a facts card's sources -> their citation keys (the "Sources:" note)."""
    (line,) = [x for x in card.splitlines() if x.startswith("- *Sources:* ")]
    return dict(re.findall(r"\((\d+)\) \{cite\}`([^`]+)`", line))


@pytest.mark.parametrize("family", SEED_FAMILIES)
def test_facts_card_shows_every_value_with_its_citation_and_mark(family):
    sizes = family_sizes(family)
    card = facts_card(family)
    tables = _card_tables(card)
    # the sizes in order, over one table or several (each within the page's width)
    assert [n for names, _ in tables for n in names] == [s.name for s in sizes]
    assert card.count("| source |") == len(tables)
    sources = _card_sources(card)
    assert len(set(sources.values())) == len(sources), "each source is cited once under the card"
    marks = registry.render.unverified_marks()
    for names, rows in tables:
        group = [s for s in sizes if s.name in names]
        fields = registry.render.card_fields(sizes)  # MoE rows only where a size has experts
        assert len(rows) == len(fields)
        for spec in fields:
            _check_row(family, spec, group, rows[spec.label], sources, marks)


def _check_row(family, spec, sizes, row, sources, marks):
    """One row of one table of a facts card: its values, marks and source numbers."""
    *cells, source = row
    assert "{cite}" not in source, f"{family}.{spec.name}: the citation itself is under the card"
    keys = {s.cite[spec.name] for s in sizes if getattr(s, spec.name) is not None}
    numbers = re.findall(r"\((\d+)\)", source)
    # the row's sources, each cited under the card: one number, or one per size
    assert {sources[n] for n in numbers} == keys, f"{family}.{spec.name}"
    if len(keys) == 1:
        assert source == f"({numbers[0]})"
    for size, cell in zip(sizes, cells, strict=True):
        assert "{cite}" not in cell, f"{size.name}.{spec.name}: citation in the value's cell"
        value = getattr(size, spec.name)
        if value is None:
            if spec.only_for:  # an MoE field: a dense model has none, an MoE model may lack one
                assert cell == ("none" if size.experts else "n/a (dense)"), (size.name, spec.name)
            else:
                assert cell == "unknown"
            continue
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        assert shown in cell, f"{size.name}.{spec.name}"
        if len(keys) > 1:  # one number per size, left to right
            column = source.split(" ")[sizes.index(size)]
            assert sources[column.strip("()")] == size.cite[spec.name]
        reason = size.unverified.get(spec.name)
        mark = marks[registry.render.reader_reason(reason)] if reason else None
        assert any(m in cell for m in marks.values()) == (mark is not None)
        if mark:
            assert f" {mark}" in cell
            assert f"{mark} {registry.render.reader_reason(reason)}" in facts_card(family)


@pytest.mark.parametrize("family", ["Pythia", "Phi-3"])
def test_a_wide_card_is_split_into_tables_that_fit_the_page(family):
    # 8 sizes, or 3 long checkpoint ids, do not fit one table at 1280 px (the browser test measures)
    card = facts_card(family)
    tables = _card_tables(card)
    assert len(tables) > 1
    widths = [
        registry.render.LABEL_PX
        + registry.render.SOURCE_PX
        + sum(
            max(registry.render._min_width_px(cell) for cell in column)
            for column in zip(*(cells[:-1] for cells in rows.values()), strict=True)
        )
        for _, rows in tables
    ]
    assert max(widths) <= registry.render.CARD_WIDTH_PX, widths


def test_card_marks_a_known_unverified_value_and_not_a_verified_one():
    falcon_7b = registry.model_size("Falcon-7B")
    assert "release" in falcon_7b.unverified and "layers" not in falcon_7b.unverified
    card = facts_card("Falcon")
    rows, sources = _card_rows(card), _card_sources(card)
    mark = registry.render.mark(falcon_7b, "release")
    assert rows["Released"][0] == f"2023-05 {mark}"
    assert sources[rows["Released"][-1].strip("()")] == "almazrouei2023falcon"
    assert rows["Layers"][0] == "32"
    assert sources[rows["Layers"][-1].strip("()")] == "hf_falcon_configs"
    assert f"{mark} not yet checked against any source" in card


def test_the_overview_counts_verified_and_unverified_values():
    rows = overview_rows()
    verified, unverified = registry.verification_counts()
    assert sum(r["verified"] for r in rows) == verified
    assert sum(r["unverified"] for r in rows) == unverified
    n_values = sum(getattr(s, f) is not None for s in load_registry() for f in registry.FIELD_NAMES)
    assert verified + unverified == n_values


def test_weights_bytes_follows_bits_per_weight():
    n = family_sizes("Llama 2")[0].parameter_count
    assert n == 7_000_000_000
    assert weights_bytes(n, "fp16") == 2 * n
    assert weights_bytes(n, "int8") == n
    assert weights_bytes(n, "nf4") == n / 2
    assert weights_bytes(n, "fp32") == 2 * weights_bytes(n, "bf16")


def test_a_citation_must_name_a_field_and_a_key():
    with pytest.raises(ValueError, match="must map a field"):
        ModelSize(**_valid(cite={**_valid()["cite"], "colour": "touvron2023llama2"}))
    with pytest.raises(ValueError, match="must map a field"):
        ModelSize(**_valid(cite={**_valid()["cite"], "layers": {"nested": "x"}}))


def test_yaml_with_a_repeated_key_is_refused():
    with pytest.raises(ValueError, match="repeat"):
        registry.parse_yaml("a: {notes: {x: 1}, notes: {y: 2}}")
    assert registry.parse_yaml("a: {notes: {x: 1}}") == {"a": {"notes": {"x": 1}}}


# --- facts that were once wrong here ------------------------------------------------------


def test_qwen15_training_tokens_come_from_the_qwen2_report():
    for size in family_sizes("Qwen1.5"):
        if size.experts:  # Qwen1.5-MoE-A2.7B: upcycled from Qwen-1.8B, its own tokens unpublished
            assert size.training_tokens is None and "upcycled" in size.notes["training_tokens"]
            continue
        assert size.training_tokens == "3T"
        assert size.cite["training_tokens"] == "yang2024qwen2"
    assert "yang2024qwen2" in bib_keys()


def test_vicuna_conversation_counts_follow_the_model_cards():
    note = family_sizes("Vicuna")[0].notes["training_tokens"]
    assert "140K for v1.3" in note and "125K for v1.5" in note
    assert "hf_vicuna13_card" in bib_keys()


# --- which values were checked against a source, and which were not -------------------------


def _unverified() -> dict[str, dict[str, str]]:
    """size name -> {field: reason}, merged from the raw YAML (family, then size), not the loader."""
    raw = registry.parse_yaml((ROOT / "src" / "demos" / "registry" / "registry.yaml").read_text())
    return {
        size["name"]: {**(family.get("unverified") or {}), **(size.get("unverified") or {})}
        for family in raw["families"]
        for size in family["sizes"]
    }


def test_the_loader_keeps_every_unverified_mark():
    unverified = _unverified()
    for size in load_registry():
        assert size.unverified == unverified[size.name], size.name
        for name in size.unverified:
            assert size.cite.get(name), f"{size.name}.{name} keeps its citation key"


@pytest.mark.parametrize(
    "unverified, message",
    [
        ({"colour": "why"}, "must name a field"),
        ({"training_tokens": "why"}, "null value"),  # Llama-2-7B's is set; see _valid below
        ({"layers": ""}, "must give a reason"),
        ({"layers": None}, "must give a reason"),
    ],
)
def test_bad_unverified_marks_raise_value_error(unverified, message):
    changes = {"unverified": unverified}
    if "training_tokens" in unverified:
        changes["training_tokens"] = None
        changes["notes"] = {"training_tokens": "not published"}
    with pytest.raises(ValueError, match=message):
        ModelSize(**_valid(**changes))


def test_the_note_states_the_verified_and_unverified_counts():
    verified, unverified = registry.verification_counts()
    note = (ROOT / "notes" / "registry_sources.md").read_text()
    assert f"**{verified + unverified}** non-null values" in note
    assert f"**{verified} verified**" in note
    assert f"**{unverified} unverified**" in note


# --- the package's shape ---------------------------------------------------------------------


def test_a_yaml_key_that_is_not_a_field_is_refused():
    family = {"family": "X", "organisation": "Y", "sizes": []}
    with pytest.raises(ValueError, match=r"\['hidden_sise'\] are not fields"):
        build_size(family, {"name": "X-1", "hidden_sise": 5})


def test_the_fields_are_declared_once():
    names = [f.name for f in dataclasses.fields(ModelSize)]
    assert names == ["family", "name", *registry.FIELD_NAMES, "cite", "notes", "unverified", "hf"]
    assert len(set(registry.FIELD_NAMES)) == len(registry.FIELDS) == 25
    source = (ROOT / "src" / "demos" / "registry" / "schema.py").read_text()
    for path in (ROOT / "src" / "demos" / "registry").glob("*.py"):
        if path.name != "schema.py":  # no other module spells out the field list
            assert '"intermediate_size",\n' not in path.read_text(), path.name
    assert source.count('Field("intermediate_size"') == 1


def test_importing_the_registry_does_not_import_torch_or_transformers():
    code = (
        "import sys, demos.registry as r; r.facts_card('Llama 2'); r.overview_rows();"
        "bad = {'torch', 'transformers'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )


def test_released_config_reads_the_registry():
    config = released_config("Mistral-7B-v0.1")
    size = registry.model_size("Mistral-7B-v0.1")
    assert (config.num_hidden_layers, config.num_key_value_heads) == (size.layers, size.kv_heads)
    assert config.sliding_window == size.hf["sliding_window"]
    with pytest.raises(ValueError, match="not in the registry"):
        released_config("Mistral-70B")
