"""Every trap of the "Nearly right" appendix is run: the right version meets the tolerance against
the reference, the wrong version exceeds it, and both numbers are finite."""

from __future__ import annotations

import math

import pytest

from demos.traps import Measured, all_traps

TRAPS = all_traps()


def test_traps_are_collected():
    if not TRAPS:
        pytest.skip("no chapter has registered a trap yet")
    assert len({(t.chapter, t.title) for t in TRAPS}) == len(TRAPS), "two traps share a title"


@pytest.mark.parametrize("trap", TRAPS, ids=[f"{t.chapter}: {t.title}" for t in TRAPS])
def test_trap_right_agrees_and_wrong_diverges(trap):
    measured = trap.measure()
    assert isinstance(measured, Measured)
    assert math.isfinite(measured.right_error) and math.isfinite(measured.wrong_error)
    assert measured.tolerance > 0
    assert measured.right_error <= measured.tolerance, trap.title
    assert measured.wrong_error > measured.tolerance, f"{trap.title}: the wrong version agrees"
