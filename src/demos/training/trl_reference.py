"""TRL's own preference losses, for the parity tests and the chapter's parity cell (offline).

``trl_dpo_loss_on_one_batch`` asks ``DPOTrainer`` for its loss; ``trl_odds_ratio_terms`` and
``trl_token_logps`` call the functions ORPO's trainer and both trainers use. TRL's import-time and
deprecation warnings (no ipywidgets for tqdm in a plain kernel, transformers' renamed arguments) are
silenced here, so that a chapter page shows results rather than warnings.

``DPOTrainer`` needs a tokenizer and a text dataset. We build both locally: a word-level tokenizer over
made-up words ``w0 w1 ...`` (the ``tokenizers`` library, nothing downloaded) and a few prompt/chosen/
rejected triples of such words. The trainer tokenizes and collates them as it would real data; we take
its first batch and ask it for its loss, then compute ours from the same models' logits.

Reference implementation: trl==1.16.0, trainer/dpo_trainer.py::DPOTrainer.compute_loss, ::DataCollatorForPreference;
experimental/orpo/orpo_trainer.py::ORPOTrainer.odds_ratio_loss; trainer/utils.py::selective_log_softmax
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import torch


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence warnings raised while importing and driving TRL (none of them concerns the numbers).

    Besides Python warnings, bitsandbytes (imported by GRPO's trainer module) logs that it could not
    fetch an optional faster CPU kernel from the Hub (on CPUs with AVX512-BF16); its logger is
    raised to ERROR for the duration.
    """
    import logging

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # ORPO lives in trl.experimental in 1.16
    bnb = logging.getLogger("bitsandbytes.backends.cpu.ops")
    level = bnb.level
    bnb.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        bnb.setLevel(level)


def trl_token_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """TRL's ``selective_log_softmax``: ``(b, t, v), (b, t) -> (b, t)`` log-prob of each label (>= 0)."""
    with _quiet():
        from trl.trainer.utils import selective_log_softmax

        return selective_log_softmax(logits, labels)


def trl_odds_ratio_terms(
    chosen_logps: torch.Tensor, rejected_logps: torch.Tensor, beta: float
) -> torch.Tensor:
    """``ORPOTrainer.odds_ratio_loss``'s per-pair terms, ``beta * log sigma(log odds ratio) <= 0``.

    The method only reads ``self.beta`` and ``self.accelerator.device``, so it is called on a stand-in
    object instead of a trainer (which would need a model, a tokenizer and a dataset).
    """
    with _quiet():
        from trl.experimental.orpo.orpo_trainer import ORPOTrainer

        stand_in = SimpleNamespace(
            beta=beta, accelerator=SimpleNamespace(device=chosen_logps.device)
        )
        terms, *_ = ORPOTrainer.odds_ratio_loss(stand_in, chosen_logps, rejected_logps)
    return terms


