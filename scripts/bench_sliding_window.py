"""Time and peak memory of sliding-window attention: masked (t x t scores) vs banded (t x (2W - 1) scores).

Usage:
    PYTHONPATH=src python scripts/bench_sliding_window.py [--lengths 1024 4096 16384] [--window 512]

How memory is measured (CPU): every (method, t) runs in a fresh child process. The child
builds q, k, v, resets the kernel's peak-RSS counter (``echo 5 > /proc/self/clear_refs``,
Linux), runs the attention once and reads ``VmHWM`` (peak resident set size) from
``/proc/self/status``. The table reports that peak minus the resident size just before the
call: the memory the attention itself took, as the operating system saw it. ``tracemalloc``
cannot see torch's allocations, hence this route. Next to it, the size of the largest
intermediate (the fp32 score tensor) is computed from the shapes, as a cross-check.
Time is the best of ``--repeats`` runs (one run for the masked form at the largest t).
On CUDA (``--device cuda``) memory is ``torch.cuda.max_memory_allocated`` instead.
"""

from __future__ import annotations

import argparse
import json

import torch
from benchmarking import MiB, measure, run_child

from demos.layers.attention import attention
from demos.layers.banded_attention import banded_attention


def run_one(method: str, t: int, window: int, heads: int, d: int, repeats: int, device: str):
    """Run in a child process: returns seconds and peak extra bytes for one attention call."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, heads, t, d, device=device) for _ in range(3))

    def call():
        if method == "masked":
            return attention(q, k, v, causal=True, window=window)
        return banded_attention(q, k, v, window=window)

    with torch.no_grad():
        return measure(call, device, repeats)


def largest_intermediate(method: str, t: int, window: int, heads: int) -> int:
    """Bytes of the fp32 score tensor: (1, h, t, t) masked, (1, h, t', 2W - 1) banded (t' = t rounded up to W)."""
    if method == "masked":
        return heads * t * t * 4
    padded = -(-t // window) * window
    return heads * padded * (2 * window - 1) * 4


def available_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384])
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # inside the fresh process
        method, t = args.child.split(":")
        result = run_one(
            method, int(t), args.window, args.heads, args.head_dim, args.repeats, args.device
        )
        print(json.dumps(result))
        return

    print(
        f"sliding-window attention, W = {args.window}, b = 1, h = g = {args.heads}, "
        f"d = {args.head_dim}, fp32, device = {args.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"{'t':>6} {'method':>7} {'time (s)':>9} {'peak (MiB)':>11} {'scores (MiB)':>13}")
    for t in args.lengths:
        for method in ("masked", "banded"):
            scores = largest_intermediate(method, t, args.window, args.heads)
            if args.device == "cpu" and 4 * scores > available_bytes():
                print(
                    f"{t:>6} {method:>7}   skipped: needs ~{4 * scores / MiB:,.0f} MiB "
                    f"(4 score-sized tensors), only {available_bytes() / MiB:,.0f} MiB available"
                )
                continue
            repeats = 1 if method == "masked" and t == max(args.lengths) else args.repeats
            argv = ["--child", f"{method}:{t}", "--window", str(args.window)]
            argv += ["--heads", str(args.heads), "--head-dim", str(args.head_dim)]
            argv += ["--repeats", str(repeats), "--device", args.device]
            r = run_child(__file__, argv, mmap_threshold=None)  # the environment's malloc
            print(
                f"{t:>6} {method:>7} {r['seconds']:>9.3f} {r['peak_bytes'] / MiB:>11.1f} "
                f"{scores / MiB:>13.1f}"
            )


if __name__ == "__main__":
    main()
