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


def _mask_paper_convention(t: int, s: int, window: int) -> torch.Tensor:
    """Keys ``p - window <= j <= p``: ``window + 1`` keys, as mistral-src's prefill mask."""
    q_pos = torch.arange(s - t, s)[:, None]
    k_pos = torch.arange(s)[None, :]
    return (k_pos <= q_pos) & (k_pos >= q_pos - window)


def _mask_not_causal(t: int, s: int, window: int) -> torch.Tensor:
    q_pos = torch.arange(s - t, s)[:, None]
    k_pos = torch.arange(s)[None, :]
    return (k_pos - q_pos).abs() < window


def check_sliding_window_mask(fn: Callable[[int, int, int], torch.Tensor]) -> Check:
    """Check a learner's ``sliding_window_mask(t, s, window)``: a boolean ``(t, s)`` tensor, True where
    the query (one of the last ``t`` of ``s`` positions) may attend to the key."""
    from demos.attention import sliding_window_mask

    cases = [(6, 6, 3), (8, 8, 1), (5, 5, 9), (1, 7, 3), (3, 10, 4)]
    hints = [
        (
            _mask_paper_convention,
            "each query sees window + 1 keys. transformers (and this book) let a query see "
            "`window` keys counting itself: key j is visible from position p when p - window < j <= p. "
            "(The paper's wording, 'positions between i - W and i', reads as W + 1.)",
        ),
        (_mask_not_causal, "the mask looks ahead too: a query must not see keys after it."),
    ]
    for t, s, window in cases:
        expected = sliding_window_mask(t, s, window)
        try:
            got = fn(t, s, window)
        except Exception as error:
            return Check(False, f"fn({t}, {s}, {window}) raised {type(error).__name__}: {error}")
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return Check(
                False,
                f"fn({t}, {s}, {window}) gave {shape}, expected shape {tuple(expected.shape)}.",
            )
        got = got.bool()
        if not torch.equal(got, expected):
            i, j = (int(x) for x in (got != expected).nonzero()[0])
            where = (
                f"fn({t}, {s}, {window}): query {i} (position {s - t + i}) and key {j} should be "
                f"{'visible' if expected[i, j] else 'hidden'}."
            )
            for wrong, why in hints:
                if torch.equal(got, wrong(t, s, window)):
                    return Check(False, f"{where} Likely cause: {why}")
            return Check(
                False,
                where
                + " Remember the queries are the *last* t positions: query i sits at s - t + i.",
            )
    return Check(True, f"Matches the reference on {len(cases)} (t, s, window) cases.")


# ---- Mamba ----------------------------------------------------------------------------------------


def ssm_step_reference(x, u, delta, A, B, C):
    """One token of the selective SSM: returns ``(x_new, y)``; x (b, e, n), u and delta (b, e),
    A (e, n), B and C (b, n). ``x_new = exp(delta A) x + delta B u`` and ``y = C . x_new``."""
    deltaA = torch.exp(delta[:, :, None] * A)  # (b, e, n): zero-order hold for A
    x_new = deltaA * x + (delta * u)[:, :, None] * B[:, None, :]  # (b, e, n)
    return x_new, (x_new * C[:, None, :]).sum(-1)  # (b, e, n), (b, e)


def _ssm_step_euler_A(x, u, delta, A, B, C):
    x_new = (1 + delta[:, :, None] * A) * x + (delta * u)[:, :, None] * B[:, None, :]
    return x_new, (x_new * C[:, None, :]).sum(-1)


def _ssm_step_old_state(x, u, delta, A, B, C):
    x_new = ssm_step_reference(x, u, delta, A, B, C)[0]
    return x_new, (x * C[:, None, :]).sum(-1)


def _ssm_step_no_delta_on_B(x, u, delta, A, B, C):
    x_new = torch.exp(delta[:, :, None] * A) * x + u[:, :, None] * B[:, None, :]
    return x_new, (x_new * C[:, None, :]).sum(-1)


