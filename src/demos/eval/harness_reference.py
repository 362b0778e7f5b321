"""lm-evaluation-harness, driven offline: the reference our scorers are compared with.

Three things the tests and the chapters need and nothing downloads:

- a byte-level BPE tokenizer trained on the spot with the ``tokenizers`` library, wrapped as a
  transformers ``PreTrainedTokenizerFast``, with or without a BOS token;
- ``HFLM`` (the harness's transformers backend) around a model instance we built, called on
  ``Instance`` requests exactly as ``lm_eval.evaluator`` calls it;
- a harness task (``ConfigurableTask``) built from the task's own yaml file in the installed
  package, with our illustrative items as its dataset (``custom_dataset``), so that its prompt
  assembly (``fewshot_context``), its requests (``construct_requests``) and its metrics
  (``process_results``) are the harness's own code.

Reference implementation: lm-eval==0.4.13, ``lm_eval/models/huggingface.py::HFLM``,
``lm_eval/api/instance.py::Instance``, ``lm_eval/api/task.py::ConfigurableTask``,
``lm_eval/tasks/_yaml_loader.py::load_yaml``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

BOS, EOS = "<s>", "</s>"


def train_tokenizer(texts: Iterable[str], vocab_size: int = 400, bos: bool = True) -> Any:
    """A byte-level BPE tokenizer trained on ``texts`` (GPT-2 style: a space is glued to the word
    after it), as a transformers ``PreTrainedTokenizerFast``.

    Args:
        texts: the training text.
        vocab_size: the target vocabulary, special tokens included.
        bos: prepend ``<s>`` to every encoding, as Llama's tokenizer does; without it the tokenizer
            has no BOS token at all (GPT-2 and Pythia style) and the harness falls back to EOS.
    """
    return _train_tokenizer(tuple(texts), vocab_size, bos)


@functools.lru_cache(maxsize=8)
def _train_tokenizer(texts: tuple[str, ...], vocab_size: int, bos: bool) -> Any:
    """Trained once per (texts, vocab_size, bos): BPE training is deterministic."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    if bos:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A",
            pair=f"{BOS} $A {BOS} $B",
            special_tokens=[(BOS, tok.token_to_id(BOS))],
        )
        return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS)


@contextlib.contextmanager
def _quiet():
    """Keep the harness's progress bars and warnings off a page."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    os.environ.setdefault("TQDM_DISABLE", "1")
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logging.disable(previous)


def hflm(model: Any, tokenizer: Any, batch_size: int = 1, **kwargs: Any) -> Any:
    """lm-eval's ``HFLM`` around a transformers model instance, on the model's device."""
    with _quiet():
        from lm_eval.models.huggingface import HFLM

        device = str(next(model.parameters()).device)
        return HFLM(
            pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device, **kwargs
        )


def instances(pairs: Sequence[tuple[str, str]], task: str = "demo") -> list[Any]:
    """``(context, continuation)`` pairs as the harness's ``Instance`` loglikelihood requests."""
    from lm_eval.api.instance import Instance

    return [
        Instance("loglikelihood", doc={}, arguments=tuple(p), idx=i, metadata=(task, 0, 1))
        for i, p in enumerate(pairs)
    ]


def harness_loglikelihood(
    model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], **kwargs: Any
) -> list[tuple[float, bool]]:
    """``HFLM(...).loglikelihood`` on ``pairs``: the harness's ``(log-probability, is_greedy)``."""
    lm = hflm(model, tokenizer, **kwargs)
    with _quiet():
        return [tuple(r) for r in lm.loglikelihood(instances(pairs), disable_tqdm=True)]


def task_yaml(name: str) -> Path:
    """The installed harness's yaml file of task ``name`` (``arc_easy``, ``mmlu_anatomy``, ...)."""
    import lm_eval

    tasks = Path(lm_eval.__file__).parent / "tasks"
    special = {
        "arc_easy": "arc/arc_easy.yaml",
        "arc_challenge": "arc/arc_challenge.yaml",
        "hellaswag": "hellaswag/hellaswag.yaml",
        "truthfulqa_mc1": "truthfulqa/truthfulqa_mc1.yaml",
        "truthfulqa_mc2": "truthfulqa/truthfulqa_mc2.yaml",
        "winogrande": "winogrande/default.yaml",
    }
    if name in special:
        return tasks / special[name]
    if name.startswith("mmlu_"):
        return tasks / "mmlu" / "default" / f"{name}.yaml"
    raise ValueError(f"no offline harness task named {name!r}; known: {sorted(special)} + mmlu_*")


def task_config(name: str) -> dict:
    """The harness's configuration of task ``name`` as a dict (its yaml with includes resolved)."""
    with _quiet():
        from lm_eval.tasks._yaml_loader import load_yaml

        return load_yaml(task_yaml(name))


def harness_task(
    name: str, docs: Sequence[dict], fewshot_docs: Sequence[dict] | None = None, **overrides: Any
) -> Any:
    """The harness's ``ConfigurableTask`` for ``name``, with ``docs`` as every split's rows.

    Args:
        name: a task name (:func:`task_yaml`).
        docs: rows in the data set's own format (the Hugging Face columns the yaml reads).
        fewshot_docs: rows for the training/dev split the shots are drawn from (default ``docs``).
        overrides: config keys to replace (e.g. ``fewshot_config={"sampler": "first_n"}``).
    """
    import datasets
    from lm_eval.api.task import ConfigurableTask

    datasets.disable_progress_bars()
    config = task_config(name)
    shots = list(fewshot_docs if fewshot_docs is not None else docs)
    splits = {"train": shots, "dev": shots, "validation": list(docs), "test": list(docs)}
    data = datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in splits.items()})
    config.update(custom_dataset=lambda **_: data, **overrides)
    with _quiet():
        return ConfigurableTask(config=config)


def harness_scores(task: Any, doc: dict, results: Sequence[tuple[float, bool]]) -> dict:
    """``task.process_results(doc, results)``: the harness's per-question metrics."""
    with _quiet():
        return task.process_results(doc, list(results))
