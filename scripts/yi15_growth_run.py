"""The Yi-1.5 chapter's continued-pretraining run on the CPU, recorded to a results file.

A tiny Llama (2 layers) pretrained on the toy copy task, then continued three ways on the same
batches: as it is, grown by depth up-scaling (layer 1 copied: 3 layers), and a 3-layer model from
scratch (``demos.toys.yi15``). Records the held-out copy loss every 10 steps of each run.

Run: ``PYTHONPATH=src python scripts/yi15_growth_run.py`` (600 steps of 32 x 32 tokens on one
thread: about a minute on a busy shared CPU). Writes ``results/yi15_growth_run.json``, which the
chapter plots (it runs a shorter version if the file is missing).
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

from demos.toys.yi15 import GrowthConfig, run


def main() -> None:
    torch.set_num_threads(1)  # tiny matmuls: more threads only wait for each other
    result = run(GrowthConfig())
    result["script"] = "scripts/yi15_growth_run.py"
    result["environment"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
    }
    out = Path(__file__).resolve().parents[1] / "results" / "yi15_growth_run.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{result['seconds']:.1f} s; wrote {out}")
    for name, history in result["continued"].items():
        print(f"{name:>8}: held-out copy loss {history[0]['eval_copy_loss']:.2f} -> "
              f"{history[-1]['eval_copy_loss']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
