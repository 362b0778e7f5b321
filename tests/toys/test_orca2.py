"""The toy Orca 2 task: the pool's layout, and the outcome the chapter shows (a short run)."""

from __future__ import annotations

import pytest
import torch

from demos.toys.orca2 import (
    SHORT,
    TOY_GENERIC,
    ToyConfig,
    make_pool,
    run,
    toy_tokenizer,
)
from demos.training.sft import IGNORE_INDEX


def test_the_tokenizer_orders_ids_as_orca_2_and_keeps_the_markers_whole():
    tok = toy_tokenizer()
    assert tok.convert_ids_to_tokens([0, 1, 2]) == ["<unk>", "<s>", "</s>"]
    assert tok.convert_ids_to_tokens(list(range(len(tok) - 3, len(tok)))) == [
        "[PAD]",
        "<|im_start|>",
        "<|im_end|>",
    ]
    ids = tok.encode("<|im_start|>user\nsum of 3 4<|im_end|>", add_special_tokens=False)
    assert tok.convert_ids_to_tokens(ids) == [
        "<|im_start|>",
        "user",
        "sum",
        "of",
        "3",
        "4",
        "<|im_end|>",
    ]
    assert tok.unk_token_id not in tok.encode(TOY_GENERIC, add_special_tokens=False)


@pytest.mark.parametrize("erased", [0.0, 1.0])
def test_pool_targets_are_the_answers_only(erased):
    tok = toy_tokenizer()
    ids, labels = make_pool(64, torch.Generator().manual_seed(0), erased)
    scored = labels != IGNORE_INDEX
    assert torch.equal(labels[scored], ids[scored])
    assert (ids[scored] != tok.pad_token_id).all()  # no padding is a target
    assert (ids[scored] == tok.convert_tokens_to_ids("<|im_end|>")).sum() == 64  # one end each
    step = tok.convert_tokens_to_ids("Add")  # first word of the teacher's step instruction
    assert ((ids == step).any(1).float().mean() > 0) == (erased == 0.0)


def test_make_pool_rejects_a_bad_share():
    with pytest.raises(ValueError, match="erased"):
        make_pool(4, torch.Generator(), 1.5)


def test_the_erased_student_picks_the_strategy_under_the_generic_message():
    """The chapter's claim on its default run: erased, every length right; kept, some length wrong."""
    result = run(ToyConfig())
    erased = result["students"][1.0]["strategy_rate"]["generic"]
    kept = result["students"][0.0]["strategy_rate"]["generic"]
    assert min(erased.values()) >= 0.9, erased
    assert min(kept[n] for n in kept if n <= SHORT) <= 0.5, (
        kept
    )  # short lists not answered directly
    told = result["students"][0.0]["strategy_rate"]
    assert told["direct"][1] >= 0.9 and told["step"][4] >= 0.9  # it learned both when told


def test_the_recorded_run_matches_the_script_and_the_defaults():
    """The chapter plots results/orca2_run.json: it must be the run of today's script and config."""
    import importlib.util
    import json
    from dataclasses import asdict
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("orca2_run", root / "scripts" / "orca2_run.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    recorded = json.loads((root / "results" / "orca2_run.json").read_text())
    assert recorded["config"] == json.loads(json.dumps(asdict(ToyConfig())))
    assert recorded["seeds"] == list(script.SEEDS) and recorded["shares"] == list(script.SHARES)
    for share in script.SHARES:
        rows = recorded["per_seed"][str(share)]["generic"]
        assert len(rows) == len(script.SEEDS)
        mean = [sum(c) / len(c) for c in zip(*rows, strict=True)]
        assert mean == recorded["mean"][str(share)]["generic"]
    assert min(recorded["mean"]["1.0"]["generic"]) >= 0.9  # the chapter's reading of the plot
    assert max(recorded["mean"]["0.0"]["generic"]) < 0.9
