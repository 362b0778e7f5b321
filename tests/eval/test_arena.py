"""Chatbot Arena ratings: Bradley–Terry against scikit-learn's logistic regression, recovery of known
strengths within the bootstrap interval, online Elo by hand, order (in)dependence, ties, bad logs."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from demos.eval.arena import (
    bootstrap_bradley_terry,
    bradley_terry,
    bradley_terry_sklearn,
    check_battles,
    confidence_intervals,
    online_elo,
    simulate_battles,
)

STRENGTHS = {"ant": 1250.0, "bee": 1120.0, "cat": 1060.0, "dog": 1000.0, "eel": 930.0, "fox": 790.0}


def centred(strengths: dict[str, float], at: float = 1000.0) -> dict[str, float]:
    mean = sum(strengths.values()) / len(strengths)
    return {name: value - mean + at for name, value in strengths.items()}


def sklearn_aggregated(battles, scale=400.0, base=10.0):
    """A second reference construction: one ±1 row per distinct (a, b, outcome), counts as sample
    weights, a tie split into a half-weighted win and a half-weighted loss."""
    from sklearn.linear_model import LogisticRegression

    models = sorted({x for a, b, _ in battles for x in (a, b)})
    col = {name: j for j, name in enumerate(models)}
    counts: dict[tuple[str, str, str], int] = {}
    for battle in battles:
        counts[battle] = counts.get(battle, 0) + 1
    X, y, w = [], [], []
    for (a, b, winner), count in counts.items():
        x = np.zeros(len(models))
        x[col[a]], x[col[b]] = 1.0, -1.0
        labels = {"model_a": [(1, 1.0)], "model_b": [(0, 1.0)]}.get(winner, [(1, 0.5), (0, 0.5)])
        for label, share in labels:
            X.append(x)
            y.append(label)
            w.append(count * share)
    fit = LogisticRegression(
        C=np.inf, fit_intercept=False, solver="lbfgs", tol=1e-12, max_iter=10000
    )
    fit.fit(np.array(X), np.array(y), sample_weight=np.array(w))
    coef = fit.coef_[0] - fit.coef_[0].mean()
    return {name: 1000.0 + scale * coef[j] / math.log(base) for j, name in enumerate(models)}


@pytest.mark.parametrize(
    "n_battles, tie_rate, seed", [(300, 0.0, 0), (2000, 0.3, 1), (5000, 0.6, 2)]
)
def test_bradley_terry_equals_sklearn_logistic_regression(n_battles, tie_rate, seed):
    battles = simulate_battles(STRENGTHS, n_battles, tie_rate=tie_rate, seed=seed)
    ours = bradley_terry(battles)
    for reference in (bradley_terry_sklearn(battles), sklearn_aggregated(battles)):
        assert set(reference) == set(ours) == set(STRENGTHS)
        ours_t = torch.tensor([ours[m] for m in sorted(ours)], dtype=torch.float64)
        ref_t = torch.tensor([reference[m] for m in sorted(ours)], dtype=torch.float64)
        assert ours_t.std() > 10  # the ratings are spread: the comparison is not of constants
        torch.testing.assert_close(ours_t, ref_t, rtol=0, atol=1e-5)  # Elo points


def test_regularised_sklearn_default_differs():
    """scikit-learn's default (L2, C = 1) shrinks the ratings: a different estimate, not rounding."""
    battles = simulate_battles(STRENGTHS, 300, tie_rate=0.2, seed=3)
    ours, shrunk = bradley_terry(battles), bradley_terry_sklearn(battles, C=1.0)
    assert max(abs(ours[m] - shrunk[m]) for m in ours) > 0.5
    spread = lambda r: max(r.values()) - min(r.values())  # noqa: E731
    assert spread(shrunk) < spread(ours)


def test_bootstrap_interval_covers_the_true_strengths():
    battles = simulate_battles(STRENGTHS, 20_000, tie_rate=0.3, seed=0)
    models, samples = bootstrap_bradley_terry(battles, rounds=300, seed=0)
    assert samples.shape == (300, len(STRENGTHS)) and torch.isfinite(samples).all()
    intervals = confidence_intervals(samples, models)
    truth = centred(STRENGTHS)
    for name, (lo, mid, hi) in intervals.items():
        assert lo < mid < hi
        assert lo <= truth[name] <= hi, (name, lo, truth[name], hi)
        assert hi - lo < 40  # 20 000 battles pin each rating to within tens of points
    point = bradley_terry(battles)
    assert max(abs(point[m] - truth[m]) for m in truth) < 15


def test_bradley_terry_ignores_order_elo_does_not():
    battles = simulate_battles(STRENGTHS, 3000, tie_rate=0.2, seed=4)
    shuffled = battles[:]
    random.Random(0).shuffle(shuffled)
    for other in (battles[::-1], shuffled):
        a, b = bradley_terry(battles), bradley_terry(other)
        assert max(abs(a[m] - b[m]) for m in a) < 1e-9
        e, f = online_elo(battles), online_elo(other)
        assert max(abs(e[m] - f[m]) for m in e) > 1.0  # Elo points


