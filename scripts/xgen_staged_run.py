"""The XGen chapter's staged training run on the CPU, recorded to a results file.

A tiny Llama trained on the toy copy task at lengths 16, 32 then 64, with XGen's 8 : 4 : 3 split of
tokens between the stages (``demos.toys.xgen``): the loss curve, the tokens per second of each
stage and the copy loss at every length after each stage.

Run: ``PYTHONPATH=src python scripts/xgen_staged_run.py`` (750 steps of 1,024 tokens: under 30 s on two idle CPU cores,
longer on a shared machine, whose load the recorded tokens/s then include). Writes
``results/xgen_staged_run.json``, which the chapter plots (it reruns the same run if the file is
missing). Timing belongs here, never in a test: tokens/s depends on the machine and its load.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

from demos.toys.xgen import StagedConfig, run


def main() -> None:
    result = run(StagedConfig(), progress=True)
    result["script"] = "scripts/xgen_staged_run.py"
    result["environment"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
    }
    out = Path(__file__).resolve().parents[1] / "results" / "xgen_staged_run.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{result['seconds']:.1f} s; wrote {out}")
    for stage in result["stages"]:
        losses = ", ".join(f"L={k}: {v:.3f}" for k, v in stage["eval_copy_loss"].items())
        print(
            f"length {stage['length']:>3}: {stage['tokens_per_second']:>9,.0f} tokens/s; "
            f"copy loss after the stage {losses}"
        )


if __name__ == "__main__":
    main()
