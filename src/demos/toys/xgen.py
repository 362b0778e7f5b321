"""XGen's staged training at toy scale: a tiny Llama trained on sequences that grow 16 -> 32 -> 64.

XGen-7B was trained on 800B tokens at 2K, then 400B more at 4K, then up to 1.5T in all at 8K
[nijkamp2023xgen, salesforce2023xgenblog]. Here the lengths are divided by 128 and the token counts
scaled down, so the
schedule keeps XGen's shape, 8 : 4 : 3: 400, 200 and 150 steps of 1,024 tokens at lengths 16, 32
and 64 (the batch shrinks as the sequences grow, so every step holds the same number of tokens).

The task needs the context. A sequence repeats a random segment of ``p`` tokens, ``p`` between a
quarter and a half of its length, so after the first period every token can be predicted by
finding where the previous token occurred before and copying what followed (an induction head's
job); the first period is noise (loss ``log v``). The *copy loss* is the cross-entropy on those
predictable targets: near 0 where the model copies across distances ``p``, high where it does not.
Longer stages train longer distances (16 to 32 at length 64), and the evaluation after each stage
asks every length, trained or not.

Axes: b batch, t sequence length, v vocabulary.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from demos.layers.flops import forward_flops_of
from demos.models.llama import LlamaLM, LlamaLMConfig
from demos.validation import check_positive_int

VOCAB = 64


@dataclass
class StagedConfig:
    """Everything a run depends on; ``asdict`` of it is stored with the results."""

    seed: int = 0
    model: dict[str, int] = field(
        default_factory=lambda: dict(
            vocab_size=VOCAB,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
        )
    )
    # [sequence length, tokens in the stage]: XGen's 2K/4K/8K and 800B/400B/300B (8:4:3), scaled
    stages: list[list[int]] = field(
        default_factory=lambda: [[16, 400 * 1024], [32, 200 * 1024], [64, 150 * 1024]]
    )
    tokens_per_step: int = 1024  # batch * length, the same in every stage
    lr: float = 3e-3
    clip: float = 1.0  # gradient-norm clipping, as most pretraining runs use
    eval_lengths: list[int] = field(default_factory=lambda: [16, 32, 64])
    eval_batch: int = 128
    log_every: int = 20  # steps between two logged points


def copy_batch(
    n: int, length: int, gen: torch.Generator, vocab: int = VOCAB
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` periodic sequences ``(n, length)`` and their periods ``(n,)``.

    Each sequence repeats a random segment of ``p`` tokens, ``p`` drawn per sequence from
    ``[length / 4, length / 2]``: token ``i`` equals token ``i - p`` from position ``p`` on. A model
    can only predict them by finding the earlier occurrence of the current token and copying what
    followed it (an induction head), ``p`` positions back. ``ValueError`` unless ``n`` and
    ``vocab`` are positive and ``length`` is a multiple of 4.
    """
    check_positive_int("n", n)
    check_positive_int("vocab", vocab)
    check_positive_int("length", length)
    if length % 4:
        raise ValueError(f"length ({length!r}) must be a multiple of 4")
    periods = torch.randint(length // 4, length // 2 + 1, (n,), generator=gen)  # (n,)
    segment = torch.randint(0, vocab, (n, length // 2), generator=gen)  # (n, length/2)
    position = torch.arange(length)  # (length,)
    index = position[None, :] % periods[:, None]  # (n, length): i mod p
    return segment.gather(1, index), periods


def losses(
    logits: torch.Tensor, ids: torch.Tensor, periods: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, copy_loss)``: next-token cross-entropy over every target, and over the copy targets.

    ``logits (b, t, v)`` predict ``ids[:, 1:]``. The copy targets of a sequence of period ``p`` are
    positions ``p + 1`` to ``t - 1``: each repeats the token ``p`` before it, *and* the token before
    it has occurred already, so the context says what comes next. (Position ``p`` follows the
    first period's last token, which has no earlier occurrence.)
    """
    b, t, v = logits.shape
    per_token = F.cross_entropy(
        logits[:, :-1].reshape(-1, v), ids[:, 1:].reshape(-1), reduction="none"
    ).view(b, t - 1)  # (b, t - 1): the loss of predicting ids[:, 1:]
    target = torch.arange(1, t, device=ids.device)  # position of each target
    copy = target[None, :] >= periods[:, None] + 1  # (b, t - 1)
    return per_token.mean(), per_token[copy].mean()


def schedule(config: StagedConfig) -> list[dict[str, int]]:
    """Each stage's ``length``, ``batch`` (``tokens_per_step / length``) and ``steps``
    (``tokens / tokens_per_step``). ``ValueError`` when a length does not divide the tokens per
    step or a stage's tokens are not a whole number of steps."""
    plan = []
    for length, tokens in config.stages:
        check_positive_int("stage length", length)
        check_positive_int("stage tokens", tokens)
        if config.tokens_per_step % length or tokens % config.tokens_per_step:
            raise ValueError(
                f"stage ({length}, {tokens}): length must divide tokens_per_step "
                f"({config.tokens_per_step}), which must divide the stage's tokens"
            )
        batch, steps = config.tokens_per_step // length, tokens // config.tokens_per_step
        plan.append({"length": length, "batch": batch, "steps": steps})
    return plan


@torch.no_grad()
def evaluate(model: LlamaLM, config: StagedConfig) -> dict[str, float]:
    """Copy loss on held-out sequences (a fixed seed) at each of ``config.eval_lengths``."""
    model.eval()
    out = {}
    for length in config.eval_lengths:
        gen = torch.Generator().manual_seed(10_000 + length)  # the same sequences after every stage
        ids, periods = copy_batch(config.eval_batch, length, gen, config.model["vocab_size"])
        out[str(length)] = losses(model(ids), ids, periods)[1].item()
    model.train()
    return out


def run(config: StagedConfig | None = None, progress: bool = False) -> dict[str, Any]:
    """Train one model through every stage; return the logged history, per-stage timing and the
    evaluation after each stage (a JSON-ready dict; ``config`` is stored with it)."""
    config = config or StagedConfig()
    plan = schedule(config)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model_config = LlamaLMConfig(**config.model)
    model = LlamaLM(model_config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    history, stages, tokens_seen, start = [], [], 0, time.perf_counter()
    for stage, step_plan in enumerate(plan):
        length, batch, steps = step_plan["length"], step_plan["batch"], step_plan["steps"]
        stage_start = time.perf_counter()
        for step in range(1, steps + 1):
            ids, periods = copy_batch(batch, length, gen, config.model["vocab_size"])
            loss, copy_loss = losses(model(ids), ids, periods)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            optimizer.step()
            tokens_seen += batch * length
            if step % config.log_every == 0 or step == steps:
                history.append(
                    {"stage": stage, "tokens": tokens_seen, "loss": loss.item(),
                     "copy_loss": copy_loss.item()}
                )  # fmt: skip
        seconds = time.perf_counter() - stage_start
        per_token = forward_flops_of(_as_hf(config), length).total // length
        stages.append(
            {**step_plan, "tokens": steps * batch * length, "seconds": seconds,
             "tokens_per_second": steps * batch * length / seconds,
             "forward_flops_per_token": per_token, "eval_copy_loss": evaluate(model, config)}
        )  # fmt: skip
        if progress:
            print(
                f"stage {stage} (length {length}): {stages[-1]['tokens_per_second']:,.0f} tokens/s"
            )
    return {
        "config": asdict(config),
        "seconds": time.perf_counter() - start,
        "stages": stages,
        "history": history,
    }


def _as_hf(config: StagedConfig) -> Any:
    """The model's sizes under transformers' names, for :func:`forward_flops_of`."""
    from types import SimpleNamespace

    return SimpleNamespace(**config.model)