def tiny_word_tokenizer(num_words: int) -> Any:
    """A ``PreTrainedTokenizerFast`` with ids 0 ``<pad>``, 1 ``</s>``, then words ``w0 .. w{n-1}``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1} | {f"w{i}": i + 2 for i in range(num_words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>")


def tiny_preference_rows(num_words: int, num_pairs: int = 4, seed: int = 0) -> list[dict[str, str]]:
    """Prompt/chosen/rejected texts of random words, with prompts and completions of varied lengths."""
    gen = torch.Generator().manual_seed(seed)

    def words(n: int) -> str:
        return " ".join(f"w{i}" for i in torch.randint(0, num_words, (n,), generator=gen).tolist())

    return [
        {
            "prompt": words(3 + i % 3),
            "chosen": " " + words(2 + i % 4),
            "rejected": " " + words(5 - i % 3),
        }
        for i in range(num_pairs)
    ]


def trl_dpo_loss_on_one_batch(
    policy: torch.nn.Module,
    reference: torch.nn.Module,
    loss_type: str = "sigmoid",
    beta: float = 0.1,
    num_pairs: int = 4,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Build ``trl.DPOTrainer`` on a tiny preference dataset and return (its loss on the first batch, that batch).

    ``policy`` and ``reference`` are causal LMs with ``vocab_size >= num_words + 2``; the batch holds the
    chosen sequences first, then the rejected ones, with ``input_ids``, ``attention_mask`` and
    ``completion_mask`` (1 on completion tokens, EOS included). The loss keeps its graph, so gradients
    can be compared too.

    Two traps, both handled here. ``DPOConfig`` defaults to ``bf16=True`` (trl 1.16.0), and accelerate then
    runs the *reference* model's forward under bfloat16 autocast even on the CPU: its log-probs move by
    ~5e-2 and the loss by ~5e-3. We ask for fp32 (``bf16=False``), so both sides compute the same thing.
    And the trainer patches the models it is given (``forward`` replaced on the instances, the reference
    marked as prepared); a later call on the same objects would inherit those patches. So the trainer gets
    a copy of ``reference``, and ``policy`` (which must stay the caller's object, for its gradients) gets
    its class's ``forward`` back afterwards: every call starts clean.
    """
    import copy

    with _quiet():
        import datasets
        from trl import DPOConfig, DPOTrainer

        datasets.disable_progress_bars()
        num_words = policy.config.vocab_size - 2
        tokenizer = tiny_word_tokenizer(num_words)
        dataset = datasets.Dataset.from_list(tiny_preference_rows(num_words, num_pairs))
        with tempfile.TemporaryDirectory() as out:
            args = DPOConfig(
                output_dir=out,
                per_device_train_batch_size=num_pairs,
                beta=beta,
                loss_type=[loss_type],
                report_to="none",
                use_cpu=True,
                bf16=False,  # trl's default is True: the reference would run under bf16 autocast
                disable_tqdm=True,
            )
            trainer = DPOTrainer(
                model=policy,
                ref_model=copy.deepcopy(reference),
                args=args,
                train_dataset=dataset,
                processing_class=tokenizer,
            )
            batch = next(iter(trainer.get_train_dataloader()))
            loss = trainer.compute_loss(trainer.model, batch)
        # undo the instance-level patch: the class's forward again
        policy.__dict__.pop("forward", None)
        return loss, batch


def tiny_reward_model() -> torch.nn.Module:
    """A 2-layer ``LlamaForSequenceClassification`` with one label and ``pad_token_id = 0``."""
    with _quiet():  # transformers' first import in a kernel warns that ipywidgets is missing
        from transformers import LlamaConfig, LlamaForSequenceClassification

    config = LlamaConfig(vocab_size=34, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, num_labels=1,
                         pad_token_id=0)  # fmt: skip
    return LlamaForSequenceClassification(config).float()