def check_ssm_step(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Check:
    """Check a learner's ``ssm_step(x, u, delta, A, B, C) -> (x_new, y)``: one token of Mamba's scan."""
    gen = torch.Generator().manual_seed(0)
    hints = [
        (
            _ssm_step_euler_A,
            "A was discretised with Euler's rule, 1 + delta A. Mamba uses the zero-order hold "
            "for A: A_bar = exp(delta A), which stays in (0, 1) for every step size.",
        ),
        (
            _ssm_step_old_state,
            "y was read from the state before this token's update; y_t = C_t . x_t uses the new state.",
        ),
        (
            _ssm_step_no_delta_on_B,
            "the input was written without the step size: B_bar = delta B, so a small delta "
            "both keeps the old state and writes little.",
        ),
    ]
    for b, e, n in [(1, 2, 3), (2, 5, 4), (3, 1, 8)]:
        args = (
            torch.randn(b, e, n, generator=gen),
            torch.randn(b, e, generator=gen),
            torch.rand(b, e, generator=gen) + 0.05,
            -torch.rand(e, n, generator=gen) * 3 - 0.1,
            torch.randn(b, n, generator=gen),
            torch.randn(b, n, generator=gen),
        )
        shapes = f"b={b}, e={e}, n={n}"
        expected = ssm_step_reference(*args)
        try:
            got = fn(*args)
        except Exception as error:  # the learner's code: report, don't crash the notebook
            return Check(False, f"With {shapes} it raised {type(error).__name__}: {error}")
        if not (isinstance(got, tuple) and len(got) == 2):
            return Check(
                False, f"With {shapes} it returned {type(got).__name__}; expected (x_new, y)."
            )
        for name, g, want in zip(("x_new", "y"), got, expected, strict=True):
            if not isinstance(g, torch.Tensor) or g.shape != want.shape:
                what = tuple(g.shape) if isinstance(g, torch.Tensor) else type(g).__name__
                return Check(
                    False, f"With {shapes}, {name} is {what}; expected shape {tuple(want.shape)}."
                )
        for name, g, want, i in (("x_new", got[0], expected[0], 0), ("y", got[1], expected[1], 1)):
            mismatch = first_mismatch(g.to(want.dtype), want, 1e-5, 1e-5)
            if mismatch:
                for wrong, why in hints:
                    if torch.allclose(g.to(want.dtype), wrong(*args)[i], atol=1e-5, rtol=1e-5):
                        return Check(
                            False, f"With {shapes}, {name}: {mismatch} Likely cause: {why}"
                        )
                return Check(False, f"With {shapes}, {name}: {mismatch}")
    return Check(True, "x_new and y match the reference on 3 random inputs.")


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


def _dpo_h(lw, ll, rw, rl):
    return (lw - rw) - (ll - rl)


def _dpo_no_reference(lw, ll, rw, rl, beta):
    return -torch.nn.functional.logsigmoid(beta * (lw - ll))


def _dpo_swapped(lw, ll, rw, rl, beta):
    return -torch.nn.functional.logsigmoid(-beta * _dpo_h(lw, ll, rw, rl))


def _dpo_no_log(lw, ll, rw, rl, beta):
    return -torch.sigmoid(beta * _dpo_h(lw, ll, rw, rl))


def _dpo_no_beta(lw, ll, rw, rl, beta):
    return -torch.nn.functional.logsigmoid(_dpo_h(lw, ll, rw, rl))


def _dpo_log_of_sigmoid(lw, ll, rw, rl, beta):
    return -torch.log(torch.sigmoid(beta * _dpo_h(lw, ll, rw, rl)))


def check_dpo_loss(fn: Callable[..., torch.Tensor]) -> Check:
    """Check a learner's per-pair sigmoid DPO loss ``fn(chosen, rejected, ref_chosen, ref_rejected, beta)``:
    four ``(b,)`` tensors of sequence log-probabilities and a float -> ``(b,)`` losses."""
    from demos.preference import dpo_loss

    gen = torch.Generator().manual_seed(0)

    def logps(b: int, scale: float) -> torch.Tensor:
        return -torch.rand(b, generator=gen) * scale - 0.1

    cases = [(logps(6, 20), logps(6, 20), logps(6, 20), logps(6, 20), 0.1) for _ in range(2)]
    cases.append((logps(3, 5), logps(3, 5), logps(3, 5), logps(3, 5), 0.5))
    # a policy that prefers the rejected answer by a wide margin: beta * h is about -120
    lw = torch.tensor([-80.0, -75.0])
    cases.append((lw, torch.tensor([-20.0, -15.0]), torch.tensor([-20.0, -16.0]), lw.clone(), 1.0))
    hints = [
        (
            _dpo_no_reference,
            "the reference model was left out. DPO's margin is h = (log pi(y_w) - log pi_ref(y_w)) - "
            "(log pi(y_l) - log pi_ref(y_l)); without pi_ref the loss ignores where training started.",
        ),
        (
            _dpo_swapped,
            "chosen and rejected are swapped: the loss must fall as the chosen answer gains.",
        ),
        (_dpo_no_log, "this is -sigma(beta h); the loss is -log sigma(beta h)."),
        (_dpo_no_beta, "beta is missing: the loss is -log sigma(beta h)."),
        (
            _dpo_log_of_sigmoid,
            "-log(sigmoid(x)) underflows to log(0) = -inf for a very negative x: use "
            "torch.nn.functional.logsigmoid, which computes log sigma(x) without forming sigma(x).",
        ),
    ]
    return check_tensor_function(
        fn, lambda *a: dpo_loss(*a)[0], cases, atol=1e-5, rtol=1e-5, hints=hints
    )


def _log_odds_naive(logp: torch.Tensor) -> torch.Tensor:
    return logp - torch.log(1 - torch.exp(logp))


def _odds_not_log(logp: torch.Tensor) -> torch.Tensor:
    return torch.exp(logp) / (1 - torch.exp(logp))


def _log_odds_without_denominator(logp: torch.Tensor) -> torch.Tensor:
    return logp


def check_log_odds(fn: Callable[[torch.Tensor], torch.Tensor]) -> Check:
    """Check a learner's ``log_odds(logp)``: ``log(P / (1 - P))`` from ``log P <= 0`` (ORPO's building
    block), elementwise, accurate for ``log P`` near 0 and very negative."""
    from demos.preference import log1mexp

    gen = torch.Generator().manual_seed(0)
    cases = [
        (-torch.rand(8, generator=gen) * 4 - 0.01,),
        (torch.tensor([-1e-8, -1e-4, -0.6931, -30.0, -80.0]),),  # near 0, log(1/2), very negative
    ]
    hints = [
        (
            _log_odds_naive,
            "log(1 - exp(log P)) rounds to log(0) when log P is close to 0 (P close to 1, exactly the "
            "well-trained case). Compute log(1 - P) as torch.log(-torch.expm1(log P)) near 0, or use "
            "demos.preference.log1mexp.",
        ),
        (_odds_not_log, "this is the odds P / (1 - P); take its logarithm."),
        (_log_odds_without_denominator, "this is log P; the log-odds also subtract log(1 - P)."),
    ]
    return check_tensor_function(
        fn, lambda lp: lp - log1mexp(lp), cases, atol=1e-5, rtol=1e-5, hints=hints
    )
