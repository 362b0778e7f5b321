"""Checkers for the Vicuna chapter's exercises: merging two partial softmax states computed on
disjoint blocks of keys (the split-KV step), the labels that train only a conversation's last reply,
and a logsumexp over a vocabulary taken in chunks (transfer: the same running max and sum).

Over ~300 lines on purpose: one chapter's checkers, one module per chapter as the layout rule has it
(``demos/exercises/<chapter>.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.overrides import TorchFunctionMode

from demos.exercises.core import Check, check_recorded
from demos.exercises.describe import describe_error
from demos.exercises.recorded import recorded
from demos.parity import tolerance_for

# ---------------------------------------------------------------- exercise 1: merging two states


def check_merge_states(fn: Callable[..., tuple]) -> Check:
    """Check ``merge(m_a, ell_a, acc_a, m_b, ell_b, acc_b) -> (m, ell, acc)``: ``m, ell (i, 1)``,
    ``acc (i, d)`` on each side, float64; the result in the same shapes and dtype."""
    bound = tolerance_for(torch.float64).bound  # a route through logaddexp stays well inside
    return check_recorded(
        fn,
        recorded(__name__, "check_merge_states"),
        ("m_a", "ell_a", "acc_a", "m_b", "ell_b", "acc_b"),
        names=("m", "ell", "acc"),
        atol=bound,
        rtol=bound,
        exact_dtype=True,
    )


# ---------------------------------------------------------------- exercise 2: the last reply's labels


def check_last_reply_labels(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``labels(input_ids, offsets, spans)``: ``input_ids (t,)``, ``offsets (t, 2)`` character
    ``[start, end)`` of each token, ``spans`` the assistant replies' ``[start, end)`` (each with its
    ``</s>``); returns ``(t,)`` int64 labels, the id where the token overlaps the last span and -100
    elsewhere."""
    return check_recorded(
        fn,
        recorded(__name__, "check_last_reply_labels"),
        ("input_ids", "offsets", "spans"),
        exact_dtype=True,
    )


# ---------------------------------------------------------------- exercise 3 (transfer): logsumexp


# What may see all v columns at once: reading shapes, slicing, splitting, viewing, converting.
_READS = {
    "__get__", "__getitem__", "__len__", "__iter__", "size", "dim", "ndimension", "numel",
    "split", "chunk", "tensor_split", "narrow", "unbind", "select", "t", "transpose", "permute",
    "movedim", "swapaxes", "view", "reshape", "flatten", "unsqueeze", "squeeze", "contiguous",
    "clone", "detach", "to", "float", "double", "half", "cpu", "numpy", "tolist",
    "new_full", "new_zeros", "new_ones", "new_empty", "new_tensor", "__repr__", "__format__",
}  # fmt: skip


class _WideOps(TorchFunctionMode):
    """Records each torch call, other than a read (``_READS``), that gets a floating-point tensor of
    more than ``limit`` elements: more than ``chunk`` columns of the ``(n, v)`` logits at once."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.wide: list[tuple[str, tuple[int, ...]]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", str(func))
        if name not in _READS:
            for a in (*args, *(kwargs or {}).values()):
                if isinstance(a, torch.Tensor) and a.is_floating_point() and a.numel() > self.limit:
                    self.wide.append((name, tuple(a.shape)))
                    break
        return func(*args, **(kwargs or {}))


def _not_in_chunks(fn: Callable, cases: dict[str, tuple]) -> Check | None:
    """A failed Check if ``fn`` computes on more than ``chunk`` columns at once, else None."""
    for case, (logits, chunk) in cases.items():
        recorder = _WideOps(logits.shape[0] * chunk)
        with recorder:
            fn(logits.clone(), chunk)
        if not recorder.wide:
            continue
        name, shape = recorder.wide[0]
        why = (
            " (torch.logsumexp over the whole row is the function the exercise asks you to build)"
            if name == "logsumexp"
            else ""
        )
        return Check(
            False,
            f"The values are right, but they are not computed in chunks: in case '{case}' "
            f"(logits of shape {tuple(logits.shape)}, chunk = {chunk}), `{name}` got a tensor "
            f"of shape {shape}, more than {chunk} columns of logits at once{why}. Read chunk "
            "columns at a time (logits[:, j : j + chunk]) and carry a running maximum and a "
            "running sum from one chunk to the next.",
        )
    return None


def check_chunked_logsumexp(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``lse(logits, chunk)``: ``logits (n, v)``, ``chunk`` columns at a time; returns ``(n,)``.

    Beyond the values, no torch function may compute on more than ``chunk`` columns of the logits at
    once (slicing and splitting them is reading, and allowed)."""
    cases = recorded(__name__, "check_chunked_logsumexp").cases
    result = check_recorded(
        fn, recorded(__name__, "check_chunked_logsumexp"), ("logits", "chunk"), atol=1e-4, rtol=1e-5
    )
    if not result.ok:
        return result
    try:
        return _not_in_chunks(fn, cases) or result
    except Exception as error:  # it passed a moment ago; never raise on the learner's code
        return Check(False, f"A second call {describe_error(error)}")
