"""A toy preference-tuning task small enough to train on a laptop CPU in well under a minute.

It mirrors Zephyr's two stages at toy scale. A prompt is ``LENGTH`` letters and a separator; an answer
is ``LENGTH`` letters and an end token. There are two ways to answer: *copy* the letters or *reverse*
them. The SFT data answers mostly by copying (``reverse_fraction`` of the time by reversing), so the SFT
model prefers copying. The preference pairs then say: reversed (chosen) beats copied (rejected).
Preference tuning has to flip the model's habit, and we can watch it happen.

Methods (``train_preference``'s ``method``):

* ``"dpo"``: DPO with a frozen copy of the SFT model as reference (``demos.training.preference.dpo_loss``);
* ``"dpo_no_ref"``: the same loss with ``log pi_ref`` set to 0, i.e. "DPO without a reference model";
* ``"orpo"``: no reference: NLL of the chosen answer + ORPO's odds-ratio term (``orpo_loss``).

Measured on held-out pairs, none of which needs a reference model: the *preference accuracy* (fraction
of pairs where the policy gives the chosen answer a higher log-probability than the rejected one; pairs
whose prompt is a palindrome, so that chosen equals rejected, are left out), the
mean log-probabilities of the chosen and rejected answers, the *reversal rate* (fraction of prompts whose
greedy answer is exactly the reversed letters) and, when an SFT model is given, the mean per-token KL
divergence from it on the held-out answers (how far preference tuning moved the model).

Axes: b batch, t sequence length (``2 * LENGTH + 2``), v vocabulary.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from demos.models.llama import LlamaLM, LlamaLMConfig
from demos.training.preference import dpo_loss, orpo_loss, sequence_logps

PAD, EOS, SEP, FIRST_LETTER = 0, 1, 2, 3
NUM_LETTERS, LENGTH = 10, 5
METHODS = ("dpo", "dpo_no_ref", "orpo")


@dataclass
class ToyConfig:
    """Everything a run depends on; ``asdict`` of it is stored with the results."""

    seed: int = 0
    model: dict[str, int] = field(
        default_factory=lambda: dict(
            vocab_size=FIRST_LETTER + NUM_LETTERS,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
        )
    )
    reverse_fraction: float = 0.25  # share of SFT answers that reverse; the rest copy
    sft_steps: int = 300
    pref_steps: int = 100
    batch_size: int = 64
    sft_lr: float = 3e-3
    pref_lr: float = 3e-4
    beta: float = 0.1  # DPO's beta and ORPO's lambda (weight of the odds-ratio term)
    eval_pairs: int = 256
    eval_every: int = 10


def make_batch(
    n: int, gen: torch.Generator, reverse_fraction: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` sequences ``letters SEP answer EOS`` ``(n, t)`` and their labels (-100 on the prompt).

    Each answer reverses its prompt with probability ``reverse_fraction`` and copies it otherwise.
    """
    if not 0.0 <= reverse_fraction <= 1.0:
        raise ValueError(f"reverse_fraction ({reverse_fraction!r}) must be in [0, 1]")
    letters = torch.randint(FIRST_LETTER, FIRST_LETTER + NUM_LETTERS, (n, LENGTH), generator=gen)
    reverse = torch.rand(n, generator=gen) < reverse_fraction  # (n,)
    answer = torch.where(reverse[:, None], letters.flip(1), letters)  # (n, LENGTH)
    sep, eos = torch.full((n, 1), SEP), torch.full((n, 1), EOS)
    ids = torch.cat([letters, sep, answer, eos], dim=1)  # (n, t)
    labels = ids.clone()
    labels[:, : LENGTH + 1] = -100  # only the answer and EOS are scored
    return ids, labels


