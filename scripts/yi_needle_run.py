"""The Yi chapter's needle-in-a-haystack run: a tiny Llama trained to retrieve a key-value needle.

Trains ``demos.toys.yi``'s model twice, with Yi's RoPE base (5e6) and with Llama's (1e4), on
contexts of 16 to 64 tokens, then runs the harness (``demos.eval.needle``) over lengths 16 to 1,024
and five depths. Run: ``PYTHONPATH=src python scripts/yi_needle_run.py`` (400 steps of 32 contexts
per model: under 30 s per model on two idle CPU cores, minutes on a loaded one; the file records the
seconds); writes
``results/yi_needle_run.json``, which the chapter plots (it reruns a short version if the file is
missing; a test fails if the file no longer matches ``NeedleToyConfig``'s defaults).
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

from demos.toys.yi import NeedleToyConfig, run

THETAS = (5e6, 1e4)  # Yi's RoPE base, and Llama 2's


def main() -> None:
    runs = {}
    for theta in THETAS:
        config = NeedleToyConfig()
        config.model["rope_theta"] = theta
        runs[f"{theta:g}"] = run(config)
        print(f"rope_theta {theta:g}: {runs[f'{theta:g}']['seconds']:.1f} s")
    result = {
        "script": "scripts/yi_needle_run.py",
        "runs": runs,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu_threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(),
        },
    }
    out = Path(__file__).resolve().parents[1] / "results" / "yi_needle_run.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
