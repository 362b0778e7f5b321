"""The toy preference task: data layout (a mislabelled rejected half once made every number meaningless),
and short runs whose outcome the chapter relies on."""

from __future__ import annotations

import copy

import pytest
import torch

from demos.models.llama import LlamaLM, LlamaLMConfig
from demos.toys.zephyr import (
    LENGTH,
    SEP,
    ToyConfig,
    evaluate,
    make_batch,
    make_pairs,
    preference_step_loss,
    train_preference,
    train_sft,
)
from demos.training.preference import sequence_logps


def test_pairs_share_prompts_and_each_half_is_labelled_with_its_own_answer():
    ids, labels = make_pairs(32, torch.Generator().manual_seed(0))
    chosen, rejected = ids.chunk(2)
    prompt = slice(0, LENGTH)
    assert torch.equal(chosen[:, prompt], rejected[:, prompt])
    assert (ids[:, LENGTH] == SEP).all()
    assert torch.equal(chosen[:, LENGTH + 1 : -1], chosen[:, prompt].flip(1))  # chosen reverses
    assert torch.equal(rejected[:, LENGTH + 1 : -1], rejected[:, prompt])  # rejected copies
    scored = labels != -100
    assert scored.sum(-1).eq(LENGTH + 1).all()  # the answer and EOS, nothing of the prompt
    assert torch.equal(labels[scored], ids[scored])  # every row scored on its own tokens


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_make_batch_rejects_a_bad_fraction(fraction):
    with pytest.raises(ValueError, match="reverse_fraction"):
        make_batch(4, torch.Generator(), fraction)


def test_make_batch_follows_the_reverse_fraction():
    ids, _ = make_batch(4000, torch.Generator().manual_seed(1), 0.25)
    reversed_ = (ids[:, LENGTH + 1 : -1] == ids[:, :LENGTH].flip(1)).all(-1)
    copied = (ids[:, LENGTH + 1 : -1] == ids[:, :LENGTH]).all(-1)
    share = (reversed_ & ~copied).float().mean().item()  # palindromes are both
    assert 0.22 < share < 0.28


def test_preference_step_loss_rejects_unknown_method_and_dpo_without_reference():
    model = LlamaLM(LlamaLMConfig(**ToyConfig().model))
    batch = make_pairs(4, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="method"):
        preference_step_loss("ppo", model, None, batch, 0.1)
    with pytest.raises(ValueError, match="reference"):
        preference_step_loss("dpo", model, None, batch, 0.1)


def test_dpo_from_its_own_reference_starts_at_log2():
    model = LlamaLM(LlamaLMConfig(**ToyConfig().model))
    batch = make_pairs(8, torch.Generator().manual_seed(0))
    loss, margin = preference_step_loss("dpo", model, copy.deepcopy(model), batch, 0.1)
    torch.testing.assert_close(loss, torch.tensor(0.6931471805599453), rtol=0, atol=1e-6)
    assert margin.abs().max() == 0


@pytest.fixture(scope="module")
def sft_model():
    config = ToyConfig(sft_steps=300, eval_every=300)
    torch.manual_seed(0)
    model = LlamaLM(LlamaLMConfig(**config.model))
    eval_pairs = make_pairs(128, torch.Generator().manual_seed(7))
    history = train_sft(model, config, torch.Generator().manual_seed(0), eval_pairs)
    return model.requires_grad_(False), config, eval_pairs, history


def test_sft_learns_the_copy_habit(sft_model):
    model, _, eval_pairs, history = sft_model
    last = history[-1]
    assert last["loss"] < 0.4
    assert last["pref_acc"] < 0.1  # prefers copying: the rejected answer
    assert last["rejected_logp"] > last["chosen_logp"] + 1
    ids, labels = eval_pairs
    direct = sequence_logps(model(ids), labels).chunk(2)  # evaluate's numbers, recomputed here
    assert last["chosen_logp"] == pytest.approx(direct[0].mean().item(), abs=1e-5)
    assert last["rejected_logp"] == pytest.approx(direct[1].mean().item(), abs=1e-5)


@pytest.mark.parametrize("method", ["dpo", "orpo"])
def test_preference_tuning_flips_the_preference(sft_model, method):
    sft, config, eval_pairs, _ = sft_model
    policy = copy.deepcopy(sft).requires_grad_(True)
    before = evaluate(policy, eval_pairs)
    history = train_preference(
        method,
        policy,
        config,
        torch.Generator().manual_seed(3),
        eval_pairs,
        reference=sft,
        sft=sft,
        steps=60,
    )
    after = history[-1]
    assert before["pref_acc"] < 0.1 and after["pref_acc"] > 0.9
    assert after["margin"] > 0 and after["kl_from_sft"] > 0
    if method == "orpo":  # its NLL term pulls the chosen answer up, so greedy decoding reverses
        assert after["chosen_logp"] > before["chosen_logp"]
        assert after["reversal_rate"] > 0.5


def test_run_all_logs_every_run_with_the_columns_the_chapter_plots():
    from demos.toys.zephyr import run_all

    result = run_all(
        ToyConfig(sft_steps=20, pref_steps=10, eval_every=10, eval_pairs=16), progress=False
    )
    assert set(result["runs"]) == {"sft", "dpo", "dpo_no_ref", "orpo", "orpo_from_base"}
    for name, history in result["runs"].items():
        assert [row["step"] for row in history] == list(range(10, 10 * len(history) + 1, 10))
        assert {"loss", "pref_acc", "chosen_logp", "rejected_logp", "reversal_rate"} <= set(
            history[-1]
        )
        assert ("kl_from_sft" in history[-1]) == (name in ("dpo", "dpo_no_ref", "orpo"))
        assert ("margin" in history[-1]) == (name != "sft")
    assert (
        len(result["runs"]["orpo_from_base"]) == 3
    )  # sft_steps + pref_steps, at the SFT learning rate


def test_recorded_run_matches_the_current_defaults():
    """The chapter plots results/preference_run.json: it must come from today's ToyConfig defaults."""
    import json
    from dataclasses import asdict
    from pathlib import Path

    recorded = json.loads(
        (Path(__file__).resolve().parents[2] / "results" / "preference_run.json").read_text()
    )
    assert recorded["config"] == asdict(ToyConfig()), "rerun: python scripts/preference_run.py"
    assert recorded["final"]["sft"]["pref_acc"] < 0.1  # the SFT model prefers the rejected answer
    assert recorded["final"]["orpo"]["reversal_rate"] > 0.5
