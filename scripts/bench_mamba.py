"""Time the selective scan three ways: our sequential loop, our chunk-parallel form, transformers' fallback.

Usage: PYTHONPATH=src python scripts/bench_mamba.py [--batch 1] [--channels 64] [--state 16]
       [--threads N] [--repeats 5]

Inputs are random with the block's options on (D, z, delta_bias, softplus). Each time is the
best of ``--repeats`` runs after one warm-up, forward only, no autograd. Errors are
``max |form - sequential|`` over the output; "rel" divides by ``max |sequential|``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
from transformers.models.mamba.modeling_mamba import mamba_selective_scan

from demos.book import max_abs_diff
from demos.layers.selective_scan import selective_scan, selective_scan_parallel


def best_time(fn, args: dict, repeats: int) -> tuple[float, torch.Tensor]:
    out = fn(*args.values())  # warm-up; positional, since transformers names u and delta otherwise
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args.values())
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--channels", type=int, default=64, help="e, channels of the scan")
    parser.add_argument("--state", type=int, default=16, help="n, state size per channel")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 4096])
    opts = parser.parse_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    torch.manual_seed(0)
    b, e, n = opts.batch, opts.channels, opts.state
    print(
        f"b={b} e={e} n={n}, fp32, CPU: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.1f} (other jobs on the machine slow every column)"
    )
    header = (
        f"{'l':>5} | {'sequential':>10} | {'parallel':>9} | {'transformers':>12} | "
        f"{'seq/par':>7} | {'hf/par':>6} | {'max err par':>11} | {'rel':>7} | {'max err hf':>10}"
    )
    print(header)
    print("-" * len(header))
    for length in opts.lengths:
        args = dict(
            u=torch.randn(b, e, length),
            delta=0.5 * torch.randn(b, e, length),
            A=-torch.exp(torch.randn(e, n)),
            B=torch.randn(b, n, length),
            C=torch.randn(b, n, length),
            D=torch.randn(e),
            z=torch.randn(b, e, length),
            delta_bias=0.3 * torch.randn(e),
            delta_softplus=True,
        )
        with torch.no_grad():
            t_seq, y_seq = best_time(selective_scan, args, opts.repeats)
            t_par, y_par = best_time(selective_scan_parallel, args, opts.repeats)
            t_hf, y_hf = best_time(mamba_selective_scan, args, opts.repeats)
        # max_abs_diff: shapes checked, float64, NaN/inf reported as such (never hidden by a max)
        err_par = max_abs_diff(y_par, y_seq)
        err_hf = max_abs_diff(y_hf, y_seq)
        rel = err_par / y_seq.abs().max().item()
        print(
            f"{length:>5} | {t_seq * 1e3:>8.1f}ms | {t_par * 1e3:>7.1f}ms | {t_hf * 1e3:>10.1f}ms | "
            f"{t_seq / t_par:>6.1f}x | {t_hf / t_par:>5.1f}x | {err_par:>11.2e} | {rel:>7.1e} | "
            f"{err_hf:>10.2e}"
        )


if __name__ == "__main__":
    main()
