"""Shared fixtures: a fixed seed for every test, and the device/dtype axis of the parity tests.

Tolerances for parity with transformers (``torch.testing.assert_close``). ``atol`` is scaled by
the largest magnitude in the reference tensor when that exceeds 1: a gradient entry of 140 cannot
be held to 1e-5 absolute, since fp32's own spacing there is ~1.5e-5. So "1e-5" reads "within
1e-5 of the tensor's scale", and entries near zero, where cancellation lives, are judged by it.

* float32, CPU or CUDA: ``atol = rtol = 1e-5``. Both sides run the same operations; what
  differs is summation order inside matmuls (ours may fuse or split differently), which moves
  fp32 results by a few ulps (~1e-7 relative) per op, far below 1e-5. CUDA matmuls run in
  true fp32 here: TF32 is switched off for the test session (``allow_tf32 = False``), since
  TF32 keeps only 10 mantissa bits (~1e-3 relative) and would hide real bugs under noise.
* bfloat16: ``atol = rtol = 2e-2``. bf16 keeps 8 mantissa bits (unit roundoff 2**-9 ~ 2e-3);
  one rounding of an intermediate in a different place shifts a value by up to one bf16 ulp,
  ~4e-3 relative, and a couple of such differences can stack through two layers.
  Gradients get ``atol = rtol = 5e-2``: they run back through every layer in bf16.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded in tests
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

if torch.cuda.is_available():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


@dataclass(frozen=True)
class Setting:
    """Where and in which precision a parity test runs, and how close the two sides must be."""

    device: str
    dtype: torch.dtype
    atol: float
    rtol: float
    grad_atol: float
    grad_rtol: float

    def close(self, actual: torch.Tensor, expected: torch.Tensor, grad: bool = False, msg: str = "") -> None:
        """``assert_close`` with this setting's tolerances, ``atol`` scaled by the tensor's largest magnitude if > 1."""
        atol, rtol = (self.grad_atol, self.grad_rtol) if grad else (self.atol, self.rtol)
        atol = atol * max(1.0, expected.detach().abs().max().item())
        torch.testing.assert_close(
            actual, expected, atol=atol, rtol=rtol, msg=(lambda m: f"{msg}: {m}") if msg else None
        )


SETTINGS = {
    "cpu-fp32": Setting("cpu", torch.float32, 1e-5, 1e-5, 1e-5, 1e-5),
    "cpu-bf16": Setting("cpu", torch.bfloat16, 2e-2, 2e-2, 5e-2, 5e-2),
    "cuda-fp32": Setting("cuda", torch.float32, 1e-5, 1e-5, 1e-5, 1e-5),
    "cuda-bf16": Setting("cuda", torch.bfloat16, 2e-2, 2e-2, 5e-2, 5e-2),
}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


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
