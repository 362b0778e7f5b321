"""Time and peak memory of a long causal convolution through the FFT against masked softmax attention,
as the sequence grows: ``O(l log l)`` against ``O(l^2)``, and the length where they cross on this CPU.

Usage: PYTHONPATH=src python scripts/bench_hyena.py [--channels 64] [--repeats 3]
       [--lengths 16 32 ... 32768] [--max-quadratic-length 8192] [--threads N]

One token mixer over ``c`` channels, batch 1, fp32, forward only, no autograd:

* ``fft``: :func:`demos.layers.fft_conv.fft_causal_conv`, one filter as long as the sequence per channel;
* ``attention``: one head of width ``c``, ``softmax(Q K^T / sqrt(c) + causal mask) V`` written out, so
  the ``l x l`` score matrix is materialised (as a Transformer without a fused kernel does);
* ``direct``: :func:`demos.layers.fft_conv.direct_causal_conv` (``conv1d``), the same convolution as
  the FFT without it, also ``O(l^2)``.

Each time is the best of ``--repeats`` timed calls after one untimed call (``benchmarking.measure``),
on one torch thread by default: steadier on a shared CPU. Three calls of a few microseconds are few
on a loaded machine: the short lengths and single steps of the curve are noisy (the page prints the
load average and the ratio per doubling so that a reader can see it). The quadratic forms stop at
``--max-quadratic-length`` (the score matrix at 32K would take 4 GiB). Peak memory: each form runs
once more in a fresh child process (``scripts/benchmarking.py``: ``run_child``, ``measure``), the
resident memory one call adds. The crossover is where ``attention / fft`` passes 1, interpolated in
log-log between the two measured lengths around it. The fitted constants are ``seconds / l^2``
(attention) and ``seconds / (l log2 l)`` (FFT) at the longest length each ran.

Writes ``results/bench_hyena.json``, which the StripedHyena chapter plots. About 1 to 2 minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarking import MiB, measure, run_child  # noqa: E402

from demos.layers.fft_conv import direct_causal_conv, fft_causal_conv  # noqa: E402

FORMS = ("fft", "attention", "direct")
LENGTHS = [2**i for i in range(4, 16)]  # 16 ... 32768
OUT = Path(__file__).resolve().parents[1] / "results" / "bench_hyena.json"


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``(b, l, c)`` each: ``softmax(q k^T / sqrt(c) + causal mask) v`` with the scores materialised."""
    length = q.shape[1]
    scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])  # (b, l, l)
    mask = torch.ones(length, length, dtype=torch.bool).triu(1)
    return torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1) @ v  # (b, l, c)


def make_call(form: str, channels: int, length: int):
    g = torch.Generator().manual_seed(0)
    if form == "attention":
        q, k, v = (torch.randn(1, length, channels, generator=g) for _ in range(3))
        return lambda: masked_attention(q, k, v)
    u = torch.randn(1, channels, length, generator=g)
    h = torch.randn(channels, length, generator=g) / length
    conv = fft_causal_conv if form == "fft" else direct_causal_conv
    return lambda: conv(u, h)


def child(form: str, channels: int, length: int) -> None:
    """In a fresh process: print the peak MiB one call adds (and its time, unused)."""
    call = make_call(form, channels, length)
    with torch.no_grad():
        result = measure(call, "cpu", repeats=1)
    print(json.dumps({"peak_mib": result["peak_bytes"] / MiB}))


def crossover(lengths: list[int], fast: list[float], slow: list[float]) -> float | None:
    """The length where ``slow / fast`` first passes 1, interpolated in log-log; None if it never does
    (or is already past 1 at the first length)."""
    ratio = [s / f for f, s in zip(fast, slow, strict=True)]
    for i in range(1, len(ratio)):
        if ratio[i - 1] < 1 <= ratio[i]:
            x0, x1 = math.log(lengths[i - 1]), math.log(lengths[i])
            y0, y1 = math.log(ratio[i - 1]), math.log(ratio[i])
            return math.exp(x0 + (x1 - x0) * (0 - y0) / (y1 - y0))
    return None


def slope(lengths: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(seconds) against log(length) over the longest half of the points."""
    half = len(lengths) // 2
    xs = [math.log(n) for n in lengths[half:]]
    ys = [math.log(s) for s in seconds[half:]]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--lengths", type=int, nargs="+", default=LENGTHS)
    parser.add_argument("--max-quadratic-length", type=int, default=8192)
    parser.add_argument("--memory-from", type=int, default=1024, help="shortest l for peak memory")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    if opts.child:
        form, channels, length = opts.child
        child(form, int(channels), int(length))
        return
    start = time.perf_counter()
    load = os.getloadavg()[0]
    rows = []
    for length in sorted(opts.lengths):
        row: dict = {"length": length}
        for form in FORMS:
            if form != "fft" and length > opts.max_quadratic_length:
                continue
            with torch.no_grad():
                row[f"{form}_seconds"] = measure(
                    make_call(form, opts.channels, length), "cpu", opts.repeats
                )["seconds"]
            if length >= opts.memory_from:
                argv = ["--child", form, str(opts.channels), str(length)]
                argv += ["--threads", str(torch.get_num_threads())]
                row[f"{form}_peak_mib"] = run_child(__file__, argv)["peak_mib"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    both = [r for r in rows if "attention_seconds" in r]
    lengths = [r["length"] for r in both]
    fft = [r["fft_seconds"] for r in both]
    att = [r["attention_seconds"] for r in both]
    last_fft, last_att = rows[-1], both[-1]
    result = {
        "script": "scripts/bench_hyena.py",
        "setup": (
            f"b=1, c={opts.channels} channels (attention: one head of width {opts.channels}), fp32, "
            f"forward only, best of >= {opts.repeats} calls"
        ),
        "cpu": f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads",
        "torch": torch.__version__,
        "load_average_at_start": round(load, 2),
        "rows": rows,
        "crossover_length": crossover(lengths, fft, att),
        "slope_fft": slope([r["length"] for r in rows], [r["fft_seconds"] for r in rows]),
        "slope_attention": slope(lengths, att),
        "attention_seconds_per_l2": last_att["attention_seconds"] / last_att["length"] ** 2,
        "fft_seconds_per_l_log2_l": last_fft["fft_seconds"]
        / (last_fft["length"] * math.log2(last_fft["length"])),
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    opts.out.parent.mkdir(exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
