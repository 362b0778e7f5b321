"""Every trap of the "Nearly right" appendix is run: the right version meets the tolerance against
the reference, the wrong version exceeds it, and both numbers are finite."""

from __future__ import annotations

import math

import pytest
import torch

from demos.traps import Measured, all_traps

TRAPS = all_traps()


def test_traps_are_collected():
    if not TRAPS:
        pytest.skip("no chapter has registered a trap yet")
    assert len({(t.chapter, t.title) for t in TRAPS}) == len(TRAPS), "two traps share a title"


@pytest.mark.parametrize("trap", TRAPS, ids=[f"{t.chapter}: {t.title}" for t in TRAPS])
def test_trap_right_agrees_and_wrong_diverges(trap):
    measured = trap.measure()  # under conftest's global seed 0
    assert isinstance(measured, Measured)
    assert math.isfinite(measured.right_error) and math.isfinite(measured.wrong_error)
    assert measured.tolerance > 0
    assert measured.right_error <= measured.tolerance, trap.title
    assert measured.wrong_error > measured.tolerance, f"{trap.title}: the wrong version agrees"
    # seeded inside: the same numbers whatever the caller's global seed, so a page shows what the
    # tests measured (this was test_trap_chapters.py's test_measure_is_seeded_inside, which measured
    # every trap twice more)
    torch.manual_seed(12345)
    assert trap.measure() == measured, f"{trap.title}: measure() depends on the global seed"


@pytest.mark.parametrize("trap", TRAPS, ids=[f"{t.chapter}: {t.title}" for t in TRAPS])
def test_trap_wrong_line_differs_from_the_right_line(trap):
    assert trap.wrong.strip() != trap.right.strip(), trap.title


def test_llama3_wrong_lines_are_not_lines_of_the_right_code():
    import inspect

    from demos.layers.rope_scaling import llama3_inv_freq
    from demos.traps.llama3 import TRAPS as LLAMA3

    right = {line.split("#")[0].strip() for line in inspect.getsource(llama3_inv_freq).splitlines()}
    for trap in LLAMA3:
        assert trap.wrong.split("#")[0].strip() not in right, trap.title


def test_yi_rope_error_is_zero_at_the_first_position_and_for_the_right_base():
    from demos.traps.yi import rope_error_by_position

    errors = rope_error_by_position((1e4, 5e6), length=10)
    assert errors.shape == (2, 10)
    assert errors[:, 0].abs().max() == 0  # position 0: every rotation is the identity
    assert errors[1].abs().max() == 0  # the right base: the same model
    assert errors[0, 1:].min() > 1e-3  # the wrong base moves every later position
    with pytest.raises(ValueError, match="rope_theta"):
        rope_error_by_position((-1.0,))
    with pytest.raises(ValueError, match="length"):
        rope_error_by_position(length=0)
