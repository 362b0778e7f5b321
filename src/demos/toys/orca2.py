"""A toy Orca 2: a teacher told which strategy to use, a student trained with or without that instruction.

The task: the sum of a list of digits, modulo 10 (``sum of 3 5 2``). The teacher's strategy depends on
the task, as Orca 2 chooses one per task [mitra2023orca2]: a short list (``SHORT`` digits or fewer) is
answered directly (``answer 0``); a longer one step by step, with the running totals
(``3 8 0 2 answer 2``). Each example carries the detailed system instruction the teacher was given
(:data:`STEP_SYSTEM` or :data:`DIRECT_SYSTEM`).

A student is trained on the teacher's answers only (the loss of ``demos.training.sft``). In a share
``erased`` of its examples the instruction is replaced by a generic message (Prompt Erasing); in the
rest it keeps the teacher's instruction. It is then asked under the generic message, as a deployed
Orca 2 is: does it still pick the teacher's strategy for each task? The *strategy rate* is the share
of held-out prompts whose first answer token is the right one (a digit: step by step; ``answer``:
direct).

The tokenizer is word-level (a ``tokenizers`` WordLevel model, whitespace and punctuation split),
small enough for a figure to show every token; Orca 2's is Llama's BPE tokenizer with ``[PAD]``,
``<|im_start|>`` and ``<|im_end|>`` added [azureml2023orca2card]. Ours orders its ids the same way:
``<unk> <s> </s>`` first, the added tokens last.

Axes: b batch, t sequence length, v vocabulary.
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from demos.models.llama import LlamaLM, LlamaLMConfig
from demos.training.prompt_erasure import (
    GENERIC_SYSTEM,
    IM_END,
    IM_START,
    PAD,
    TeacherExample,
    chatml,
    erase_prompt,
    teacher_messages,
    training_ids,
)
from demos.training.sft import IGNORE_INDEX, causal_lm_loss, masked_labels

STEP_SYSTEM = "Add the digits one at a time, write each running total, then give the answer."
DIRECT_SYSTEM = "Give the answer directly, with no working."
# The toy's generic message: Orca 2's [hf_orca2_card] cut to its point (no strategy) to keep the
# sequences short enough to train on a CPU in seconds.
TOY_GENERIC = "You are Orca, a cautious assistant."
SHORT = 2  # lists of up to SHORT digits are answered directly, longer ones step by step
LENGTHS = (1, 2, 3, 4, 5)  # list lengths drawn for the task


def teacher_example(digits: list[int]) -> TeacherExample:
    """The teacher's example for ``digits``: the strategy its instruction named, and its answer."""
    if not digits or any(not 0 <= d <= 9 for d in digits):
        raise ValueError(f"digits must be a non-empty list of 0..9, got {digits!r}")
    user = "sum of " + " ".join(map(str, digits))
    total = sum(digits) % 10
    if len(digits) <= SHORT:
        return TeacherExample(DIRECT_SYSTEM, user, f"answer {total}")
    running = [sum(digits[: i + 1]) % 10 for i in range(len(digits))]
    return TeacherExample(STEP_SYSTEM, user, " ".join(map(str, running)) + f" answer {total}")


