"""The Qwen1.5 chapter's toy: how many experts a batch's tokens reach, before and after a few training
steps, with and without the balancing loss.

A tiny :class:`~demos.models.qwen2_moe.Qwen2MoeLM` (two sparse layers, 8 experts, 2 per token)
learns arithmetic sequences of token ids (``start, start + step, ...`` modulo the vocabulary). It
starts from a router that already sends most tokens to two experts (:func:`skew_router_`): the state
a router drifts into and then reinforces, because only the chosen experts are trained and only their
weights reach the router's gradient [shazeer2017moe], Section 4. Training on the next-token loss
alone leaves that imbalance in place; adding ``aux_coef`` times
:func:`~demos.layers.moe.load_balancing_loss` [fedus2022switch] spreads the tokens out. Everything
is seeded; a run takes about two seconds on one CPU thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from demos.layers.moe import load_balancing_loss
from demos.models.qwen2_moe import Qwen2MoeLM, Qwen2MoeLMConfig, forward_with_router_logits
from demos.training.sft import causal_lm_loss


@dataclass(frozen=True)
class ToyConfig:
    vocab_size: int = 64
    experts: int = 8  # E
    top_k: int = 2  # k
    batch: int = 16  # sequences per step
    length: int = 24  # tokens per sequence
    steps: int = 120
    lr: float = 3e-3  # AdamW
    favoured: tuple[int, ...] = (0, 1)  # the experts the skewed router starts by preferring
    skew: float = (
        4.0  # how strongly (the favoured experts' logit lead, in units of the input's mean)
    )
    seed: int = 0


def toy_model(cfg: ToyConfig = ToyConfig()) -> Qwen2MoeLM:
    """A two-layer Qwen2MoeLM, every layer sparse, weights drawn with std 0.1 (norms at one)."""
    torch.manual_seed(cfg.seed)
    config = Qwen2MoeLMConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        num_experts=cfg.experts,
        num_experts_per_tok=cfg.top_k,
        moe_intermediate_size=16,
        shared_expert_intermediate_size=32,
    )
    model = Qwen2MoeLM(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.normal_(0.0, 0.1)
    return model


def toy_batch(seed: int, cfg: ToyConfig = ToyConfig()) -> torch.Tensor:
    """``(batch, length)`` arithmetic sequences of token ids: a random start and step (1 to 3)."""
    gen = torch.Generator().manual_seed(seed)
    start = torch.randint(0, cfg.vocab_size, (cfg.batch, 1), generator=gen)
    step = torch.randint(1, 4, (cfg.batch, 1), generator=gen)
    return (start + step * torch.arange(cfg.length)) % cfg.vocab_size


def expert_load(model: Qwen2MoeLM, ids: torch.Tensor) -> torch.Tensor:
    """``(layers, E)``: how many of the batch's tokens each sparse layer sends to each expert
    (each token counts once per expert in its top-k, so a row sums to ``b * t * k``)."""
    with torch.no_grad():
        _, routers = forward_with_router_logits(model, ids)
    k, e = model.config.num_experts_per_tok, model.config.num_experts
    return torch.stack(
        [torch.bincount(r.topk(k, -1).indices.flatten(), minlength=e) for r in routers]
    )


def skew_router_(model: Qwen2MoeLM, ids: torch.Tensor, cfg: ToyConfig = ToyConfig()) -> None:
    """Tilt each router towards ``cfg.favoured``: add to those experts' rows the mean direction of
    the router's inputs on ``ids``, scaled so that their logits lead by about ``cfg.skew``."""
    inputs: list[torch.Tensor] = []
    hooks = [
        block.mlp.register_forward_hook(lambda m, args, out: inputs.append(args[0].flatten(0, 1)))
        for block in model.blocks
    ]
    with torch.no_grad():
        model(ids)
        for hook in hooks:
            hook.remove()
        for block, x in zip(model.blocks, inputs, strict=True):
            u = x.mean(0) / x.mean(0).norm()  # (c,): the direction the inputs share
            lead = cfg.skew / (x @ u).mean().abs().clamp(min=1e-3)
            for i in cfg.favoured:
                block.mlp.gate.weight[i] += lead * u


def run(aux_coef: float, cfg: ToyConfig = ToyConfig()) -> dict[str, list]:
    """Train the skewed toy model for ``cfg.steps`` steps on ``lm loss + aux_coef * balancing
    loss``. Returns the expert loads on a held-out batch before and after (``(layers, E)`` as
    lists) and, per step, the next-token loss and the balancing loss."""
    model = toy_model(cfg)
    skew_router_(model, toy_batch(10_000, cfg), cfg)
    held_out = toy_batch(20_000, cfg)
    before = expert_load(model, held_out)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    lm_losses, aux_losses = [], []
    for step in range(cfg.steps):
        ids = toy_batch(step, cfg)
        logits, routers = forward_with_router_logits(model, ids)
        lm = causal_lm_loss(logits, ids)
        aux = load_balancing_loss(routers, cfg.top_k)
        optimizer.zero_grad()
        (lm + aux_coef * aux).backward()
        optimizer.step()
        lm_losses.append(lm.item())
        aux_losses.append(aux.item())
    after = expert_load(model, held_out)
    return {"before": before.tolist(), "after": after.tolist(), "lm": lm_losses, "aux": aux_losses}
