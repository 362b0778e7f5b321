"""The Qwen1.5 chapter's toy: the skewed router starts concentrated, and the balancing loss spreads
the tokens out where the next-token loss alone does not."""

from __future__ import annotations

import torch

from demos.toys.qwen15 import ToyConfig, expert_load, run, skew_router_, toy_batch, toy_model


def test_loads_count_every_token_k_times_and_the_skew_concentrates_them():
    cfg = ToyConfig()
    model = toy_model(cfg)
    ids = toy_batch(0, cfg)
    load = expert_load(model, ids)
    assert load.shape == (2, cfg.experts)
    assert (load.sum(1) == cfg.batch * cfg.length * cfg.top_k).all()
    assert load[:, list(cfg.favoured)].sum() < 0.5 * load.sum()  # not skewed before
    skew_router_(model, toy_batch(10_000, cfg), cfg)
    skewed = expert_load(model, ids)
    assert skewed[:, list(cfg.favoured)].sum() > 0.8 * skewed.sum()


def test_the_balancing_loss_spreads_the_tokens_and_the_next_token_loss_alone_does_not():
    cfg = ToyConfig(steps=60)
    plain, balanced = run(0.0, cfg), run(0.1, cfg)
    assert plain["before"] == balanced["before"]  # the same start
    favoured = list(cfg.favoured)

    def share(load):  # the favoured experts' share of all assignments
        load = torch.tensor(load)
        return (load[:, favoured].sum() / load.sum()).item()

    assert share(balanced["after"]) < 0.5 < share(plain["after"])
    assert balanced["aux"][-1] < plain["aux"][-1]
    assert balanced["aux"][-1] < 1.1 * cfg.top_k  # near k, the even router's score
    assert abs(balanced["lm"][-1] - plain["lm"][-1]) < 0.5  # both learn the sequences