@functools.lru_cache(maxsize=1)
def toy_tokenizer() -> Any:
    """A word-level transformers ``PreTrainedTokenizerFast`` for the toy task and the generic message.

    Ids: ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, then the words, then ``[PAD]``, ``<|im_start|>``,
    ``<|im_end|>`` (Orca 2's order: Llama's 32,000 ids, then the three added tokens). BOS is added by
    the chat template and by :func:`demos.training.prompt_erasure.training_ids`, not on ``encode``.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    split = pre_tokenizers.Whitespace()
    texts = [GENERIC_SYSTEM, TOY_GENERIC, STEP_SYSTEM, DIRECT_SYSTEM]
    texts += ["sum of answer system user assistant"]
    texts += [str(d) for d in range(10)]
    words = sorted({w for text in texts for w, _ in split.pre_tokenize_str(text)})
    vocab = {
        tok: i for i, tok in enumerate(["<unk>", "<s>", "</s>", *words, PAD, IM_START, IM_END])
    }
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = split
    tok.add_special_tokens([PAD, IM_START, IM_END])  # matched whole, before the words are split
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token=PAD
    )


@dataclass
class ToyConfig:
    """Everything a run depends on; ``asdict`` of it is stored with the results."""

    seed: int = 0
    model: dict[str, int] = field(
        default_factory=lambda: dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4
        )
    )
    generic: str = TOY_GENERIC  # the student's system message where the instruction is erased
    pool: int = 512  # training examples, tokenized once; batches are drawn from them
    steps: int = 100
    batch_size: int = 32
    lr: float = 3e-3
    eval_prompts: int = 50  # held-out lists per length


def make_pool(
    n: int, gen: torch.Generator, erased: float, generic: str = TOY_GENERIC, tokenizer: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random training examples: ``(input_ids, labels)``, both ``(n, t)``, right-padded with
    ``[PAD]`` (label -100); labels keep only the teacher's answer tokens. In a share ``erased`` of
    them (drawn at random) the system message is ``generic`` (Prompt Erasing); in the others it is
    the teacher's detailed instruction.

    Raises:
        ValueError: ``n < 1`` or ``erased`` outside [0, 1].
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0.0 <= erased <= 1.0:
        raise ValueError(f"erased (the share of erased examples) must lie in [0, 1], got {erased}")
    tokenizer = tokenizer or toy_tokenizer()
    rows = []
    lengths = torch.randint(0, len(LENGTHS), (n,), generator=gen)
    erase = torch.rand(n, generator=gen) < erased
    for k, e in zip(lengths.tolist(), erase.tolist(), strict=True):
        example = teacher_example(torch.randint(0, 10, (LENGTHS[k],), generator=gen).tolist())
        messages = erase_prompt(example, generic) if e else teacher_messages(example)
        ids, trained = training_ids(messages, tokenizer)
        rows.append((ids, masked_labels(ids[None], trained[None])[0]))
    t = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((n, t), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((n, t), IGNORE_INDEX, dtype=torch.long)
    for i, (ids, lab) in enumerate(rows):
        input_ids[i, : len(ids)], labels[i, : len(lab)] = ids, lab
    return input_ids, labels


def prompt_ids(digits: list[int], system: str, tokenizer: Any = None) -> torch.Tensor:
    """``(t,)`` ids of the prompt the student is asked: ``system``, the task, the assistant's header."""
    tokenizer = tokenizer or toy_tokenizer()
    user = teacher_example(digits).user
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    text = chatml(messages, add_generation_prompt=True)
    return torch.tensor([tokenizer.bos_token_id, *tokenizer.encode(text, add_special_tokens=False)])


@torch.no_grad()
def strategy_rates(
    model: LlamaLM, system: str, n: int, gen: torch.Generator, tokenizer: Any = None
) -> dict[int, float]:
    """Per list length: the share of ``n`` random prompts under ``system`` whose greedy first answer
    token is the teacher's strategy (a digit for a long list, ``answer`` for a short one)."""
    tokenizer = tokenizer or toy_tokenizer()
    answer_id = tokenizer.convert_tokens_to_ids("answer")
    model.eval()
    rates = {}
    for length in LENGTHS:
        digits = torch.randint(0, 10, (n, length), generator=gen).tolist()
        prompts = torch.stack([prompt_ids(d, system, tokenizer) for d in digits])  # (n, t)
        first = model(prompts)[:, -1].argmax(-1)  # (n,)
        says_answer = first == answer_id
        right = says_answer if length <= SHORT else ~says_answer
        rates[length] = right.float().mean().item()
    model.train()
    return rates


def train_student(config: ToyConfig, erased: float) -> tuple[LlamaLM, list[float]]:
    """A student trained from scratch on the teacher's answers, a share ``erased`` of them under the
    generic message; returns it and its loss at every step."""
    tokenizer = toy_tokenizer()
    torch.manual_seed(config.seed)
    model = LlamaLM(LlamaLMConfig(vocab_size=len(tokenizer), **config.model))
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed)
    ids, labels = make_pool(config.pool, gen, erased, config.generic, tokenizer)
    losses = []
    for _ in range(config.steps):
        batch = torch.randint(0, config.pool, (config.batch_size,), generator=gen)
        loss = causal_lm_loss(model(ids[batch]), labels[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model, losses


def told_rates(asked: dict[str, dict[int, float]]) -> dict[int, float]:
    """From a student's ``strategy_rate``: per list length, the rate under the instruction the teacher
    had for that length (``direct`` up to ``SHORT`` digits, ``step`` above)."""
    return {n: asked["direct" if n <= SHORT else "step"][n] for n in LENGTHS}


def run(config: ToyConfig | None = None, shares: tuple[float, ...] = (0.0, 1.0)) -> dict[str, Any]:
    """One student per share of erased examples, each asked under the generic message and under each
    of the teacher's instructions: strategy rates per list length, loss curves, seconds."""
    config = config or ToyConfig()
    start = time.perf_counter()
    out: dict[str, Any] = {"config": asdict(config), "students": {}}
    for share in shares:
        model, losses = train_student(config, share)
        asked = {}
        for label, system in (
            ("generic", config.generic),
            ("step", STEP_SYSTEM),
            ("direct", DIRECT_SYSTEM),
        ):
            gen = torch.Generator().manual_seed(config.seed + 1)  # the same prompts for all
            asked[label] = strategy_rates(model, system, config.eval_prompts, gen)
        out["students"][share] = {"losses": losses, "strategy_rate": asked}
    out["seconds"] = time.perf_counter() - start
    return out
