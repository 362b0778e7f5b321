"""What the benchmark scripts share: one call's peak memory and its best time, on the CPU or CUDA.

``measure(call, device, repeats, before_each=None)`` runs ``call()`` once to measure its peak memory
above what was allocated before it (CUDA: the allocator's peak; CPU: the resident set's high-water
mark, ``VmHWM``, reset through ``/proc/self/clear_refs``), then ``repeats`` times for the best wall
time. Linux only on the CPU (it reads ``/proc/self``). Each script runs every measurement in a fresh
child process, so one measurement's allocations do not hide the next one's peak.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import torch

MiB = 2**20
# glibc serves blocks above this size with mmap and unmaps them when freed, so the resident size
# follows the live tensors; setting it also stops glibc from raising it after a free (which would keep
# freed memory resident and hide a second call's peak inside the first's).
MMAP_THRESHOLD = 128 * 1024


def run_child(script: str, argv: list[str], mmap_threshold: int | None = MMAP_THRESHOLD) -> dict:
    """Run ``script`` again in a fresh Python process with ``argv`` (which asks it for one
    measurement) and return the JSON object its last line of output prints. ``mmap_threshold``:
    glibc's ``MALLOC_MMAP_THRESHOLD_`` in the child (``None``: the environment's own)."""
    env = dict(os.environ)
    if mmap_threshold is not None:
        env["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)
    out = subprocess.run(
        [sys.executable, script, *argv], capture_output=True, text=True, check=True, env=env
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def rss_kib(field: str) -> int:
    """``VmRSS`` or ``VmHWM`` of this process, in KiB (``/proc/self/status``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(
    call: Callable[[], object],
    device: str,
    repeats: int,
    before_each: Callable[[], None] | None = None,
) -> dict[str, float]:
    """``{"seconds": best of repeats, "peak_bytes": one call's peak above its start}``; ``before_each``
    runs before every call, outside the measurement (e.g. ``model.zero_grad``)."""
    prepare = before_each or (lambda: None)
    prepare()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        call()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        before = rss_kib("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
        call()
        peak = (rss_kib("VmHWM") - before) * 1024
    times = []
    for _ in range(repeats):
        prepare()
        start = time.perf_counter()
        call()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return {"seconds": min(times), "peak_bytes": peak}
