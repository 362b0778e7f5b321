"""The Orca 2 chapter's toy run over several seeds, recorded to a results file.

For each seed and each share of erased examples, a student is trained from scratch on the toy
teacher's answers (``demos.toys.orca2``) and asked under the generic message and under the teacher's
instructions; the strategy rates per list length are stored, with their mean over the seeds.

Run: ``PYTHONPATH=src python scripts/orca2_run.py`` (about a minute on two CPU cores). Writes
``results/orca2_run.json``, which the chapter plots (a test fails if the file no longer matches
``ToyConfig``'s defaults and this script's ``SEEDS`` and ``SHARES``).
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from demos.toys.orca2 import LENGTHS, ToyConfig, run, told_rates

SEEDS = tuple(range(8))
SHARES = (0.0, 0.1, 1.0)


def main() -> None:
    start = time.perf_counter()
    config = ToyConfig()
    per_seed = {share: {"generic": [], "told": []} for share in SHARES}
    for seed in SEEDS:
        result = run(replace(config, seed=seed), shares=SHARES)
        for share in SHARES:
            asked = result["students"][share]["strategy_rate"]
            per_seed[share]["generic"].append([asked["generic"][n] for n in LENGTHS])
            per_seed[share]["told"].append([told_rates(asked)[n] for n in LENGTHS])
        print(f"seed {seed} done ({time.perf_counter() - start:.0f} s)")
    out = {
        "script": "scripts/orca2_run.py",
        "config": asdict(config),
        "seeds": list(SEEDS),
        "shares": list(SHARES),
        "lengths": list(LENGTHS),
        "per_seed": {str(share): rates for share, rates in per_seed.items()},
        "mean": {
            str(share): {
                kind: [sum(col) / len(col) for col in zip(*rows, strict=True)]
                for kind, rows in rates.items()
            }
            for share, rates in per_seed.items()
        },
        "seconds": time.perf_counter() - start,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu_threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(),
        },
    }
    path = Path(__file__).resolve().parents[1] / "results" / "orca2_run.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{out['seconds']:.0f} s; wrote {path}")
    for share, rates in out["mean"].items():
        print(f"erased {float(share):.0%}: generic {rates['generic']}, told {rates['told']}")


if __name__ == "__main__":
    main()
