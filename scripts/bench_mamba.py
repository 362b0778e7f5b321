"""Time the selective scan three ways: our sequential loop, our chunk-streamed parallel form,
transformers' fallback; and the peak memory each one adds.

Usage: PYTHONPATH=src python scripts/bench_mamba.py [--threads N] [--repeats 3]
       [--channels 64 128 1536] [--lengths 1024 4096 16384] [--max-wide-length 4096]
       [--sweep 32 64 128 256 512]

Inputs are random with the block's options on (D, z, delta_bias, softplus), b = 1, n = 16, fp32.
Each time is the best of ``--repeats`` runs after one warm-up, forward only, no autograd, all
three forms in the same process one after the other. Errors are ``max |form - sequential|``.

Peak memory: each form runs once more in a fresh subprocess (same threads), which builds the
inputs, resets the process's resident high-water mark (``/proc/self/clear_refs``), runs the form
once and reads ``VmHWM - VmRSS before`` from ``/proc/self/status``: the most resident memory the
call added (torch's CPU allocator takes its
memory from the C library, so the process's high-water mark sees it; tracemalloc would not).
The output ``y`` itself, b * e * l * 4 bytes, is printed next to it for scale.

``--sweep`` times the parallel form for several chunk sizes instead (how the default was chosen).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import torch

from demos.book import max_abs_diff
from demos.layers.selective_scan import (
    DEFAULT_CHUNK_SIZE,
    selective_scan,
    selective_scan_parallel,
)


def hf_scan(*args):
    from transformers.models.mamba.modeling_mamba import mamba_selective_scan

    return mamba_selective_scan(*args)  # positional: transformers names u and delta otherwise


FORMS = {"sequential": selective_scan, "parallel": selective_scan_parallel, "transformers": hf_scan}


def make_inputs(b: int, e: int, n: int, length: int) -> dict:
    g = torch.Generator().manual_seed(0)
    return dict(
        u=torch.randn(b, e, length, generator=g),
        delta=0.5 * torch.randn(b, e, length, generator=g),
        A=-torch.exp(torch.randn(e, n, generator=g)),
        B=torch.randn(b, n, length, generator=g),
        C=torch.randn(b, n, length, generator=g),
        D=torch.randn(e, generator=g),
        z=torch.randn(b, e, length, generator=g),
        delta_bias=0.3 * torch.randn(e, generator=g),
        delta_softplus=True,
    )


def best_time(fn, args: dict, repeats: int, **kwargs) -> tuple[float, torch.Tensor]:
    out = fn(*args.values(), **kwargs)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args.values(), **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, out


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def peak_child(form: str, b: int, e: int, n: int, length: int, threads: int) -> None:
    """Run in a subprocess: print the MiB of resident memory one call of ``form`` added."""
    torch.set_num_threads(threads)
    fn = FORMS[form]
    if form == "transformers":  # import before measuring: the import is not the scan's memory
        import transformers.models.mamba.modeling_mamba  # noqa: F401
    args = make_inputs(b, e, n, length)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark VmHWM to the current resident size (Linux)
    before = _status_kib("VmRSS")
    with torch.no_grad():
        fn(*args.values())
    print(json.dumps((_status_kib("VmHWM") - before) / 1024))


def peak_mib(form: str, b: int, e: int, n: int, length: int, threads: int) -> float:
    cmd = [sys.executable, __file__, "--peak-child", form, str(b), str(e), str(n), str(length)]
    cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--state", type=int, default=16, help="n, state size per channel")
    parser.add_argument("--channels", type=int, nargs="+", default=[64, 128, 1536])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384])
    parser.add_argument(
        "--max-wide-length", type=int, default=4096, help="longest l for e > 128 (e = 1536)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweep", type=int, nargs="*", default=None, help="chunk sizes to time")
    parser.add_argument("--peak-child", nargs=5, default=None, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    if opts.peak_child:
        form, *sizes = opts.peak_child
        peak_child(form, *map(int, sizes), torch.get_num_threads())
        return
    b, n = opts.batch, opts.state
    print(
        f"b={b} n={n}, fp32, forward only, best of {opts.repeats}; CPU: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads; "
        f"load average {os.getloadavg()[0]:.2f} at the start"
    )
    if opts.sweep:
        for e in opts.channels:
            for length in opts.lengths:
                args = make_inputs(b, e, n, length)
                with torch.no_grad():
                    cells = []
                    for size in opts.sweep:
                        t, _ = best_time(
                            selective_scan_parallel, args, opts.repeats, chunk_size=size
                        )
                        cells.append(f"{size}: {t * 1e3:.1f}ms")
                print(f"e={e} l={length} default={DEFAULT_CHUNK_SIZE} | " + ", ".join(cells))
        return
    print("peak = most resident memory one call adds (VmHWM - VmRSS before, fresh subprocess)")
    header = (
        f"{'e':>4} {'l':>5} {'chunk':>5} | {'sequential':>10} | {'parallel':>9} | "
        f"{'transformers':>12} | {'seq/par':>7} | {'hf/par':>6} | {'peak seq':>8} | "
        f"{'peak par':>8} | {'peak hf':>8} | {'y':>7} | {'err par':>8} | {'err hf':>8}"
    )
    print(header)
    print("-" * len(header))
    for e in opts.channels:
        for length in opts.lengths:
            if e > 128 and length > opts.max_wide_length:
                continue
            args = make_inputs(b, e, n, length)
            with torch.no_grad():
                times = {f: best_time(fn, args, opts.repeats) for f, fn in FORMS.items()}
            (t_seq, y_seq), (t_par, y_par), (t_hf, y_hf) = times.values()
            # max_abs_diff: shapes checked, float64, NaN/inf reported as such (never hidden by a max)
            err_par, err_hf = max_abs_diff(y_par, y_seq), max_abs_diff(y_hf, y_seq)
            del args, times, y_seq, y_par, y_hf
            peaks = [peak_mib(f, b, e, n, length, torch.get_num_threads()) for f in FORMS]
            y_mib = b * e * length * 4 / 2**20
            print(
                f"{e:>4} {length:>5} {DEFAULT_CHUNK_SIZE:>5} | {t_seq * 1e3:>8.1f}ms | "
                f"{t_par * 1e3:>7.1f}ms | {t_hf * 1e3:>10.1f}ms | {t_seq / t_par:>6.1f}x | "
                f"{t_hf / t_par:>5.1f}x | "
                + " | ".join(f"{p:>5.1f}MiB" for p in peaks)
                + f" | {y_mib:>4.1f}MiB | {err_par:>8.1e} | {err_hf:>8.1e}",
                flush=True,
            )
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
