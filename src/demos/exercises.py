"""Checkers for the chapters' exercises: compare a learner's answer with the reference, explain a mismatch.

A checker never raises on a wrong answer: it returns a :class:`Check` whose message says what
was expected, what came back, where they first differ and, when the mistake is a common one,
its likely cause. Chapters display the result; tests assert on ``Check.ok``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from demos.attention import kv_cache_bytes_per_token, repeat_kv


@dataclass(frozen=True)
class Check:
    ok: bool
    message: str

    def __str__(self) -> str:
        return ("✅ Correct. " if self.ok else "❌ Not yet. ") + self.message

    def _repr_markdown_(self) -> str:
        return str(self)

    def __repr__(self) -> str:
        return str(self)


def first_mismatch(
    got: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float
) -> str | None:
    """Describe the first element where ``got`` and ``expected`` differ, or None if they agree."""
    bad = ~torch.isclose(got, expected, atol=atol, rtol=rtol)
    if not bad.any():
        return None
    index = tuple(int(i) for i in bad.nonzero()[0])
    return (
        f"{int(bad.sum())} of {bad.numel()} elements differ; the first is at index {index}: "
        f"expected {expected[index].item():.6g}, got {got[index].item():.6g}."
    )


def check_tensor_function(
    fn: Callable[..., torch.Tensor],
    reference: Callable[..., torch.Tensor],
    cases: Iterable[tuple],
    atol: float = 1e-6,
    rtol: float = 1e-6,
    hints: Iterable[tuple[Callable[..., torch.Tensor], str]] = (),
) -> Check:
    """Run ``fn`` and ``reference`` on each argument tuple in ``cases`` and compare.

    ``hints`` pairs a known wrong implementation with the explanation to give when the learner's
    output matches it: a wrong answer that matches a common mistake gets that mistake named.
    """
    cases, hints = list(cases), list(hints)
    for args in cases:
        expected = reference(*args)
        shapes = ", ".join(
            str(tuple(a.shape)) if isinstance(a, torch.Tensor) else repr(a) for a in args
        )
        try:
            got = fn(*args)
        except Exception as error:  # the learner's code: report, don't crash the notebook
            return Check(
                False,
                f"Calling it with arguments of shape {shapes} raised {type(error).__name__}: {error}",
            )
        if not isinstance(got, torch.Tensor):
            return Check(
                False,
                f"With inputs {shapes} it returned {type(got).__name__}, "
                f"expected a tensor of shape {tuple(expected.shape)}.",
            )
        if got.shape != expected.shape:
            return Check(
                False,
                f"With inputs {shapes} the result has shape {tuple(got.shape)}, expected {tuple(expected.shape)}.",
            )
        mismatch = first_mismatch(got.to(expected.dtype), expected, atol, rtol)
        if mismatch:
            for wrong, why in hints:
                if torch.allclose(got.to(expected.dtype), wrong(*args), atol=atol, rtol=rtol):
                    return Check(False, f"With inputs {shapes}: {mismatch} Likely cause: {why}")
            return Check(False, f"With inputs {shapes}: {mismatch}")
    return Check(True, f"Matches the reference on {len(cases)} random inputs.")


def _tiled_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    return x.repeat(1, n_rep, 1, 1)  # heads in the order 0,1,..,g-1,0,1,..: the classic mistake


def check_repeat_kv(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> Check:
    """Check a learner's ``repeat_kv(x, n_rep)``: ``(b, g, s, d) -> (b, g * n_rep, s, d)``."""
    gen = torch.Generator().manual_seed(0)
    cases = [
        (torch.randn(b, g, s, d, generator=gen), n)
        for b, g, s, d, n in [(1, 2, 3, 4, 2), (2, 3, 5, 8, 4), (2, 4, 1, 2, 1)]
    ]
    hints = [
        (
            _tiled_kv,
            "the key/value heads are tiled (0, 1, 0, 1) instead of repeated in place (0, 0, 1, 1). "
            "Query head j must read key/value head j // n_rep, so copies of one head sit next to each other.",
        )
    ]
    return check_tensor_function(fn, repeat_kv, cases, atol=0.0, rtol=0.0, hints=hints)