def trl_reward_loss_on_one_batch(
    model: torch.nn.Module, num_pairs: int = 4, margins: list[float] | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Build ``trl.RewardTrainer`` on tiny preference pairs; return (its loss on the first batch, that batch).

    ``model`` is a sequence-classification model with ``num_labels == 1`` and ``vocab_size >=
    num_words + 2``, ``pad_token_id = 0`` (the tiny tokenizer's ``<pad>``). Rows carry an explicit
    prompt, which the trainer prepends to both answers, and, when ``margins`` is given, a per-pair
    ``margin`` (``RewardTrainer`` then subtracts it inside the sigmoid). The batch holds the chosen
    sequences first, then the rejected, right-padded, with ``input_ids`` and ``attention_mask`` (and
    ``margin``). As for DPO, ``bf16=False``: TRL's default would run the forward under bfloat16
    autocast. The loss keeps its graph, on ``model`` itself, so gradients can be compared.

    Reference implementation: trl==1.16.0, trainer/reward_trainer.py::RewardTrainer.compute_loss,
    ::DataCollatorForPreference.
    """
    with _quiet():
        import datasets
        from trl import RewardConfig, RewardTrainer

        datasets.disable_progress_bars()
        num_words = model.config.vocab_size - 2
        rows = tiny_preference_rows(num_words, num_pairs)
        if margins is not None:
            if len(margins) != num_pairs:
                raise ValueError(f"margins has {len(margins)} values for {num_pairs} pairs")
            rows = [row | {"margin": float(m)} for row, m in zip(rows, margins, strict=True)]
        with tempfile.TemporaryDirectory() as out:
            args = RewardConfig(
                output_dir=out,
                per_device_train_batch_size=num_pairs,
                report_to="none",
                use_cpu=True,
                bf16=False,  # trl's default is True: the forward would run under bf16 autocast
                disable_tqdm=True,
            )
            trainer = RewardTrainer(
                model=model,
                args=args,
                train_dataset=datasets.Dataset.from_list(rows),
                processing_class=tiny_word_tokenizer(num_words),
            )
            # no shuffling, so the first batch is the rows in order
            batch = next(iter(trainer.get_train_dataloader()))
            loss = trainer.compute_loss(trainer.model, dict(batch))
        model.__dict__.pop("forward", None)  # as for DPO: the class's forward again
        return loss, batch


def trl_clipped_surrogate_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    epsilon: float = 0.2,
    beta: float = 0.0,
    ref_logps: torch.Tensor | None = None,
) -> torch.Tensor:
    """``GRPOTrainer._compute_loss`` with ``loss_type="bnpo"`` on given log-probs (``beta=0`` by default).

    GRPO's loss is PPO's clipped surrogate per token, with advantages from a group baseline instead
    of GAE; given the same ``(b, t)`` log-probs, old log-probs and advantages (``(b, t)`` or ``(b,)``)
    it computes ``-min(rho A, clip(rho) A)`` and ``"bnpo"`` averages it over every real token of the
    batch. ``beta=0`` leaves out its KL term: with ``beta > 0`` and ``ref_logps`` given, GRPO adds
    ``beta * (exp(ref - logp) - (ref - logp) - 1)`` per token to the loss (the "k3" estimate of
    ``KL(pi || pi_ref)``), where PPO as InstructGPT ran it subtracts ``beta * (logp - ref)`` from
    the reward; so a zero advantage isolates TRL's KL term (its ``use_bias_correction_kl``, on by
    default in ``GRPOConfig``, multiplies by the ratio: off here, and 1 when old = current anyway).
    The method is called on a stand-in object whose ``_get_per_token_logps_and_entropies`` returns
    ``logps`` (no model, no generation), so gradients flow to ``logps``.

    Reference implementation: trl==1.16.0, trainer/grpo_trainer.py::GRPOTrainer._compute_loss.
    """
    from collections import defaultdict

    with _quiet():
        from trl import GRPOTrainer

        def per_token_logps_and_entropies(*args: Any, **kwargs: Any):
            return logps, torch.zeros_like(logps), None

        accelerator = SimpleNamespace(
            reduce=lambda x, reduction="sum": x, gather=lambda x: x, gather_for_metrics=lambda x: x
        )
        b, t = logps.shape
        stand_in = SimpleNamespace(
            _get_per_token_logps_and_entropies=per_token_logps_and_entropies,
            aux_loss_enabled=False,
            top_entropy_quantile=1.0,
            off_policy_mask_threshold=None,
            importance_sampling_level="token",
            beta=beta,
            loss_type="bnpo",
            epsilon_low=epsilon,
            epsilon_high=epsilon,
            args=SimpleNamespace(delta=None, use_bias_correction_kl=False),
            use_vllm=False,
            model=SimpleNamespace(training=False),  # eval mode: no gradient-accumulation scaling
            current_gradient_accumulation_steps=1,
            _entropy_bonus_enabled=False,
            _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
            accelerator=accelerator,
        )
        inputs = {
            "prompt_ids": torch.zeros(b, 1, dtype=torch.long),
            "prompt_mask": torch.ones(b, 1, dtype=torch.long),
            "completion_ids": torch.zeros(b, t, dtype=torch.long),
            "completion_mask": mask,
            "advantages": advantages,
            "old_per_token_logps": old_logps,
        }
        if beta != 0.0:
            if ref_logps is None:
                raise ValueError(f"beta ({beta}) is not 0, so ref_logps must be given")
            inputs["ref_per_token_logps"] = ref_logps
        return GRPOTrainer._compute_loss(stand_in, None, inputs)
