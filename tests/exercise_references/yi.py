"""References and known mistakes for the Yi chapter's exercises: the KV cache of a released configuration at 200K tokens
(Yi-34B's h/g = 7), the longest RoPE wavelength at Yi's base and at Llama's, and (transfer) a
multi-needle score that matches each value exactly.

References: young2024yi (Yi's shapes and its 200K models), su2021roformer (RoPE's frequencies).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from demos.exercises.core import Check, Mistake, check_function
from demos.exercises.xgen import _int_only

# ---------------------------------------------------------------- exercise 1: the cache at 200K


def _config(layers: int, heads: int, kv_heads: int, hidden: int) -> SimpleNamespace:
    """The fields of a transformers Llama config that a KV cache depends on (and one that it
    does not: the query heads)."""
    return SimpleNamespace(
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        hidden_size=hidden,
        head_dim=hidden // heads,
    )


def kv_bytes(config: Any, tokens: int) -> int:
    """The reference: bytes of keys and values one sequence of ``tokens`` tokens caches in bf16
    (2 bytes a value), from a transformers Llama config: ``2 n g d * 2 * tokens``."""
    n, g, d = config.num_hidden_layers, config.num_key_value_heads, config.head_dim
    return 2 * n * g * d * 2 * tokens


def check_kv_bytes(fn: Callable[..., Any]) -> Check:
    """Check ``kv_bytes(config, tokens)``: see :func:`kv_bytes`. The answer must be a Python int."""
    cases = {  # Yi's shapes: registry.yaml, from the released config.json files [hf_yi_configs]
        "Yi-6B (32 layers, 32 heads, 4 key/value heads), 200K tokens": (
            _config(32, 32, 4, 4096),
            200_000,
        ),
        "Yi-34B (60 layers, 56 heads, 8 key/value heads), 200K tokens": (
            _config(60, 56, 8, 7168),
            200_000,
        ),
        "Yi-34B, 4K tokens": (_config(60, 56, 8, 7168), 4096),
        "a tiny GQA model, 9 tokens": (_config(2, 14, 2, 112), 9),
    }
    mistakes = [
        Mistake(
            lambda c, t: kv_bytes(c, t) * c.num_attention_heads // c.num_key_value_heads,
            "the query heads were counted: a grouped-query cache keeps num_key_value_heads heads, "
            "h / g times fewer (7 for Yi-34B, 8 for Yi-6B).",
        ),
        Mistake(
            lambda c, t: kv_bytes(c, t) // 2 // 2,
            "a quarter of the reference: both factors of 2 are missing (a token caches a key and "
            "a value, and each value takes 2 bytes in bf16).",
        ),
        Mistake(
            lambda c, t: kv_bytes(c, t) // 2,
            "half the reference: either the keys or the values are missing (the factor 2), or the "
            "values were counted as 1 byte each; bf16 takes 2.",
        ),
        Mistake(
            lambda c, t: kv_bytes(c, t) * 2,
            "twice the reference: that is float32 (4 bytes a value); the exercise asks for bf16.",
        ),
        Mistake(
            lambda c, t: kv_bytes(c, t) // c.num_hidden_layers,
            "one layer was counted: every layer keeps its own keys and values.",
        ),
        Mistake(
            lambda c, t: kv_bytes(c, t) * c.hidden_size // c.head_dim,
            "the hidden size was used for each head: a head holds head_dim channels.",
        ),
        Mistake(
            lambda c, t: kv_bytes(c, t) * 8,
            "8 times the reference: bf16's 16 bits were counted as 16 bytes, or the answer is "
            "in bits; a bf16 value takes 2 bytes, and the exercise asks for bytes.",
        ),
        Mistake(
            lambda c, t: kv_bytes(c, t) / 2**30,
            "that is in GiB (bytes / 2**30): return the bytes; divide by 2**30 only to read "
            "the answer in GiB.",
        ),
        Mistake(
            lambda c, t: kv_bytes(c, t) // 2**30,
            "that is in whole GiB (bytes // 2**30): return the bytes; divide by 2**30 only to "
            "read the answer in GiB.",
        ),
        Mistake(
            lambda c, t: kv_bytes(c, t) / 10**9,
            "that is in GB (bytes / 1e9): return the bytes.",
        ),
        Mistake(
            lambda c, t: kv_bytes(c, t + 1),
            "one token too many: the cache holds exactly `tokens` keys and values per layer "
            "and head, not tokens + 1.",
        ),
        Mistake(
            lambda c, t: kv_bytes(c, t - 1),
            "one token too few: the cache holds a key and a value for every one of the "
            "`tokens` tokens, the last included.",
        ),
    ]
    names = ("config", "tokens")
    verdict = check_function(fn, kv_bytes, cases, names, mistakes=mistakes)
    return _int_only(fn, verdict, cases, names, "bytes")


# ---------------------------------------------------------------- exercise 2: the longest wavelength


def longest_wavelength(theta: float, head_dim: int) -> float:
    """The reference: the wavelength, in positions, of RoPE's slowest pair of channels.
    Pair ``i`` turns by ``theta ** (-2 i / d)`` radians a position, ``i = 0 .. d/2 - 1``, so the
    slowest (``i = d/2 - 1``) needs ``2 pi theta ** ((d - 2) / d)`` positions for a full turn."""
    return 2 * math.pi * theta ** ((head_dim - 2) / head_dim)


def check_longest_wavelength(fn: Callable[..., Any]) -> Check:
    """Check ``longest_wavelength(theta, head_dim)``: see :func:`longest_wavelength`."""
    cases = {
        "Llama's base, d = 128": (10000.0, 128),
        "Yi's base, d = 128": (5e6, 128),
        "Yi's base, d = 8 (the tiny rows)": (5e6, 8),
        "base 100, d = 4": (100.0, 4),
    }
    mistakes = [
        Mistake(
            lambda b, d: 2 * math.pi * b,
            "that uses theta itself: the slowest pair is i = d/2 - 1, whose frequency is "
            "theta ** (-(d - 2) / d), a little faster than 1 / theta.",
        ),
        Mistake(
            lambda b, d: b ** ((d - 2) / d),
            "2 pi is missing: a full turn is 2 pi radians, so the wavelength is 2 pi over the "
            "angle a position adds.",
        ),
        Mistake(
            lambda b, d: b ** (-(d - 2) / d),
            "that is the frequency (radians per position), not the wavelength: invert it and "
            "multiply by 2 pi.",
        ),
        Mistake(
            lambda b, d: 2 * math.pi * b ** ((d - 1) / d),
            "the exponent should be (d - 2) / d: the pairs are i = 0 .. d/2 - 1 with exponent "
            "2 i / d, so the last is 2 (d/2 - 1) / d.",
        ),
        Mistake(
            lambda b, d: 2 * math.pi,
            "that is the fastest pair (i = 0, one radian a position); the exercise asks for "
            "the slowest.",
        ),
    ]
    # rtol 1e-6: an answer computed in float32 (from demos.layers.rope.rope_inv_freq, as the
    # page's figure does) is off by about 5e-8 relative and is right; the nearest named mistake
    # is 7 % off.
    return check_function(
        fn, longest_wavelength, cases, ("theta", "head_dim"), mistakes=mistakes, rtol=1e-6
    )


# ---------------------------------------------------------------- exercise 3: several needles


def _items(generated: str) -> list[str]:
    return [re.sub(r"^[\s.;:!?\"']+|[\s.;:!?\"']+$", "", part) for part in generated.split(",")]


def multi_needle_score(generated: str, expected: list[str]) -> float:
    """The reference: the fraction of the (distinct) ``expected`` values that appear as an exact
    item of ``generated``, a comma-separated answer (items stripped of spaces and end punctuation;
    in any order)."""
    items = _items(generated)
    return sum(value in items for value in expected) / len(expected)


def check_multi_needle_score(fn: Callable[..., Any]) -> Check:
    """Check ``multi_needle_score(generated, expected)``: see :func:`multi_needle_score`."""
    cases = {
        "all three, in another order": ("4410, 7341, 2290.", ["7341", "2290", "4410"]),
        "one buried in a longer number": ("73410, 2290", ["7341", "2290"]),
        "one right, one missing": ("7341", ["7341", "2290"]),
        "a repeated value": ("7341, 7341", ["7341", "2290"]),
        "an extra guess": ("7341, 2290, 1111", ["7341", "2290"]),
        "a hedged item": ("7341 or 1234, 2290", ["7341", "2290"]),
        "none": ("I do not know.", ["7341"]),
    }

    def substring(g, e):
        return sum(v in g for v in e) / len(e)

    def ordered(g, e):
        items = _items(g)
        return sum(i < len(items) and items[i] == v for i, v in enumerate(e)) / len(e)

    def per_item(g, e):
        items = _items(g)
        return sum(x in e for x in items) / len(items)

    def words(g, e):
        found = [w.strip(".,;:!?\"'") for w in g.split()]
        return sum(v in found for v in e) / len(e)

    mistakes = [
        Mistake(
            words,
            "that splits on spaces: the item '7341 or 1234' hedges between two values and must "
            "not score; split on commas and compare whole items.",
        ),
        Mistake(
            substring,
            "that matches substrings: '7341' is found inside '73410', a wrong answer; compare "
            "whole items.",
        ),
        Mistake(
            ordered,
            "that compares position by position: the needles may be answered in any order.",
        ),
        Mistake(
            per_item,
            "that divides by the answer's items: an extra guess lowers the score and a repeated "
            "one raises it; divide by the expected values.",
        ),
    ]
    return check_function(
        fn, multi_needle_score, cases, ("generated", "expected"), mistakes=mistakes, atol=1e-12
    )