def check_kv_cache_bytes(fn: Callable[..., int]) -> Check:
    """Check a learner's ``kv_cache_bytes(num_hidden_layers, num_key_value_heads, head_dim, seq_len, batch,
    bytes_per_value)``: the bytes of keys and values cached for ``batch`` sequences of ``seq_len`` tokens."""
    cases = [
        (32, 32, 128, 4096, 1, 2),
        (80, 8, 128, 4096, 1, 2),
        (40, 40, 128, 1000, 8, 1),
        (2, 1, 8, 3, 5, 4),
    ]
    for layers, g, d, seq_len, batch, nbytes in cases:
        expected = kv_cache_bytes_per_token(layers, g, d, nbytes) * seq_len * batch
        try:
            got = fn(layers, g, d, seq_len, batch, nbytes)
        except Exception as error:
            return Check(False, f"It raised {type(error).__name__}: {error}")
        if got != expected:
            args = f"layers={layers}, kv_heads={g}, head_dim={d}, seq_len={seq_len}, batch={batch}, bytes={nbytes}"
            hint = ""
            if got and expected % got == 0 and expected // got == 2:
                hint = " Likely cause: only keys or only values were counted; the cache holds both."
            elif got and got % expected == 0:
                hint = f" Your answer is {got // expected}x too large: is a factor counted twice?"
            return Check(False, f"For {args}: expected {expected:,} bytes, got {got!r}.{hint}")
    return Check(True, f"Matches the reference on {len(cases)} configurations.")


def _split_qkv_blocks(fused: torch.Tensor, h: int, g: int, d: int):
    """The classic mistake: read the fused projection as [all queries | all keys | all values]."""
    b, t, _ = fused.shape
    q, k, v = fused.split([h * d, g * d, g * d], dim=-1)
    return (
        q.view(b, t, h, d).transpose(1, 2),
        k.view(b, t, g, d).transpose(1, 2),
        v.view(b, t, g, d).transpose(1, 2),
    )


def check_split_fused_qkv(fn: Callable[..., tuple]) -> Check:
    """Check a learner's ``split(fused, num_heads, num_kv_heads, head_dim) -> (q, k, v)`` for Falcon's
    fused ``query_key_value`` output: ``q (b, h, t, d)``, ``k`` and ``v`` ``(b, g, t, d)``."""
    from demos.falcon import split_fused_qkv

    gen = torch.Generator().manual_seed(0)
    shapes = [(1, 3, 4, 1, 2), (2, 5, 8, 2, 4), (2, 1, 4, 4, 2)]  # b, t, h, g, d
    for b, t, h, g, d in shapes:
        fused = torch.randn(b, t, (h + 2 * g) * d, generator=gen)
        expected = split_fused_qkv(fused, h, g, d)
        where = f"h={h}, g={g}, d={d}, fused shape {tuple(fused.shape)}"
        try:
            got = fn(fused, h, g, d)
        except Exception as error:
            return Check(False, f"With {where} it raised {type(error).__name__}: {error}")
        if not (isinstance(got, tuple) and len(got) == 3):
            return Check(
                False, f"With {where} it returned {type(got).__name__}, expected (q, k, v)."
            )
        for name, x, ref in zip("qkv", got, expected, strict=True):
            if not isinstance(x, torch.Tensor) or x.shape != ref.shape:
                shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                return Check(
                    False, f"With {where}, {name} has shape {shape}, expected {tuple(ref.shape)}."
                )
            mismatch = first_mismatch(x, ref, atol=0.0, rtol=0.0)
            if mismatch:
                hint = ""
                wrong = _split_qkv_blocks(fused, h, g, d)
                if all(torch.equal(a, w) for a, w in zip(got, wrong, strict=True)):
                    hint = (
                        " Likely cause: the rows were read as [all queries | all keys | all values]."
                        " Falcon stores them group by group: each key/value head's r = h // g"
                        " queries, then its key, then its value."
                    )
                return Check(False, f"With {where}, {name}: {mismatch}{hint}")
    return Check(True, f"Matches the reference on {len(shapes)} layouts (g = 1, g = h / 2, g = h).")
