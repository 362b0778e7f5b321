"""Continued pretraining after depth up-scaling, at toy scale: grown vs original vs from scratch.

Yi-9B was Yi-6B grown by a span of layers and then trained on 0.8T more tokens [young2024yi,
ai2024yi9bblog]. Here a tiny Llama (2 layers) is pretrained on XGen's copy task
(:func:`demos.toys.xgen.copy_batch`: a sequence repeats a random segment, so after its first
period every token can be copied from context), then three runs continue on the same batches:
the original model, the original grown by ``span`` (layer 1 copied: 3 layers), and a 3-layer
model of the grown shape trained from scratch. Each continuation starts a fresh AdamW, as a new
training stage of a grown model must (the copies have no optimizer state). The copy loss is
logged on the training batch and evaluated on held-out sequences.

Axes: b batch, t sequence length, v vocabulary.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from demos.models.llama import LlamaLM, LlamaLMConfig
from demos.models.upscaling import depth_upscale
from demos.toys.xgen import copy_batch, losses
from demos.validation import check_positive_int

VOCAB = 64


@dataclass
class GrowthConfig:
    """Everything a run depends on; ``asdict`` of it is stored with the results."""

    seed: int = 0
    model: dict[str, int] = field(
        default_factory=lambda: dict(
            vocab_size=VOCAB,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=1,
        )
    )
    span: list[int] = field(default_factory=lambda: [1, 2])  # layer 1 copied: 2 -> 3 layers
    length: int = 32
    batch: int = 32
    pretrain_steps: int = 150
    continue_steps: int = 150
    lr: float = 3e-3
    clip: float = 1.0
    eval_batch: int = 128
    log_every: int = 10


@torch.no_grad()
def held_out_copy_loss(model: LlamaLM, config: GrowthConfig) -> float:
    """Copy loss on ``eval_batch`` held-out sequences (a fixed seed, the same for every call)."""
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(10_000 + config.length)
    ids, periods = copy_batch(config.eval_batch, config.length, gen, config.model["vocab_size"])
    loss = losses(model(ids), ids, periods)[1].item()
    model.train(was_training)
    return loss


def train(
    model: LlamaLM, steps: int, gen: torch.Generator, config: GrowthConfig
) -> list[dict[str, float]]:
    """``steps`` AdamW steps (fresh optimizer) on copy batches drawn from ``gen``; the logged
    history ``[{"step", "copy_loss", "eval_copy_loss"}]`` every ``log_every`` steps."""
    check_positive_int("steps", steps)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    history = []
    for step in range(1, steps + 1):
        ids, periods = copy_batch(config.batch, config.length, gen, config.model["vocab_size"])
        loss, copy_loss = losses(model(ids), ids, periods)  # (), ()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()
        if step % config.log_every == 0 or step == steps:
            history.append(
                {"step": step, "copy_loss": copy_loss.item(),
                 "eval_copy_loss": held_out_copy_loss(model, config)}
            )  # fmt: skip
    return history


def run(config: GrowthConfig | None = None) -> dict[str, Any]:
    """Pretrain, grow, and continue three ways on the same batches; a JSON-ready dict."""
    config = config or GrowthConfig()
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model = LlamaLM(LlamaLMConfig(**config.model))
    pretrain = train(model, config.pretrain_steps, gen, config)
    grown = depth_upscale(model, tuple(config.span))
    torch.manual_seed(config.seed + 1)
    scratch = LlamaLM(grown.config)  # the grown shape, random weights
    before = {
        "original": held_out_copy_loss(model, config),
        "grown": held_out_copy_loss(grown.model, config),
        "scratch": held_out_copy_loss(scratch, config),
    }
    state = gen.get_state()  # every continuation sees the same batches
    runs = {}
    for name, m in (
        ("original", copy.deepcopy(model)),
        ("grown", grown.model),
        ("scratch", scratch),
    ):
        gen.set_state(state)
        runs[name] = train(m, config.continue_steps, gen, config)
    return {
        "config": asdict(config),
        "seconds": time.perf_counter() - start,
        "parameters": {"original": grown.parameters_before, "grown": grown.parameters_after},
        "pretrain": pretrain,
        "before_continuing": before,
        "continued": runs,
    }