def test_online_elo_by_hand():
    # equal ratings: expected score 1/2, so the winner gains K/2 and the loser loses K/2
    assert online_elo([("a", "b", "model_a")]) == {"a": 1002.0, "b": 998.0}
    assert online_elo([("a", "b", "model_b")], k=32) == {"a": 984.0, "b": 1016.0}
    assert online_elo([("a", "b", "tie")]) == {"a": 1000.0, "b": 1000.0}
    # second battle: a at 1002 vs b at 998, b wins: E_a = 1 / (1 + 10 ** (-4 / 400))
    expected_a = 1.0 / (1.0 + 10.0 ** (-4.0 / 400.0))
    got = online_elo([("a", "b", "model_a"), ("b", "a", "model_a")])
    assert got["a"] == pytest.approx(1002.0 - 4.0 * expected_a, abs=1e-12)
    assert got["a"] + got["b"] == pytest.approx(2000.0, abs=1e-12)  # Elo is zero-sum


def test_online_elo_is_zero_sum_and_starts_at_init():
    battles = simulate_battles(STRENGTHS, 500, tie_rate=0.3, seed=5)
    ratings = online_elo(battles, init_rating=1500.0)
    assert sum(ratings.values()) == pytest.approx(1500.0 * len(ratings), abs=1e-9)


def test_a_tie_is_two_half_battles():
    battles = simulate_battles(STRENGTHS, 800, tie_rate=0.5, seed=6)
    assert any(w == "tie" for _, _, w in battles)
    doubled = []
    for a, b, w in battles:
        doubled += [(a, b, "model_a"), (a, b, "model_b")] if w == "tie" else [(a, b, w)] * 2
    a, b = bradley_terry(battles), bradley_terry(doubled)
    assert max(abs(a[m] - b[m]) for m in a) < 1e-9
    # "tie (bothbad)" counts as a tie
    bothbad = [(a_, b_, "tie (bothbad)" if w == "tie" else w) for a_, b_, w in battles]
    c = bradley_terry(bothbad)
    assert max(abs(a[m] - c[m]) for m in a) < 1e-12


def test_anchor_shifts_without_changing_gaps():
    battles = simulate_battles(STRENGTHS, 1000, seed=7)
    free, pinned = bradley_terry(battles), bradley_terry(battles, anchor=("dog", 1114.0))
    assert pinned["dog"] == pytest.approx(1114.0, abs=1e-9)
    assert sum(free.values()) / len(free) == pytest.approx(1000.0, abs=1e-9)
    gaps = {m: pinned[m] - free[m] for m in free}
    assert max(gaps.values()) - min(gaps.values()) < 1e-9
    with pytest.raises(ValueError, match="anchor model 'yak'"):
        bradley_terry(battles, anchor=("yak", 1000.0))


def test_simulated_log_follows_the_strengths():
    battles = simulate_battles({"x": 1200.0, "y": 1000.0}, 20_000, tie_rate=0.4, seed=8)
    assert battles == simulate_battles({"x": 1200.0, "y": 1000.0}, 20_000, tie_rate=0.4, seed=8)
    score = [
        1.0 if w == "model_a" else 0.5 if w == "tie" else 0.0 for a, b, w in battles if a == "x"
    ]
    p = 1.0 / (1.0 + 10.0 ** (-200.0 / 400.0))
    assert abs(sum(score) / len(score) - p) < 0.015  # x's expected score is p, ties included
    assert 0.1 < sum(w == "tie" for *_, w in battles) / len(battles) < 0.4


@pytest.mark.parametrize(
    "battles, words",
    [
        ([], "battles is empty"),
        ([("a", "a", "model_a")], "names 'a' twice"),
        ([("a", "b", "a")], "winner 'a' must be one of"),
        ([("a", "b", "draw")], "winner 'draw'"),
        ([("a", "b")], "must be a triple"),
        ([("a", "b", 1)], "must be a triple"),
        ([("a", "b", "model_a"), ("b", "c", "model_a"), ("b", "c", "bothbad")], "battle 2"),
    ],
)
def test_malformed_battles_are_refused(battles, words):
    for fn in (check_battles, online_elo, bradley_terry):
        with pytest.raises(ValueError, match=words):
            fn(battles)


def test_no_maximum_likelihood_when_a_model_never_lost():
    battles = [("a", "b", "model_a"), ("a", "c", "model_a"), ("b", "c", "model_a")]
    battles += [("c", "b", "model_a")]
    with pytest.raises(ValueError, match="'a' scored 2 of 2"):
        bradley_terry(battles)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(n_battles=0), "n_battles"),
        (dict(tie_rate=1.5), "tie_rate"),
        (dict(tie_rate=float("nan")), "tie_rate"),
    ],
)
def test_simulate_battles_refuses_bad_arguments(kwargs, words):
    with pytest.raises(ValueError, match=words):
        simulate_battles(STRENGTHS, **{"n_battles": 10, **kwargs})
    with pytest.raises(ValueError, match="at least two models"):
        simulate_battles({"solo": 1000.0}, 10)
