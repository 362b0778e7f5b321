"""Peak memory and time of one training step (forward + backward) with and without gradient checkpointing.

Usage:
    PYTHONPATH=src python scripts/bench_checkpointing.py [--every none 1 2 4 8] [--layers 8]
        [--length 512] [--batch 4] [--out results/bench_checkpointing.txt]

The model is our ``LlamaLM`` (demos.models.llama) with multi-head attention (g = h, as Vicuna and the
catalogue row ``llama-mha``) at ``--hidden``, ``--heads``, ``--layers``, PyTorch's default random
initialisation, fp32. ``every``: block ``i`` is checkpointed when ``i % every == 0``
(``demos.training.checkpointing.checkpointed_forward``, transformers' ``every_n_layers``); ``none``
keeps every activation.

How memory is measured (CPU): every case runs in a fresh child process (glibc's
``MALLOC_MMAP_THRESHOLD_`` fixed at 128 KiB, so that a freed tensor leaves the resident set), which
builds the model and the batch, runs one warm-up step, resets the kernel's peak-RSS counter (``echo 5
> /proc/self/clear_refs``, Linux), runs one forward and backward pass and reads ``VmHWM`` from
``/proc/self/status``; the table reports that peak minus the resident size just before the step (the
weights and the batch are already resident, the gradients are not: ``zero_grad(set_to_none=True)``).
Next to it, what ``demos.training.checkpointing.activation_bytes`` counts from
autograd's saved tensors: the bytes kept between the passes plus the most recomputed for one block.
Time is the best of ``--repeats`` steps, after one throwaway child process (on the shared 2-core build
machine the first child after a pause ran up to five times slower). On CUDA (``--device cuda``) memory is
``torch.cuda.max_memory_allocated`` instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from benchmarking import MiB, measure, run_child

from demos.models.llama import LlamaLM, LlamaLMConfig
from demos.training.checkpointing import activation_bytes, checkpointed_forward


def build(args: argparse.Namespace, device: str) -> tuple[LlamaLM, torch.Tensor]:
    torch.manual_seed(0)
    config = LlamaLMConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=args.hidden * 8 // 3,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.heads,  # multi-head attention, as Vicuna (row llama-mha)
    )
    model = LlamaLM(config).to(device)
    ids = torch.randint(0, args.vocab, (args.batch, args.length), device=device)
    return model, ids


def run_one(every: int | None, args: argparse.Namespace) -> dict:
    """In a child process: seconds and peak extra bytes of one forward + backward step."""
    model, ids = build(args, args.device)

    def step():
        checkpointed_forward(model, ids, every).float().logsumexp(-1).mean().backward()

    step()  # warm-up: one-time allocations (imports, thread pools, workspaces) are not the step's
    # the measured step allocates its gradients: zeroed (freed) before each call
    measured = measure(step, args.device, args.repeats, lambda: model.zero_grad(set_to_none=True))
    kept, recomputed = activation_bytes(model, ids, every)
    return {**measured, "kept": kept, "recomputed": recomputed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", nargs="+", default=["none", "1", "2", "4", "8"])
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=1000)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="results/bench_checkpointing.txt")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # inside the fresh process
        print(json.dumps(run_one(None if args.child == "none" else int(args.child), args)))
        return

    lines = [
        f"one training step (forward + backward), LlamaLM with {args.layers} layers, width "
        f"{args.hidden}, {args.heads} heads (g = h), b = {args.batch}, t = {args.length}, fp32, "
        f"device = {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "every: block i checkpointed when i % every == 0 (none: no checkpointing); peak: measured; "
        "kept + recomputed: counted from autograd's saved tensors",
        f"{'every':>8} {'time (s)':>9} {'peak (MiB)':>11} {'kept (MiB)':>11} "
        f"{'recomputed (MiB)':>17}",
    ]
    print("\n".join(lines))

    def child(every: str) -> dict:
        return run_child(__file__, [*sys.argv[1:], "--child", every])

    child(args.every[0])  # thrown away: the first child after a pause ran up to 5x slower here
    for every in args.every:
        r = child(every)
        lines.append(
            f"{every:>8} {r['seconds']:>9.3f} {r['peak_bytes'] / MiB:>11.1f} "
            f"{r['kept'] / MiB:>11.1f} {r['recomputed'] / MiB:>17.1f}"
        )
        print(lines[-1])
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
