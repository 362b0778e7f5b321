"""The real evaluation runs of the evaluation chapters, behind a switch the learner sets.

Each chapter scores a tiny model here, on the CPU, against lm-evaluation-harness's own code. Scoring a
released model is the same harness on its command line: :func:`lm_eval` prints that command, or runs
it with this kernel's Python when ``run=True`` (which downloads the model and the data set: gigabytes,
and a GPU for any speed). ``run=False`` downloads nothing, so "Run All" in Jupyter or Colab completes.

Reference: lm-evaluation-harness 0.4.13, ``lm_eval/__main__.py`` (``lm-eval run --model hf
--model_args pretrained=... --tasks ... --num_fewshot ... --batch_size ...``).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from numbers import Integral


def _check_name(what: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} ({value!r}) must be a non-empty string")


NOT_RUN = "(not run: set the switch at the top of this cell to True to run it)"


def lm_eval_commands(
    model: str, shots: dict[str, int], batch_size: str = "auto"
) -> list[list[str]]:
    """The harness's arguments (after ``lm-eval``) scoring ``model`` on each task with its shots.

    Args:
        model: a Hugging Face Hub id, e.g. ``"meta-llama/Llama-2-7b-hf"``.
        shots: task name -> number of few-shot examples (``{"arc_challenge": 25}``), at least one.
        batch_size: the harness's ``--batch_size`` (``"auto"`` or a positive integer as a string).

    Raises:
        ValueError: an empty model or task name, no tasks, a shot count that is not an integer >= 0,
            or a batch size that is neither ``"auto"`` nor a positive integer.
    """
    _check_name("model", model)
    if not isinstance(shots, dict) or not shots:
        raise ValueError(f"shots ({shots!r}) must be a non-empty dict of task name -> shot count")
    for task, k in shots.items():
        _check_name("task name", task)
        if isinstance(k, bool) or not isinstance(k, Integral) or k < 0:
            raise ValueError(f"shots[{task!r}] ({k!r}) must be an integer >= 0")
    if not (
        batch_size == "auto"
        or (isinstance(batch_size, str) and batch_size.isdigit() and int(batch_size) > 0)
    ):
        raise ValueError(
            f"batch_size ({batch_size!r}) must be 'auto' or a positive integer as a string"
        )
    return [
        ["run", "--model", "hf", "--model_args", f"pretrained={model}", "--tasks", task]
        + ["--num_fewshot", str(int(k)), "--batch_size", batch_size]
        for task, k in shots.items()
    ]


def lm_eval(model: str, shots: dict[str, int], *, run: bool, batch_size: str = "auto") -> None:
    """Print the harness's command for each task, or run it (``run=True``) with this kernel's Python.

    Raises:
        ValueError: ``run`` is not a bool, or as :func:`lm_eval_commands`.
        subprocess.CalledProcessError: a run that fails (the harness prints why).
    """
    if not isinstance(run, bool):
        raise ValueError(f"run ({run!r}) must be True or False")
    for command in lm_eval_commands(model, shots, batch_size):
        if run:
            subprocess.run([sys.executable, "-m", "lm_eval", *command], check=True)
        else:
            print("lm-eval " + shlex.join(command))
    if not run:
        print(NOT_RUN)
