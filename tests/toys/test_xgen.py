"""The XGen chapter's staged run, piece by piece (its timing lives in scripts/xgen_staged_run.py)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from demos.toys.xgen import StagedConfig, copy_batch, losses, run, schedule

RESULTS = Path(__file__).resolve().parents[2] / "results" / "xgen_staged_run.json"


@pytest.mark.parametrize("length", [4, 16, 64])
def test_copy_batch_repeats_with_a_period_between_a_quarter_and_a_half(length):
    ids, periods = copy_batch(50, length, torch.Generator().manual_seed(0), vocab=7)
    assert ids.shape == (50, length) and periods.shape == (50,)
    assert ((periods >= length // 4) & (periods <= length // 2)).all()
    assert ids.min() >= 0 and ids.max() < 7
    for row, p in zip(ids.tolist(), periods.tolist(), strict=True):
        assert all(row[i] == row[i - p] for i in range(p, length))


@pytest.mark.parametrize("length", [0, 6, 3, -4])
def test_copy_batch_refuses_a_length_that_is_not_a_multiple_of_4(length):
    with pytest.raises(ValueError, match="length"):
        copy_batch(2, length, torch.Generator())


def test_copy_loss_averages_the_targets_after_the_first_period_plus_one():
    gen = torch.Generator().manual_seed(1)
    ids, periods = copy_batch(3, 16, gen, vocab=5)
    logits = torch.randn(3, 16, 5, generator=gen)
    loss, copy_loss = losses(logits, ids, periods)
    terms, copies = [], []  # written here position by position
    for b in range(3):
        for pos in range(1, 16):  # the target at position pos, predicted at pos - 1
            ce = F.cross_entropy(logits[b, pos - 1][None], ids[b, pos][None]).item()
            terms.append(ce)
            if pos >= periods[b].item() + 1:
                copies.append(ce)
    assert math.isclose(loss.item(), sum(terms) / len(terms), rel_tol=1e-6)
    assert math.isclose(copy_loss.item(), sum(copies) / len(copies), rel_tol=1e-6)


def test_a_model_that_copies_has_zero_copy_loss_and_chance_on_the_first_period():
    ids, periods = copy_batch(4, 32, torch.Generator().manual_seed(2), vocab=9)
    logits = torch.zeros(4, 32, 9)
    for b in range(4):
        p = periods[b].item()
        for pos in range(p, 31):  # predict the token p back: right from position p + 1 on
            logits[b, pos, ids[b, pos + 1 - p]] = 100.0
    _, copy_loss = losses(logits, ids, periods)
    assert copy_loss.item() < 1e-6


def test_the_default_schedule_keeps_xgen_8_4_3_and_tokens_per_step():
    plan = schedule(StagedConfig())
    assert [s["length"] for s in plan] == [16, 32, 64]  # 2K, 4K, 8K divided by 128
    assert [s["batch"] * s["length"] for s in plan] == [1024] * 3
    steps = [s["steps"] for s in plan]
    assert steps[0] * 3 == steps[2] * 8 and steps[1] * 3 == steps[2] * 4  # 800B : 400B : 300B


def test_schedule_refuses_a_stage_that_is_not_whole_steps():
    with pytest.raises(ValueError, match="tokens_per_step"):
        schedule(StagedConfig(stages=[[16, 1000]]))
    with pytest.raises(ValueError, match="tokens_per_step"):
        schedule(StagedConfig(stages=[[48, 1024]]))


def test_a_short_run_logs_every_stage_and_evaluates_every_length():
    config = StagedConfig(stages=[[8, 2048], [16, 1024]], tokens_per_step=256, log_every=4,
                          eval_lengths=[8, 16], eval_batch=4)  # fmt: skip
    result = run(config)
    assert result["config"] == asdict(config)
    assert [s["length"] for s in result["stages"]] == [8, 16]
    assert [s["tokens"] for s in result["stages"]] == [2048, 1024]
    assert [h["tokens"] for h in result["history"]] == [1024, 2048, 3072]
    for stage in result["stages"]:
        assert set(stage["eval_copy_loss"]) == {"8", "16"}
        assert all(math.isfinite(v) for v in stage["eval_copy_loss"].values())


def test_recorded_run_matches_the_current_defaults():
    """The chapter plots results/xgen_staged_run.json: it must come from today's StagedConfig."""
    recorded = json.loads(RESULTS.read_text())
    assert recorded["config"] == asdict(StagedConfig()), "rerun: python scripts/xgen_staged_run.py"
    assert [s["length"] for s in recorded["stages"]] == [16, 32, 64]
    final = recorded["stages"][-1]["eval_copy_loss"]
    first = recorded["stages"][0]["eval_copy_loss"]
    assert final["64"] < 1.0 < first["64"]  # length 64 is learnt in the stage that trains it
