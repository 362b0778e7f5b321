"""Peak memory and time of causal attention: masked (a t x t score matrix) vs tiled (online softmax).

Usage:
    PYTHONPATH=src python scripts/bench_tiled_attention.py [--lengths 1024 2048 4096 8192]
        [--block-size 64] [--block-sizes 32 64 128 256 512 1024] [--knob-length 2048]
        [--out results/bench_tiled_attention.txt]

Two tables. The first grows the length t (queries = keys = t, causal, one forward pass, no autograd)
for ``demos.layers.attention.attention`` (masked) and ``demos.layers.tiled_attention.tiled_attention``
at ``--block-size``. The second fixes t at ``--knob-length`` and varies the block size (the Vicuna
chapter's knob). The tiled form is a Python loop over blocks, so on a CPU it is slower than one
large matrix product; its time says how many small products it runs, not how fast FlashAttention is.

How memory is measured (CPU): as in scripts/bench_sliding_window.py, every case runs in a fresh child
process, which builds q, k, v, runs the attention once to warm up, resets the kernel's peak-RSS
counter (``echo 5 > /proc/self/clear_refs``, Linux), runs it again and reads ``VmHWM`` from
``/proc/self/status``. glibc's ``MALLOC_MMAP_THRESHOLD_`` is fixed at 128 KiB in the child, so that
every tensor larger than that is unmapped when freed and the warm-up's memory does not stay
resident to be reused unseen; the table reports that peak minus the resident size just before the call.
Next to it, the size of one fp32 score tensor computed from the shapes: ``(b, h, t, t)`` for the
masked form, one ``(b, h, block, block)`` tile for the tiled one. Time is the best of ``--repeats``
runs, after one throwaway child process (on the shared 2-core build machine the first child after a
pause ran up to five times slower); times there still vary between runs of the script, peaks do not.
On CUDA (``--device cuda``) memory is ``torch.cuda.max_memory_allocated`` instead.
The forward pass only: under autograd our tiled version keeps every tile for the backward pass.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from benchmarking import MiB, measure, run_child

from demos.layers.attention import attention
from demos.layers.tiled_attention import tiled_attention


def run_one(method: str, t: int, block: int, heads: int, d: int, repeats: int, device: str):
    """Run in a child process: seconds and peak extra bytes for one causal attention call."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, heads, t, d, device=device) for _ in range(3))

    def call():
        if method == "masked":
            return attention(q, k, v, causal=True)
        return tiled_attention(q, k, v, causal=True, block_size=block)

    with torch.no_grad():
        call()  # warm-up: one-time allocations (thread pools, workspaces) are not the call's
        return measure(call, device, repeats)


def score_bytes(method: str, t: int, block: int, heads: int) -> int:
    """Bytes of one fp32 score tensor: (1, h, t, t) masked; one (1, h, block, block) tile tiled."""
    side = t if method == "masked" else min(block, t)
    return heads * side * side * 4


def child(method: str, t: int, block: int, args: argparse.Namespace) -> dict:
    argv = ["--child", f"{method}:{t}:{block}", "--heads", str(args.heads)]
    argv += [
        "--head-dim",
        str(args.head_dim),
        "--repeats",
        str(args.repeats),
        "--device",
        args.device,
    ]
    return run_child(__file__, argv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--block-sizes", type=int, nargs="+", default=[32, 64, 128, 256, 512, 1024])
    parser.add_argument("--knob-length", type=int, default=2048)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="results/bench_tiled_attention.txt")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # inside the fresh process
        method, t, block = args.child.split(":")
        result = run_one(
            method, int(t), int(block), args.heads, args.head_dim, args.repeats, args.device
        )
        print(json.dumps(result))
        return

    lines = [
        f"causal attention, one forward pass (no autograd), b = 1, h = g = {args.heads}, "
        f"d = {args.head_dim}, fp32, device = {args.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "",
        f"peak memory and time as the length grows (tiled: block_size = {args.block_size})",
        f"{'t':>6} {'method':>7} {'time (s)':>9} {'peak (MiB)':>11} {'scores (MiB)':>13}",
    ]
    print("\n".join(lines))
    child("masked", min(args.lengths), args.block_size, args)  # thrown away (see the docstring)
    for t in args.lengths:
        for method in ("masked", "tiled"):
            r = child(method, t, args.block_size, args)
            scores = score_bytes(method, t, args.block_size, args.heads)
            lines.append(
                f"{t:>6} {method:>7} {r['seconds']:>9.3f} {r['peak_bytes'] / MiB:>11.1f} "
                f"{scores / MiB:>13.2f}"
            )
            print(lines[-1])
    t = args.knob_length
    lines += ["", f"the knob: block size at t = {t} (tiled)"]
    lines.append(f"{'block':>6} {'time (s)':>9} {'peak (MiB)':>11} {'tile (MiB)':>11}")
    print("\n".join(lines[-3:]))
    for block in args.block_sizes:
        r = child("tiled", t, block, args)
        lines.append(
            f"{block:>6} {r['seconds']:>9.3f} {r['peak_bytes'] / MiB:>11.1f} "
            f"{score_bytes('tiled', t, block, args.heads) / MiB:>11.2f}"
        )
        print(lines[-1])
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
