"""Checkers for the Yi chapter's exercises: the KV cache of a released configuration at 200K tokens
(Yi-34B's h/g = 7), the longest RoPE wavelength at Yi's base and at Llama's, and (transfer) a
multi-needle score that matches each value exactly.

References: young2024yi (Yi's shapes and its 200K models), su2021roformer (RoPE's frequencies).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from demos.exercises.core import Check, check_recorded
from demos.exercises.recorded import recorded
from demos.exercises.xgen import _int_only

# ---------------------------------------------------------------- exercise 1: the cache at 200K


def check_kv_bytes(fn: Callable[..., Any]) -> Check:
    """Check ``kv_bytes(config, tokens)``, as the chapter's exercise asks. The answer must be a
    Python int."""
    cases = recorded(__name__, "check_kv_bytes").cases
    names = ("config", "tokens")
    verdict = check_recorded(fn, recorded(__name__, "check_kv_bytes"), names)
    return _int_only(fn, verdict, cases, names, "bytes")


# ---------------------------------------------------------------- exercise 2: the longest wavelength


def check_longest_wavelength(fn: Callable[..., Any]) -> Check:
    """Check ``longest_wavelength(theta, head_dim)``, as the chapter's exercise asks."""
    # rtol 1e-6: an answer computed in float32 (from demos.layers.rope.rope_inv_freq, as the
    # page's figure does) is off by about 5e-8 relative and is right; the nearest named mistake
    # is 7 % off.
    return check_recorded(
        fn, recorded(__name__, "check_longest_wavelength"), ("theta", "head_dim"), rtol=1e-6
    )


# ---------------------------------------------------------------- exercise 3: several needles


def check_multi_needle_score(fn: Callable[..., Any]) -> Check:
    """Check ``multi_needle_score(generated, expected)``, as the chapter's exercise asks."""

    return check_recorded(
        fn, recorded(__name__, "check_multi_needle_score"), ("generated", "expected"), atol=1e-12
    )
