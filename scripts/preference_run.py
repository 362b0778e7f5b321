"""A tiny end-to-end preference-tuning run on the CPU: SFT, then DPO (frozen reference) and ORPO (none).

The toy task mimics Zephyr's recipe at toy scale. A prompt is five letters and a separator; a
completion is five letters and an end token. The SFT data answers half the prompts by *copying* the
letters and half by *reversing* them, so after SFT the model likes both answers about equally. The
preference pairs then say: reversed (chosen) beats copied (rejected). We train, from the SFT model,

* DPO with a frozen copy of the SFT model as reference (``dpo_loss``, sigmoid, beta = 0.1);
* DPO with the reference log-probs set to zero, i.e. "DPO without a reference model" (an ablation);
* ORPO, no reference model: NLL of the chosen answer + the odds-ratio term (``orpo_loss``);

and ORPO once more from the untrained base model, since ORPO is meant to replace SFT + preference
tuning with one stage. Every step logs the loss, the margin (DPO: reward margin beta * h; ORPO: the
log-odds ratio), the training-batch accuracy of that margin, and two held-out numbers that need no
reference model: the *preference accuracy* (fraction of held-out pairs where the policy gives the
chosen answer a higher log-probability than the rejected one) and the mean log-probability of the
held-out chosen answers.

Run: ``PYTHONPATH=src python scripts/preference_run.py`` (about a minute on two CPU cores). Writes
``results/preference_run.json``, which the Zephyr chapter plots.
"""

from __future__ import annotations

import copy
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from demos.decoder import DecoderConfig, DecoderLM
from demos.preference import dpo_loss, orpo_loss, sequence_logps

PAD, EOS, SEP, FIRST_LETTER, NUM_LETTERS, LENGTH = 0, 1, 2, 3, 10, 5
CONFIG = dict(
    seed=0,
    model=dict(
        vocab_size=FIRST_LETTER + NUM_LETTERS,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
    ),
    sft_steps=300,
    pref_steps=150,
    orpo_from_base_steps=300,
    batch_size=64,
    eval_pairs=256,
    sft_lr=3e-3,
    pref_lr=1e-3,
    dpo_beta=0.1,
    orpo_beta=0.1,  # ORPO's lambda, the weight of the odds-ratio term
)


