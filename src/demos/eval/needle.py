"""Needle in a haystack: hide one fact in a long filler context, ask for it, score the answer exactly.

The test behind long-context claims such as Yi-34B-200K's [young2024yi, hf_yi_configs]: a haystack
of ``length`` tokens, with a needle (a key and its value) placed at a ``depth`` (0: the start of the
haystack, 1: its end, just before the question), and a question at the end that asks for the value.
A grid over (length, depth) of exact-match accuracies, drawn as a heat map, shows where retrieval
fails: deep in the middle, beyond the trained length. Everything is measured in *tokens*: a depth
in characters lands elsewhere once a tokenizer packs characters unevenly (see the Yi chapter's
traps).

Axes: b batch (trials), t context length in tokens, k answer length in tokens.

References: young2024yi (the 200K models and their needle-in-a-haystack test).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real

import torch

from demos.validation import check_positive_int


def check_depth(depth: object) -> None:
    """``ValueError`` unless ``depth`` is a real number in [0, 1] (not NaN, not a bool)."""
    if (
        isinstance(depth, bool)
        or not isinstance(depth, Real)
        or math.isnan(depth)
        or not 0 <= depth <= 1
    ):
        raise ValueError(f"depth ({depth!r}) must be a fraction in [0, 1] (0: start, 1: end)")


def _check_tokens(name: str, tokens: Sequence[int]) -> list[int]:
    if isinstance(tokens, str | bytes) or not isinstance(tokens, Sequence | torch.Tensor):
        raise ValueError(f"{name} ({tokens!r}) must be a sequence of token ids")
    out = [int(t) for t in tokens]
    if not out:
        raise ValueError(f"{name} must hold at least one token id")
    if any(t < 0 for t in out):
        raise ValueError(f"{name} ({out!r}) must hold token ids >= 0")
    return out


def needle_position(length: int, depth: float, needle_len: int, question_len: int) -> int:
    """Index of the needle's first token in a context of ``length`` tokens: ``round(depth * room)``,
    ``room = length - needle_len - question_len`` filler tokens (so depth 0 puts it first and depth
    1 right before the question).

    Raises:
        ValueError: ``depth`` outside [0, 1] or NaN; a length that leaves no filler token.
    """
    check_depth(depth)
    for name, value in (("length", length), ("needle_len", needle_len)):
        check_positive_int(name, value)
    check_positive_int("question_len", question_len)
    room = length - needle_len - question_len
    if room < 1:
        raise ValueError(
            f"length ({length}) must exceed needle ({needle_len}) + question ({question_len}) "
            "tokens: a haystack needs at least one filler token"
        )
    return round(depth * room)


def build_haystack(
    filler: Sequence[int],
    needle: Sequence[int],
    question: Sequence[int],
    length: int,
    depth: float,
) -> tuple[torch.Tensor, int]:
    """``(ids (length,), position)``: ``filler`` tokens (cycled or cut to fit) with ``needle``
    inserted at :func:`needle_position` and ``question`` at the end.

    ``filler``, ``needle``, ``question``: token ids (lists or 1-d tensors). Returns int64 ids.

    Raises:
        ValueError: empty or negative token ids, bad ``depth`` or too short a ``length``.
    """
    filler, needle = _check_tokens("filler", filler), _check_tokens("needle", needle)
    question = _check_tokens("question", question)
    position = needle_position(length, depth, len(needle), len(question))
    room = length - len(needle) - len(question)
    hay = (filler * (room // len(filler) + 1))[:room]  # cycle the filler to fill the room
    ids = hay[:position] + needle + hay[position:] + question
    return torch.tensor(ids, dtype=torch.long), position


_WORD = re.compile(r"[^\s.,;:!?\"'()\[\]]+")


def first_answer(text: str) -> str:
    """The first word of a generated answer, without surrounding punctuation ("" if none)."""
    if not isinstance(text, str):
        raise ValueError(f"a generated answer must be a string, got {type(text).__name__}")
    match = _WORD.search(text)
    return match.group(0) if match else ""


def score_text(generated: str, expected: str) -> float:
    """1.0 when the first word of ``generated`` equals ``expected`` exactly, else 0.0.

    An answer that lists several candidates ("7341 or 1234") or buries the value in a longer number
    ("73410") does not score; substring matching would pass both.

    Raises:
        ValueError: ``expected`` empty or not a string; ``generated`` not a string.
    """
    if not isinstance(expected, str) or not expected.strip():
        raise ValueError(f"expected ({expected!r}) must be a non-empty string")
    return float(first_answer(generated) == expected.strip())


def score_tokens(predicted: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """Exact match per row: ``(b,)`` float 1.0 where ``predicted (b, k)`` equals ``expected (b, k)``
    in every token. ``ValueError`` on mismatched shapes or floating-point tensors."""
    if predicted.shape != expected.shape or predicted.dim() != 2:
        raise ValueError(
            f"predicted {tuple(predicted.shape)} and expected {tuple(expected.shape)} must be "
            "the same (b, k) shape"
        )
    if predicted.is_floating_point() or expected.is_floating_point():
        raise ValueError("predicted and expected must be integer token ids")
    return (predicted == expected).all(dim=1).float()


@dataclass(frozen=True)
class NeedleGrid:
    """Accuracy over (length, depth): ``accuracy[i, j]`` at ``lengths[i]`` and ``depths[j]``."""

    lengths: list[int]
    depths: list[float]
    accuracy: torch.Tensor  # (len(lengths), len(depths)), in [0, 1]
    trials: int

    def at(self, length: int, depth: float) -> float:
        """The accuracy of one cell."""
        return self.accuracy[self.lengths.index(length), self.depths.index(depth)].item()


def needle_grid(
    make_batch: Callable[[int, float, int, torch.Generator], tuple[torch.Tensor, torch.Tensor]],
    answer: Callable[[torch.Tensor, int], torch.Tensor],
    lengths: Sequence[int],
    depths: Sequence[float],
    trials: int,
    seed: int = 0,
) -> NeedleGrid:
    """Run the test at every (length, depth).

    Args:
        make_batch: ``(length, depth, trials, generator) -> (ids (b, t), expected (b, k))``.
        answer: ``(ids (b, t), k) -> predicted (b, k)`` token ids (e.g. greedy decoding).
        lengths, depths: the grid; each depth in [0, 1].
        trials: contexts per cell; the same generator seed for every cell.

    Raises:
        ValueError: an empty grid, a bad depth or length, ``trials`` not a positive integer.
    """
    check_positive_int("trials", trials)
    if not lengths or not depths:
        raise ValueError("lengths and depths must each hold at least one value")
    for length in lengths:
        check_positive_int("length", length)
    for depth in depths:
        check_depth(depth)
    accuracy = torch.zeros(len(lengths), len(depths), dtype=torch.float64)
    for i, length in enumerate(lengths):
        for j, depth in enumerate(depths):
            gen = torch.Generator().manual_seed(seed)
            ids, expected = make_batch(length, depth, trials, gen)  # (b, t), (b, k)
            accuracy[i, j] = score_tokens(answer(ids, expected.shape[1]), expected).mean()
    return NeedleGrid([int(x) for x in lengths], [float(x) for x in depths], accuracy, trials)


def plot_needle_grid(
    grid: NeedleGrid,
    ax: object = None,
    title: str = "Needle in a haystack: exact-match accuracy",
    trained_length: int | None = None,
) -> object:
    """A heat map of ``grid`` (length on y, depth on x, accuracy in colour, each cell labelled);
    a dashed line above the last length <= ``trained_length`` when given. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    image = ax.imshow(grid.accuracy.numpy(), cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(grid.depths)), [f"{d:.0%}" for d in grid.depths])
    ax.set_yticks(range(len(grid.lengths)), [str(n) for n in grid.lengths])
    ax.set_xlabel("needle depth (% of the haystack before it)")
    ax.set_ylabel("context length (tokens)")
    ax.set_title(title)
    for i in range(len(grid.lengths)):
        for j in range(len(grid.depths)):
            value = grid.accuracy[i, j].item()
            color = "white" if value < 0.2 or value > 0.8 else "black"  # dark ends of RdYlGn
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=9, color=color)
    if trained_length is not None:
        inside = [i for i, n in enumerate(grid.lengths) if n <= trained_length]
        if inside and inside[-1] < len(grid.lengths) - 1:
            ax.axhline(inside[-1] + 0.5, color="black", ls="--", lw=1.2)
    ax.figure.colorbar(image, ax=ax, label="exact-match accuracy (fraction of trials)")
    return ax
