"""Checkers for the Vicuna chapter's exercises: one step of the online softmax, the labels of a two-turn
conversation, and a logsumexp over a vocabulary taken in chunks (transfer: the same running max and sum).

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

# ---------------------------------------------------------------- exercise 1: the online update


_ONE_MAXIMUM = (
    "m is one maximum over the whole block (scores.max() or scores.amax() with no dim): each "
    "query row keeps its own running maximum, scores.amax(-1, keepdim=True), shape (i, 1)."
)


class _Reductions(TorchFunctionMode):
    """Records the axes over which ``scores`` (that very tensor) is reduced by a max while active."""

    def __init__(self, scores: torch.Tensor) -> None:
        super().__init__()
        self.scores = scores
        self.axes: list[int | None] = []  # None: over every element
        self.keepdim: list[bool] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in ("max", "amax") and args and args[0] is self.scores:
            dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
            if not isinstance(dim, torch.Tensor):  # torch.max(a, b) is elementwise, not a reduction
                dims = dim if isinstance(dim, list | tuple) else [dim]
                ndim = self.scores.dim()
                self.axes += [None if d is None else d % ndim for d in dims] if dims else [None]
                self.keepdim.append(
                    bool(kwargs.get("keepdim", args[2] if len(args) > 2 else False))
                )
        return func(*args, **kwargs)


def _wrong_axis(fn: Callable, args: tuple) -> str | None:
    """Why ``fn`` is wrong if it takes the maximum of ``scores`` over another axis than the keys'."""
    fresh = tuple(a.clone() for a in args)
    recorder = _Reductions(fresh[3])
    raised = False
    try:
        with recorder:
            fn(*fresh)
    except Exception:  # a wrong axis often ends in a shape error; what was recorded still counts
        raised = True
    last = fresh[3].dim() - 1
    if None in recorder.axes:
        return _ONE_MAXIMUM
    if any(axis != last for axis in recorder.axes):
        return (
            "the maximum of scores was taken over axis 0, the queries (i), not the keys (j): "
            "each query needs the maximum of its own row, scores.amax(-1, keepdim=True), "
            "shape (i, 1)."
        )
    if raised and recorder.axes and not any(recorder.keepdim):
        return (
            "the row maximum lost its axis: scores.amax(-1) has shape (i,), which does not "
            "line up with m of shape (i, 1) nor broadcast against scores (i, j). Keep the axis: "
            "scores.amax(-1, keepdim=True)."
        )
    return None


def check_online_softmax_update(fn: Callable[..., tuple]) -> Check:
    """Check ``update(m, ell, acc, scores, v) -> (m, ell, acc)``: ``m, ell (i, 1)``, ``acc (i, d)``,
    ``scores (i, j)``, ``v (j, d)``."""
    cases = recorded(__name__, "check_online_softmax_update").cases
    result = check_recorded(
        fn,
        recorded(__name__, "check_online_softmax_update"),
        ("m", "ell", "acc", "scores", "v"),
        names=("m", "ell", "acc"),
        atol=1e-5,
        rtol=1e-5,
    )
    if result.ok or not result.attempted or "Likely cause" in result.message:
        return result
    try:
        cause = _wrong_axis(fn, next(iter(cases.values())))
    except Exception:  # a checker never raises on a learner's answer
        cause = None
    return Check(False, f"{result.message} Likely cause: {cause}") if cause else result


# ---------------------------------------------------------------- exercise 2: the labels


def check_vicuna_labels(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``labels(input_ids, offsets, spans)``: ``input_ids (t,)``, ``offsets (t, 2)`` character
    ``[start, end)`` of each token, ``spans`` the assistant replies' ``[start, end)``; returns ``(t,)``
    labels, the id where the token is trained and -100 elsewhere."""
    cases = recorded(__name__, "check_vicuna_labels").cases
    result = check_recorded(
        fn, recorded(__name__, "check_vicuna_labels"), ("input_ids", "offsets", "spans")
    )
    if not result.ok:
        return result
    try:  # the values are right: now the dtype, which the loss needs
        dtype = fn(
            *(a.clone() if isinstance(a, torch.Tensor) else a for a in cases[next(iter(cases))])
        ).dtype
    except Exception as error:  # it passed a moment ago; never raise on the learner's code
        return Check(False, f"A second call {describe_error(error)}")
    if dtype != torch.int64:
        return Check(
            False,
            f"The values are right, but the labels are {str(dtype).removeprefix('torch.')}: "
            "return them as int64 (torch.long), the dtype of input_ids. The loss needs it: "
            "cross_entropy takes its targets as int64 and raises on int32 ('expected target "
            "dtype to be Long'), and a floating-point label is not a class index.",
        )
    return result


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
