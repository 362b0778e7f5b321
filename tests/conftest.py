"""Shared fixtures: a fixed seed for every test, and the device/dtype axis of the parity tests.

Tolerances for parity with transformers (``torch.testing.assert_close``) come from the one policy in
:mod:`demos.parity` (``tolerance_for``), which the pages' parity cells use too, and every comparison
must pass with its margin: ``assert_close`` is called with half of each tolerance
(``demos.parity.MARGIN``), so that a result that passes on one CPU does not fail on another.
``atol`` is scaled by the largest magnitude in the reference tensor when that exceeds 1: a gradient
entry of 140 cannot be held to 1e-5 absolute, since fp32's own spacing there is ~1.5e-5. So "1e-5"
reads "within 1e-5 of the tensor's scale", and entries near zero, where cancellation lives, are
judged by it.

* float32, CPU or CUDA: ``atol = rtol = 1e-5`` (float32 with reductions, ~170 units of roundoff).
  Both sides run the same operations; what differs is summation order inside matmuls (ours may fuse
  or split differently), which moves fp32 results by a few ulps (~1e-7 relative) per op, far below
  1e-5. CUDA matmuls run in true fp32 here: TF32 is switched off for the test session
  (``allow_tf32 = False``), since TF32 keeps only 10 mantissa bits (~1e-3 relative) and would hide
  real bugs under noise.
* bfloat16: ``atol = rtol = 2e-2`` (bf16 keeps 8 significant bits, unit roundoff 2**-8 ~ 3.9e-3;
  one rounding of an intermediate in a different place shifts a value by up to one bf16 ulp, and a
  couple of such differences can stack through two layers). Gradients get ``atol = rtol = 5e-2``:
  they run back through every layer in bf16.
  (Measured so far, CPU and H100: 0 in bf16 for every Llama-style comparison, since both sides
  round at the same places. The tolerance leaves room for a component that does not. The H100
  figures come from results/gpu_parity.json, a run that predates the current test files: the
  appendix book/parity_report.ipynb lists what it no longer covers.)
* CUDA uses the CPU's tolerances for the same dtype; no test loosens them on CUDA. A test that
  must (a kernel that rounds elsewhere) states its tolerance and the reason next to it.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Threads that wait for work sleep instead of spinning: the tests that run at 2 threads (the
# conformance table, tests/test_parity.py) then cost the CPU time of 1 thread, where spinning
# threads on a shared machine cost 3.4 times as much (measured: 25.6 s against 7.5 s of CPU for the
# Llama and Mistral rows). Read by OpenMP when torch starts, so set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from demos.parity import MARGIN, tolerance_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded in tests
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

if torch.cuda.is_available():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

# One CPU thread per test process. The tensors here are tiny, so a second thread saves nothing, and
# when the other core is busy every multithreaded op waits for it (tests/toys/test_zephyr.py ran more
# than twice as long with two threads next to a CPU hog). `make check` uses both cores through two
# test processes instead (pytest -n 2); the lanes' measured times are in README.md.
torch.set_num_threads(1)


@dataclass(frozen=True)
class Setting:
    """Where and in which precision a parity test runs, and how close the two sides must be."""

    device: str
    dtype: torch.dtype
    atol: float
    rtol: float
    grad_atol: float
    grad_rtol: float

    def close(
        self, actual: torch.Tensor, expected: torch.Tensor, grad: bool = False, msg: str = ""
    ) -> None:
        """``assert_close`` with half this setting's tolerances (the margin, ``MARGIN``), ``atol``
        scaled by the tensor's largest magnitude if > 1.

        Fails on what ``assert_close`` alone would let through: an empty comparison, and a NaN or inf on
        either side (``assert_close`` takes inf == inf as equal, and one inf in ``expected`` would scale
        ``atol`` to inf for every other entry). Each comparison's error is also recorded (see
        ``PARITY_RESULTS`` below), inf when it is not finite, never 0.
        """
        prefix = f"{msg}: " if msg else ""
        assert isinstance(actual, torch.Tensor) and isinstance(expected, torch.Tensor), (
            f"{prefix}compare tensors, got {type(actual).__name__} and {type(expected).__name__}"
        )
        assert expected.numel() > 0, (
            f"{prefix}nothing compared: empty tensor {tuple(expected.shape)}"
        )
        for side, x in (("actual", actual), ("expected", expected)):
            if not torch.isfinite(x).all():
                RECORDER.add(math.inf, math.inf, math.inf, grad, math.inf)
                raise AssertionError(f"{prefix}{side} holds NaN or inf: no parity can be claimed")
        atol, rtol = (self.grad_atol, self.grad_rtol) if grad else (self.atol, self.rtol)
        peak = expected.detach().abs().max().item()
        scale = max(1.0, peak)
        if actual.shape == expected.shape:
            diff = (actual.detach().double() - expected.detach().double()).abs()
            err = diff.max().item()
            # the fraction of the tolerance used, element by element, as assert_close judges it
            bound = atol * scale + rtol * expected.detach().double().abs()
            used = (diff / bound).max().item() if atol > 0 else (0.0 if err == 0 else math.inf)
            RECORDER.add(err, err / scale, err / peak if peak > 0 else err, grad, used)
        atol, rtol = MARGIN * atol * scale, MARGIN * rtol  # pass with a margin: half the tolerance
        torch.testing.assert_close(
            actual, expected, atol=atol, rtol=rtol, msg=(lambda m: f"{msg}: {m}") if msg else None
        )


def _setting(device: str, dtype: torch.dtype) -> Setting:
    out = tolerance_for(dtype, "reductions").bound
    grad = tolerance_for(dtype, "gradients").bound
    return Setting(device, dtype, out, out, grad, grad)


SETTINGS = {
    "cpu-fp32": _setting("cpu", torch.float32),
    "cpu-bf16": _setting("cpu", torch.bfloat16),
    "cuda-fp32": _setting("cuda", torch.float32),
    "cuda-bf16": _setting("cuda", torch.bfloat16),
}


@pytest.fixture(scope="session")
def built_book() -> Path:
    """The book in ``_build/``, brought up to date first by ``scripts/build_book.py`` (``make book``).

    After ``make book`` (which ``make test`` runs first) that is a no-op: the script finds the build
    current and returns. Run alone, pytest builds what is missing or stale: notebooks whose code, or
    whose inputs (src/demos, tests, results), changed are executed again; a cell error or a Sphinx
    warning fails here.
    """
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_book.py")],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, (
        f"book build failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    )
    return ROOT / "_build"


@pytest.fixture(autouse=True)
def _seed(request: pytest.FixtureRequest) -> None:
    torch.manual_seed(0)
    RECORDER.current = request.node.nodeid


# ---- parity results file --------------------------------------------------------------------------
# With PARITY_RESULTS=path set, the session writes every parity comparison's measured error and each
# test's outcome to that JSON file (scripts/gpu_parity.sh uses this on a GPU machine). Errors are
# max |ours - reference| ("abs"), the same divided by max(1, max |reference|) ("scaled", the quantity
# the tolerances above bound), and divided by max |reference| ("rel", relative to the tensor's size).


@dataclass
class Recorder:
    current: str = ""
    errors: dict[str, dict[str, float]] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)

    def add(self, err: float, scaled: float, rel: float, grad: bool, used: float) -> None:
        """``used``: the largest fraction of the tolerance an element takes (``atol`` scaled plus
        ``rtol`` times the reference element), what the margin bounds by ``MARGIN``."""
        kind = "grad" if grad else "out"
        rec = self.errors.setdefault(self.current, {})
        for name, value in (("abs", err), ("scaled", scaled), ("rel", rel), ("used", used)):
            rec[f"{kind}_{name}"] = max(rec.get(f"{kind}_{name}", 0.0), value)


RECORDER = Recorder()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        RECORDER.outcomes[report.nodeid] = report.outcome


def _environment() -> dict:
    import transformers

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["cuda_runtime"] = torch.version.cuda
        try:
            smi = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
            env["driver"] = subprocess.run(
                smi, capture_output=True, text=True, timeout=30
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError) as error:
            env["driver"] = f"unknown ({error})"
    return env


def _summarise() -> list[dict]:
    """One row per (test function, setting): how many passed, and the largest errors measured."""
    rows: dict[tuple[str, str], dict] = {}
    for nodeid, outcome in RECORDER.outcomes.items():
        file_func, _, params = nodeid.partition("[")
        setting = next((s for s in SETTINGS if s in params), "-")
        row = rows.setdefault(
            (file_func, setting),
            {"test": file_func, "setting": setting, "passed": 0, "failed": 0, "skipped": 0},
        )
        row[outcome] = row.get(outcome, 0) + 1
        for key, value in RECORDER.errors.get(nodeid, {}).items():
            row[f"max_{key}"] = max(row.get(f"max_{key}", 0.0), value)
    for row in rows.values():
        s = SETTINGS.get(row["setting"])
        if s is not None:
            row["tolerance"] = {
                "atol": s.atol,
                "rtol": s.rtol,
                "grad_atol": s.grad_atol,
                "grad_rtol": s.grad_rtol,
            }
    return sorted(rows.values(), key=lambda r: (r["test"], r["setting"]))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get("PARITY_RESULTS")
    if not path:
        return
    counts = {
        k: sum(v == k for v in RECORDER.outcomes.values()) for k in ("passed", "failed", "skipped")
    }
    from parity_record import run_provenance  # book/parity_record.py (pythonpath)

    result = {
        "run": run_provenance(ROOT),  # the commit and date the appendix shows as "run at"
        "environment": _environment(),
        "exit_status": int(exitstatus),
        "counts": counts,
        "rows": _summarise(),
    }
    with open(path, "w") as f:
        json.dump(result, f, indent=1)


@pytest.fixture(params=list(SETTINGS), ids=list(SETTINGS))
def setting(request: pytest.FixtureRequest) -> Setting:
    """Every parity test runs on the CPU in fp32 and bf16, and on CUDA too when a GPU is present."""
    s = SETTINGS[request.param]
    if s.device == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA is not available on this machine")
    return s


@pytest.fixture(params=["cpu-fp32", "cuda-fp32"])
def fp32_device_setting(request: pytest.FixtureRequest) -> Setting:
    """fp32 on the CPU, and on CUDA when a GPU is present: for checks that compare exact tokens."""
    s = SETTINGS[request.param]
    if s.device == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA is not available on this machine")
    return s


@pytest.fixture
def fp32_setting() -> Setting:
    return SETTINGS["cpu-fp32"]
