"""The chapter helpers report parity honestly."""

from __future__ import annotations

import pytest
import torch

from demos.book import max_abs_diff, parity_report


def test_parity_report_passes_and_fails_at_the_tolerance():
    a = torch.zeros(3)
    assert parity_report({"x": (a, a + 1e-6)}, tolerance=1e-5).endswith("(tolerance 1e-05)")
    assert "PARITY OK" in parity_report({"x": (a, a + 1e-6)}, tolerance=1e-5)
    report = parity_report({"x": (a, a), "y": (a, a + 1e-3)}, tolerance=1e-5)
    assert "PARITY FAILED" in report and "1.000e-03" in report


def test_max_abs_diff_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shapes differ"):
        max_abs_diff(torch.zeros(2), torch.zeros(3))
