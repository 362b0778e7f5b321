"""A needle in a haystack at toy scale: a tiny Llama trained to retrieve a key-value needle.

Yi-6B-200K and Yi-34B-200K extend Yi's 4K context to 200K tokens by continued pretraining, and are
judged by a needle-in-a-haystack test [young2024yi, yi2024readme]. Here a two-layer Llama (Yi's
architecture, ``rope_theta`` 5e6 as Yi's configs) is trained on contexts of ``train_lengths``
tokens: random filler, a needle ``[NEEDLE, key, value]`` at a random depth, and a question
``[QUERY, key]`` whose answer is ``value``. The harness (:mod:`demos.eval.needle`) then asks it at
every (length, depth), including lengths it never saw in training: there retrieval fails.

Vocabulary: ``FILLER`` filler tokens, then ``KEYS`` key tokens, ``VALUES`` value tokens, and the two
markers. Axes: b batch, t context length, v vocabulary.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from demos.eval.needle import NeedleGrid, build_haystack, check_depth, needle_grid
from demos.models.llama import LlamaLM, LlamaLMConfig
from demos.validation import check_positive_int

FILLER, KEYS, VALUES = 40, 16, 16
KEY0 = FILLER  # first key token
VALUE0 = FILLER + KEYS  # first value token
NEEDLE = FILLER + KEYS + VALUES  # marker before the key and value
QUERY = NEEDLE + 1  # marker before the question's key
VOCAB = QUERY + 1


@dataclass
class NeedleToyConfig:
    """Everything a run depends on; ``asdict`` of it is stored with the results."""

    seed: int = 0
    model: dict[str, Any] = field(
        default_factory=lambda: dict(
            vocab_size=VOCAB,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            rope_theta=5e6,  # Yi's base
        )
    )
    train_lengths: list[int] = field(default_factory=lambda: [16, 24, 32, 48, 64])
    steps: int = 400
    batch: int = 32
    lr: float = 3e-3
    eval_lengths: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 256, 512, 1024])
    eval_depths: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    eval_trials: int = 32


def needle_batch(
    length: int, depth: float | None, n: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids (n, length), values (n, 1))``: ``n`` haystacks of random filler with a needle
    ``[NEEDLE, key, value]`` at ``depth`` (``None``: a random depth per row) and the question
    ``[QUERY, key]`` last. ``ValueError`` on a bad length, depth or ``n``."""
    check_positive_int("n", n)
    if depth is not None:
        check_depth(depth)
    keys = torch.randint(KEY0, KEY0 + KEYS, (n,), generator=gen)
    values = torch.randint(VALUE0, VALUE0 + VALUES, (n,), generator=gen)
    depths = torch.rand(n, generator=gen) if depth is None else torch.full((n,), float(depth))
    rows = []
    for i in range(n):
        filler = torch.randint(0, FILLER, (length,), generator=gen).tolist()
        needle = [NEEDLE, int(keys[i]), int(values[i])]
        ids, _ = build_haystack(filler, needle, [QUERY, int(keys[i])], length, float(depths[i]))
        rows.append(ids)
    return torch.stack(rows), values[:, None]


def answer_loss(model: LlamaLM, ids: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the value at the last position (after the question), ``ids (b, t)``."""
    logits = model(ids)[:, -1]  # (b, v): the prediction after [QUERY, key]
    return F.cross_entropy(logits, values[:, 0])


@torch.no_grad()
def greedy_answer(model: LlamaLM, ids: torch.Tensor, k: int) -> torch.Tensor:
    """``(b, k)``: ``k`` greedy tokens after ``ids (b, t)`` (full forwards, no cache)."""
    out = []
    for _ in range(k):
        token = model(ids)[:, -1].argmax(-1, keepdim=True)  # (b, 1)
        out.append(token)
        ids = torch.cat([ids, token], dim=1)
    return torch.cat(out, dim=1)


def train(config: NeedleToyConfig) -> tuple[LlamaLM, list[float]]:
    """Train a fresh model on ``config``; returns it (eval mode) and the loss of every step."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model = LlamaLM(LlamaLMConfig(**config.model)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    history = []
    for step in range(config.steps):
        length = config.train_lengths[step % len(config.train_lengths)]
        ids, values = needle_batch(length, None, config.batch, gen)
        loss = answer_loss(model, ids, values)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        history.append(loss.item())
    return model.eval(), history


def evaluate(model: LlamaLM, config: NeedleToyConfig) -> NeedleGrid:
    """The harness's grid over ``config.eval_lengths`` x ``config.eval_depths``."""
    return needle_grid(
        lambda length, depth, n, gen: needle_batch(length, depth, n, gen),
        lambda ids, k: greedy_answer(model, ids, k),
        config.eval_lengths,
        config.eval_depths,
        config.eval_trials,
        seed=10_000,
    )


def run(config: NeedleToyConfig | None = None) -> dict[str, Any]:
    """Train, then evaluate the grid; a JSON-ready dict (``config`` stored with it)."""
    config = config or NeedleToyConfig()
    start = time.perf_counter()
    model, history = train(config)
    trained = time.perf_counter() - start
    grid = evaluate(model, config)
    return {
        "config": asdict(config),
        "train_seconds": trained,
        "seconds": time.perf_counter() - start,
        "loss": history,
        "lengths": grid.lengths,
        "depths": grid.depths,
        "accuracy": grid.accuracy.tolist(),
    }


def grid_of(result: dict[str, Any]) -> NeedleGrid:
    """The :class:`NeedleGrid` stored in a :func:`run` result."""
    accuracy = torch.tensor(result["accuracy"], dtype=torch.float64)
    trials = result["config"]["eval_trials"]
    return NeedleGrid(result["lengths"], result["depths"], accuracy, trials)
