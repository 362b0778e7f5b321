"""The Yi-1.5 chapter's continued-pretraining run, piece by piece (timing lives in the script)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from demos.models.llama import LlamaLM, LlamaLMConfig
from demos.models.upscaling import depth_upscale
from demos.toys.yi15 import GrowthConfig, held_out_copy_loss, run, train

RESULTS = Path(__file__).resolve().parents[2] / "results" / "yi15_growth_run.json"


def small() -> GrowthConfig:
    return GrowthConfig(pretrain_steps=4, continue_steps=4, batch=4, eval_batch=8, log_every=2)


def test_a_short_run_has_every_part():
    config = small()
    result = run(config)
    assert result["config"] == asdict(config)
    assert set(result["continued"]) == {"original", "grown", "scratch"}
    for history in (result["pretrain"], *result["continued"].values()):
        assert [h["step"] for h in history] == [2, 4]
        assert all(math.isfinite(h["eval_copy_loss"]) for h in history)
    assert result["parameters"]["grown"] > result["parameters"]["original"]


def test_the_continuations_see_the_same_batches():
    """Same generator state, same model: the same history (so the three runs differ by the model)."""
    config = small()
    histories = []
    for _ in range(2):
        torch.manual_seed(0)
        model = LlamaLM(LlamaLMConfig(**config.model))
        histories.append(train(model, 4, torch.Generator().manual_seed(3), config))
    assert histories[0] == histories[1]


def test_grown_model_starts_from_the_original_not_from_scratch():
    config = small()
    torch.manual_seed(0)
    model = LlamaLM(LlamaLMConfig(**config.model))
    grown = depth_upscale(model, tuple(config.span)).model
    assert grown.config.num_hidden_layers == 3
    torch.testing.assert_close(
        grown.blocks[2].mlp.up_proj.weight, model.blocks[1].mlp.up_proj.weight
    )
    assert math.isfinite(held_out_copy_loss(grown, config))


def test_train_refuses_zero_steps():
    config = small()
    with pytest.raises(ValueError, match="steps"):
        train(LlamaLM(LlamaLMConfig(**config.model)), 0, torch.Generator(), config)


def test_recorded_run_matches_the_current_defaults():
    """The chapter plots results/yi15_growth_run.json: it must come from today's GrowthConfig."""
    recorded = json.loads(RESULTS.read_text())
    assert recorded["config"] == asdict(GrowthConfig()), "rerun: python scripts/yi15_growth_run.py"
    runs = recorded["continued"]
    final = {name: history[-1]["eval_copy_loss"] for name, history in runs.items()}
    assert final["grown"] < final["scratch"] and final["original"] < final["scratch"]
