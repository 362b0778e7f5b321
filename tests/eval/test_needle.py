"""The needle-in-a-haystack harness: placement by depth and length, exact scoring, the grid."""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch

from demos.eval.needle import (
    NeedleGrid,
    build_haystack,
    first_answer,
    needle_grid,
    needle_position,
    plot_needle_grid,
    score_text,
    score_tokens,
)

matplotlib.use("Agg")

FILLER, NEEDLE, QUESTION = [1, 2, 3], [90, 91, 92], [95, 91]


@pytest.mark.parametrize("length", [6, 7, 20, 101])
@pytest.mark.parametrize("depth", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_the_needle_sits_at_its_depth_and_the_question_last(length, depth):
    ids, position = build_haystack(FILLER, NEEDLE, QUESTION, length, depth)
    assert ids.shape == (length,) and ids.dtype == torch.long
    assert ids[position : position + 3].tolist() == NEEDLE
    assert ids[-2:].tolist() == QUESTION
    room = length - 5  # filler tokens around the needle
    before = position  # filler tokens before it: depth's share of the room, rounded
    assert abs(before - depth * room) <= 0.5
    rest = ids[:position].tolist() + ids[position + 3 : -2].tolist()
    assert rest == (FILLER * length)[:room]  # the filler, cycled, untouched by the needle


def test_depth_zero_is_first_and_one_is_just_before_the_question():
    first, _ = build_haystack(FILLER, NEEDLE, QUESTION, 12, 0.0)
    last, _ = build_haystack(FILLER, NEEDLE, QUESTION, 12, 1.0)
    assert first[:3].tolist() == NEEDLE
    assert last[-5:].tolist() == NEEDLE + QUESTION


def test_the_depth_moves_monotonically_with_the_fraction():
    positions = [needle_position(100, d / 20, 3, 2) for d in range(21)]
    assert positions == sorted(positions) and positions[0] == 0 and positions[-1] == 95


@pytest.mark.parametrize("depth", [-0.1, 1.01, math.nan, "0.5", True, None])
def test_a_depth_outside_zero_one_is_refused(depth):
    with pytest.raises(ValueError, match="depth"):
        build_haystack(FILLER, NEEDLE, QUESTION, 20, depth)


@pytest.mark.parametrize("length", [5, 4, 0, -3])
def test_a_length_too_short_for_needle_and_question_is_refused(length):
    with pytest.raises(ValueError, match="length"):
        build_haystack(FILLER, NEEDLE, QUESTION, length, 0.5)


@pytest.mark.parametrize(
    "filler, needle, question",
    [([], NEEDLE, QUESTION), (FILLER, [], QUESTION), (FILLER, NEEDLE, "ab"), (FILLER, [-1], [2])],
)
def test_empty_or_negative_tokens_are_refused(filler, needle, question):
    with pytest.raises(ValueError):
        build_haystack(filler, needle, question, 20, 0.5)


@pytest.mark.parametrize(
    "generated, score",
    [
        (" 7341.", 1.0),
        ("7341", 1.0),
        ("\n 7341, as stated", 1.0),
        (" 73410", 0.0),
        (" 17341", 0.0),
        (" 1234. No wait, 7341", 0.0),
        ("", 0.0),
        ("...", 0.0),
    ],
)
def test_text_scoring_is_an_exact_first_answer(generated, score):
    assert score_text(generated, "7341") == score


def test_text_scoring_refuses_bad_input():
    with pytest.raises(ValueError, match="expected"):
        score_text("7341", "")
    with pytest.raises(ValueError, match="string"):
        score_text(7341, "7341")
    with pytest.raises(ValueError, match="string"):
        first_answer(None)


def test_token_scoring_needs_every_token():
    predicted = torch.tensor([[5, 6], [5, 7], [4, 6]])
    expected = torch.tensor([[5, 6], [5, 6], [5, 6]])
    assert score_tokens(predicted, expected).tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="shape"):
        score_tokens(predicted[:, :1], expected)
    with pytest.raises(ValueError, match="integer"):
        score_tokens(predicted.float(), expected.float())


def _batch(length, depth, n, gen):
    """Needle [90, key, value], question [95, key]; filler from 0..9."""
    keys = torch.randint(20, 30, (n,), generator=gen)
    values = torch.randint(40, 50, (n,), generator=gen)
    rows = [
        build_haystack(
            torch.randint(0, 10, (length,), generator=gen).tolist(),
            [90, int(k), int(v)], [95, int(k)], length, depth,
        )[0]
        for k, v in zip(keys, values, strict=True)
    ]  # fmt: skip
    return torch.stack(rows), values[:, None]


def _oracle(max_length):
    """Finds the key after the needle marker and answers its value, within ``max_length`` tokens
    of the end; beyond that it answers a value that is never right."""

    def answer(ids, k):
        out = []
        for row in ids.tolist():
            window = row[-max_length:]
            found = [window[i + 2] for i in range(len(window) - 2) if window[i] == 90]
            out.append(found[:1] or [0])
        return torch.tensor(out)

    return answer


def test_the_grid_scores_an_oracle_exactly():
    grid = needle_grid(_batch, _oracle(10_000), [8, 16, 32], [0.0, 0.5, 1.0], trials=6)
    assert isinstance(grid, NeedleGrid)
    assert grid.accuracy.shape == (3, 3) and torch.equal(grid.accuracy, torch.ones(3, 3).double())


def test_the_grid_sees_a_limited_reach():
    """An oracle that sees only the last 20 tokens finds needles near the end of long contexts."""
    grid = needle_grid(_batch, _oracle(20), [16, 64], [0.0, 1.0], trials=4)
    assert grid.at(16, 0.0) == 1.0 and grid.at(64, 1.0) == 1.0
    assert grid.at(64, 0.0) == 0.0


def test_the_grid_refuses_bad_input():
    for bad in (dict(trials=0), dict(depths=[1.5]), dict(lengths=[]), dict(lengths=[0])):
        args = dict(lengths=[8], depths=[0.5], trials=2) | bad
        with pytest.raises(ValueError):
            needle_grid(_batch, _oracle(100), **args)


def test_the_heat_map_draws_every_cell_and_the_trained_line():
    grid = NeedleGrid([8, 16, 32], [0.0, 1.0], torch.tensor([[1, 1], [1, 0.5], [0, 0.25]]), 4)
    ax = plot_needle_grid(grid, trained_length=16)
    assert len(ax.texts) == 6 and ax.get_xlabel().startswith("needle depth")
    assert ax.get_ylabel() == "context length (tokens)" and ax.get_title()
    assert [line.get_ydata()[0] for line in ax.lines] == [1.5]
    colors = {t.get_text(): t.get_color() for t in ax.texts}  # readable on the dark ends
    assert colors["1.00"] == colors["0.00"] == "white" and colors["0.50"] == "black"
    matplotlib.pyplot.close("all")
