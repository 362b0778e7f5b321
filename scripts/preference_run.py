"""The Zephyr chapter's end-to-end preference-tuning run on the CPU, recorded to a results file.

SFT a tiny model on the toy copy/reverse task, then DPO (frozen reference), "DPO without a reference"
and ORPO (no reference) from the SFT model, and ORPO from the untrained model; see
``demos.toys.zephyr`` for the task and the logged numbers.

Run: ``PYTHONPATH=src python scripts/preference_run.py`` (about 30 s on two CPU cores). Writes
``results/preference_run.json``, which the chapter plots (it reruns the same run if the file is missing).
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

from demos.toys.zephyr import ToyConfig, run_all


def main() -> None:
    result = run_all(ToyConfig(), progress=True)
    result["script"] = "scripts/preference_run.py"
    result["environment"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
    }
    out = Path(__file__).resolve().parents[1] / "results" / "preference_run.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{result['seconds']:.1f} s; wrote {out}")
    for name, row in result["final"].items():
        print(
            f"{name:>15}: held-out preference accuracy {row['pref_acc']:.3f}, "
            f"greedy reversal rate {row['reversal_rate']:.3f}, chosen log-prob "
            f"{row['chosen_logp']:.2f}, rejected log-prob {row['rejected_logp']:.2f}"
        )


if __name__ == "__main__":
    main()