def make_pairs(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` preference pairs on shared prompts as ``(ids, labels)``, each ``(2n, t)``.

    Rows ``:n`` are the chosen answers (reversed), rows ``n:`` the rejected ones (copied) to the same
    prompts: the layout TRL's collator uses. Each row has its own labels.
    """
    state = gen.get_state()
    chosen, chosen_labels = make_batch(n, gen, reverse_fraction=1.0)
    gen.set_state(state)  # replay the generator: same prompts for the rejected answers
    rejected, rejected_labels = make_batch(n, gen, reverse_fraction=0.0)
    return torch.cat([chosen, rejected]), torch.cat([chosen_labels, rejected_labels])


@torch.no_grad()
def evaluate(
    model: LlamaLM,
    pairs: tuple[torch.Tensor, torch.Tensor],
    sft: LlamaLM | None = None,
) -> dict[str, float]:
    """Held-out numbers that need no reference model (``kl_from_sft`` only when ``sft`` is given)."""
    ids, labels = pairs  # (2b, t): chosen rows first
    logits = model(ids)  # (2b, t, v)
    lw, ll = sequence_logps(logits, labels).chunk(2)
    chosen, rejected = ids.chunk(2)
    prompts = chosen[:, : LENGTH + 1]
    answers = model.generate(prompts, max_new_tokens=LENGTH)[:, LENGTH + 1 :]  # (b, LENGTH)
    differ = (chosen != rejected).any(-1)  # palindromic prompts make chosen == rejected
    out = {
        "pref_acc": (lw > ll)[differ].float().mean().item(),
        "chosen_logp": lw.mean().item(),
        "rejected_logp": ll.mean().item(),
        "reversal_rate": (answers == chosen[:, LENGTH + 1 : -1]).all(-1).float().mean().item(),
    }
    if sft is not None:  # KL(pi || pi_sft) per answer token, averaged
        scored = labels[:, 1:] != -100  # (2b, t-1): positions that predict an answer token
        logp, logq = logits[:, :-1].log_softmax(-1), sft(ids)[:, :-1].log_softmax(-1)
        kl = (logp.exp() * (logp - logq)).sum(-1)  # (2b, t-1)
        out["kl_from_sft"] = kl[scored].mean().item()
    return out


def train_sft(
    model: LlamaLM,
    config: ToyConfig,
    gen: torch.Generator,
    eval_pairs: tuple[torch.Tensor, ...],
    progress: Any = None,
) -> list[dict[str, float]]:
    """Next-token training on the copy-biased SFT data; returns the logged history."""
    opt = torch.optim.AdamW(model.parameters(), lr=config.sft_lr)
    history = []
    for step in range(1, config.sft_steps + 1):
        ids, labels = make_batch(config.batch_size, gen, config.reverse_fraction)
        logits = model(ids)
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % config.eval_every == 0 or step == config.sft_steps:
            history.append({"step": step, "loss": loss.item(), **evaluate(model, eval_pairs)})
        if progress is not None:
            progress.update()
    return history


def preference_step_loss(
    method: str,
    model: LlamaLM,
    reference: LlamaLM | None,
    batch: tuple[torch.Tensor, torch.Tensor],
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch's training loss and per-pair margin for ``method`` (see the module docstring).

    The margin is DPO's reward margin ``r_w - r_l`` or ORPO's log-odds ratio; > 0 means "prefers chosen".
    """
    if method not in METHODS:
        raise ValueError(f"method ({method!r}) must be one of {METHODS}")
    if method == "dpo" and reference is None:
        raise ValueError("method 'dpo' needs a reference model (got reference=None)")
    ids, labels = batch  # (2b, t): chosen rows first
    logits = model(ids)  # one forward for chosen and rejected, as TRL does
    if method == "orpo":
        avg_w, avg_l = sequence_logps(logits, labels, average=True).chunk(2)
        terms, log_odds = orpo_loss(avg_w, avg_l, beta=beta)
        nll = -avg_w.mean()  # mean per-token NLL of the chosen answers
        return nll + terms.mean(), log_odds.detach()
    lw, ll = sequence_logps(logits, labels).chunk(2)
    if method == "dpo":
        with torch.no_grad():
            rw, rl = sequence_logps(reference(ids), labels).chunk(2)
    else:  # "dpo_no_ref": log pi_ref taken as 0
        rw, rl = torch.zeros_like(lw), torch.zeros_like(ll)
    losses, r_w, r_l = dpo_loss(lw, ll, rw, rl, beta=beta)
    return losses.mean(), r_w - r_l


def train_preference(
    method: str,
    model: LlamaLM,
    config: ToyConfig,
    gen: torch.Generator,
    eval_pairs: tuple[torch.Tensor, ...],
    reference: LlamaLM | None = None,
    sft: LlamaLM | None = None,
    steps: int | None = None,
    lr: float | None = None,
    progress: Any = None,
) -> list[dict[str, float]]:
    """Train ``model`` in place with ``method`` on fresh preference pairs; returns the logged history.

    Logged every ``config.eval_every`` steps: the batch's loss, mean margin and margin accuracy (share of
    pairs with margin > 0), then ``evaluate``'s held-out numbers. ``sft`` is only used for the KL column.
    """
    steps = config.pref_steps if steps is None else steps
    opt = torch.optim.AdamW(model.parameters(), lr=config.pref_lr if lr is None else lr)
    history = []
    for step in range(1, steps + 1):
        batch = make_pairs(config.batch_size, gen)
        loss, margin = preference_step_loss(method, model, reference, batch, config.beta)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % config.eval_every == 0 or step == steps:
            history.append(
                {
                    "step": step,
                    "loss": loss.item(),
                    "margin": margin.mean().item(),
                    "margin_acc": (margin > 0).float().mean().item(),
                    **evaluate(model, eval_pairs, sft),
                }
            )
        if progress is not None:
            progress.update()
    return history


def run_all(config: ToyConfig | None = None, progress: bool = True) -> dict[str, Any]:
    """SFT, then DPO, DPO without reference and ORPO from the SFT model, and ORPO from the base model.

    ORPO from the base model (``sft_steps + pref_steps`` steps at the SFT learning rate) is ORPO as its
    paper means it: one stage instead of SFT followed by preference tuning. Returns the config, the wall
    time in seconds, each run's history and its last logged row.
    """
    # tqdm's text bar: the same in a terminal, the book and every kernel (tqdm.auto would ask for
    # ipywidgets in JupyterLab and warn "IProgress not found" without it)
    from tqdm.std import tqdm

    config = config or ToyConfig()
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    eval_pairs = make_pairs(config.eval_pairs, torch.Generator().manual_seed(config.seed + 12345))
    base = LlamaLM(LlamaLMConfig(**config.model))
    one_stage = config.sft_steps + config.pref_steps
    total = config.sft_steps + len(METHODS) * config.pref_steps + one_stage
    start = time.perf_counter()
    runs: dict[str, list[dict[str, float]]] = {}
    with tqdm(
        total=total,
        desc="SFT; DPO, DPO without reference, ORPO; ORPO from base",
        disable=not progress,
    ) as bar:
        sft = copy.deepcopy(base)
        runs["sft"] = train_sft(sft, config, gen, eval_pairs, bar)
        sft.requires_grad_(False)  # frozen from here on: DPO's pi_ref
        for method in METHODS:
            runs[method] = train_preference(
                method,
                copy.deepcopy(sft).requires_grad_(True),
                config,
                gen,
                eval_pairs,
                reference=sft,
                sft=sft,
                progress=bar,
            )
        runs["orpo_from_base"] = train_preference(
            "orpo",
            copy.deepcopy(base),
            config,
            gen,
            eval_pairs,
            steps=one_stage,
            lr=config.sft_lr,
            progress=bar,
        )
    return {
        "config": asdict(config),
        "seconds": time.perf_counter() - start,
        "final": {name: history[-1] for name, history in runs.items()},
        "runs": runs,
    }