def make_batch(n: int, gen: torch.Generator, style: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` sequences ``prompt SEP completion EOS`` and their labels (-100 on the prompt).

    ``style``: ``"copy"``, ``"reverse"`` or ``"mixed"`` (each sequence copy or reverse at random).
    """
    letters = torch.randint(FIRST_LETTER, FIRST_LETTER + NUM_LETTERS, (n, LENGTH), generator=gen)
    reverse = {
        "copy": torch.zeros(n, dtype=torch.bool),
        "reverse": torch.ones(n, dtype=torch.bool),
        "mixed": torch.rand(n, generator=gen) < 0.5,
    }[style]
    answer = torch.where(reverse[:, None], letters.flip(1), letters)  # (n, LENGTH)
    sep, eos = torch.full((n, 1), SEP), torch.full((n, 1), EOS)
    ids = torch.cat([letters, sep, answer, eos], dim=1)  # (n, 2 * LENGTH + 2)
    labels = ids.clone()
    labels[:, : LENGTH + 1] = -100  # only the completion is scored
    return ids, labels


def make_pairs(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Preference pairs on the same prompts: (chosen = reversed, rejected = copied) ids, and labels."""
    state = gen.get_state()
    chosen, labels = make_batch(n, gen, "reverse")
    gen.set_state(state)  # same prompts for the rejected answers
    rejected, _ = make_batch(n, gen, "copy")
    return chosen, rejected, labels


def logps_of(model: DecoderLM, ids: torch.Tensor, labels: torch.Tensor, average: bool = False):
    return sequence_logps(model(ids), labels, average=average)


@torch.no_grad()
def held_out(model: DecoderLM, pairs) -> dict[str, float]:
    chosen, rejected, labels = pairs
    lw, ll = logps_of(model, chosen, labels), logps_of(model, rejected, labels)
    return {"pref_acc": (lw > ll).float().mean().item(), "chosen_logp": lw.mean().item()}


def run_sft(model, steps, gen, lr, eval_pairs, bar) -> list[dict]:
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    history = []
    for step in range(steps):
        ids, labels = make_batch(CONFIG["batch_size"], gen, "mixed")
        logits = model(ids)
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append({"step": step, "loss": loss.item(), **held_out(model, eval_pairs)})
        bar.update()
    return history


def run_preference(method, model, reference, steps, gen, lr, eval_pairs, bar) -> list[dict]:
    """``method``: ``"dpo"``, ``"dpo_no_ref"`` or ``"orpo"``; ``reference`` is used by ``"dpo"`` only."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    history = []
    for step in range(steps):
        chosen, rejected, labels = make_pairs(CONFIG["batch_size"], gen)
        ids = torch.cat([chosen, rejected])  # one forward for both halves, like TRL
        logits = model(ids)
        if method == "orpo":
            avg = sequence_logps(logits, torch.cat([labels, labels]), average=True)
            terms, log_odds = orpo_loss(*avg.chunk(2), beta=CONFIG["orpo_beta"])
            nll = F.cross_entropy(logits[: len(chosen), :-1].flatten(0, 1), labels[:, 1:].flatten())
            loss, margin = nll + terms.mean(), log_odds
        else:
            lw, ll = sequence_logps(logits, torch.cat([labels, labels])).chunk(2)
            if method == "dpo":
                with torch.no_grad():
                    rw, rl = logps_of(reference, ids, torch.cat([labels, labels])).chunk(2)
            else:  # "DPO without a reference model": log pi_ref taken as 0
                rw, rl = torch.zeros_like(lw), torch.zeros_like(ll)
            losses, r_w, r_l = dpo_loss(lw, ll, rw, rl, beta=CONFIG["dpo_beta"])
            loss, margin = losses.mean(), r_w - r_l
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(
            {
                "step": step,
                "loss": loss.item(),
                "margin": margin.mean().item(),
                "margin_acc": (margin > 0).float().mean().item(),
                **held_out(model, eval_pairs),
            }
        )
        bar.update()
    return history


def main() -> None:
    torch.manual_seed(CONFIG["seed"])
    gen = torch.Generator().manual_seed(CONFIG["seed"])
    eval_pairs = make_pairs(CONFIG["eval_pairs"], torch.Generator().manual_seed(12345))
    base = DecoderLM(DecoderConfig(**CONFIG["model"]))
    c = CONFIG
    total = c["sft_steps"] + 3 * c["pref_steps"] + c["orpo_from_base_steps"]
    start = time.perf_counter()
    runs = {}
    with tqdm(total=total, desc="SFT, DPO, DPO without reference, ORPO x2") as bar:
        sft = copy.deepcopy(base)
        runs["sft"] = run_sft(sft, c["sft_steps"], gen, c["sft_lr"], eval_pairs, bar)
        reference = copy.deepcopy(sft).requires_grad_(False)  # frozen: DPO's pi_ref
        for method in ("dpo", "dpo_no_ref", "orpo"):
            model = copy.deepcopy(sft)
            runs[method] = run_preference(
                method, model, reference, c["pref_steps"], gen, c["pref_lr"], eval_pairs, bar
            )
        runs["orpo_from_base"] = run_preference(
            "orpo",
            copy.deepcopy(base),
            None,
            c["orpo_from_base_steps"],
            gen,
            c["sft_lr"],
            eval_pairs,
            bar,
        )
    seconds = time.perf_counter() - start
    result = {
        "script": "scripts/preference_run.py",
        "config": CONFIG,
        "seconds": seconds,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu_threads": torch.get_num_threads(),
        },
        "final": {name: h[-1] for name, h in runs.items()},
        "runs": runs,
    }
    out = Path(__file__).resolve().parents[1] / "results" / "preference_run.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"{seconds:.1f} s; wrote {out}")
    for name, h in runs.items():
        print(
            f"{name:>15}: held-out preference accuracy {h[-1]['pref_acc']:.3f}, "
            f"chosen log-prob {h[-1]['chosen_logp']:.3f}"
        )


if __name__ == "__main__":
    main()
