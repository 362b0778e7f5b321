"""Chatbot Arena's ratings from a log of pairwise battles: online Elo and Bradley–Terry.

A battle is one vote: two anonymous models answered one prompt and a person chose ``"model_a"``,
``"model_b"``, ``"tie"`` or ``"tie (bothbad)"``. The first leaderboard ran the online Elo update
over the votes in order; since December 2023 it fits the Bradley–Terry model to all votes at once
by maximum likelihood and reports bootstrap intervals. Both live here, with a simulator that draws
a log from known strengths so that the estimates can be checked against the truth.

Glossary: ``n`` battles, ``m`` models, ``r`` rounds of the bootstrap. Ratings are on the Elo
scale: a gap of ``scale`` (400) points is odds of ``base`` (10) to 1; ``theta`` is the natural-log
strength, ``rating = init_rating + scale * theta / ln(base)``.

References: chiang2024arena (Sec. 5, the Bradley–Terry model and its bootstrap), lmsys2023arena
(the online Elo leaderboard: K = 4, scale 400, base 10, initial 1000), lmsys2023leaderboard (the
move to Bradley–Terry), fastchat_rating_systems (the code both are read from).

Reference implementation: scikit-learn==1.9.1, ``sklearn.linear_model.LogisticRegression``
(``C=inf``, ``fit_intercept=False``) on the ±1 design matrix, as FastChat's ``compute_mle_elo``
(lm-sys/FastChat ``fastchat/serve/monitor/rating_systems.py`` at 0e6d3e4b, ``compute_elo``,
``compute_bt``, ``scale_and_offset``).

Over ~300 lines on purpose: one rating pipeline the chapter reads top to bottom (battles, simulator,
online Elo, Bradley–Terry, bootstrap intervals) and the scikit-learn fit it is checked against.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence

import torch

from demos.validation import check_finite_number, check_nonnegative_int, check_positive_int

#: A vote's outcome -> model_a's score: a tie counts as half a win for each side (FastChat's
#: ``preprocess_for_elo`` / ``preprocess_for_bt``), "tie (bothbad)" the same as "tie".
OUTCOMES = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}

Battle = tuple[str, str, str]  # (model_a, model_b, winner)


def check_battles(battles: Iterable[Battle]) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Validate a battle log and turn it into tensors.

    Args:
        battles: ``(model_a, model_b, winner)`` triples, ``winner`` one of :data:`OUTCOMES`.

    Returns:
        ``models`` (sorted names, ``m``), ``pairs`` ``(n, 2)`` int64 indices into ``models``,
        ``scores`` ``(n,)`` float64, model_a's score (1, 0.5 or 0).

    Raises:
        ValueError: an empty log, a battle that is not a triple of strings, a model named twice in
            one battle, or a winner label outside :data:`OUTCOMES`.
    """
    battles = list(battles) if not isinstance(battles, list) else battles
    if not battles:
        raise ValueError("battles is empty: a rating needs at least one battle")
    for i, battle in enumerate(battles):
        if (
            not isinstance(battle, tuple | list)
            or len(battle) != 3
            or not all(isinstance(x, str) for x in battle)
        ):
            raise ValueError(
                f"battle {i} ({battle!r}) must be a triple of strings (model_a, model_b, winner)"
            )
        a, b, winner = battle
        if a == b:
            raise ValueError(f"battle {i} names {a!r} twice: a battle is between two models")
        if winner not in OUTCOMES:
            raise ValueError(f"battle {i}: winner {winner!r} must be one of {sorted(OUTCOMES)}")
    models = sorted({name for a, b, _ in battles for name in (a, b)})
    index = {name: j for j, name in enumerate(models)}
    pairs = torch.tensor([[index[a], index[b]] for a, b, _ in battles], dtype=torch.int64)
    scores = torch.tensor([OUTCOMES[w] for _, _, w in battles], dtype=torch.float64)
    return models, pairs, scores


def simulate_battles(
    strengths: dict[str, float],
    n_battles: int,
    tie_rate: float = 0.0,
    seed: int = 0,
    scale: float = 400.0,
    base: float = 10.0,
) -> list[Battle]:
    """Draw a battle log from known strengths (Elo scale) under the Bradley–Terry model.

    Each battle pairs two distinct models uniformly at random (the Arena samples pairs, more or
    less uniformly at first) and model_a wins with probability
    ``p = 1 / (1 + base ** ((R_b - R_a) / scale))``. With ``tie_rate > 0`` a battle is a tie with
    probability ``tie_rate * 2 * min(p, 1 - p)`` (close models tie more often), and the rest of the
    mass is split so that model_a's expected score is still ``p``: the half-a-win count of ties
    leaves the Bradley–Terry estimate unbiased.

    Returns:
        ``n_battles`` triples ``(model_a, model_b, winner)``, reproducible from ``seed``.

    Raises:
        ValueError: fewer than two models, a non-finite strength, ``n_battles < 1``, or
            ``tie_rate`` outside [0, 1].
    """
    if not isinstance(strengths, dict) or len(strengths) < 2:
        raise ValueError(f"strengths must be a dict of at least two models, got {strengths!r}")
    for name, value in strengths.items():
        check_finite_number(f"strengths[{name!r}]", value)
    check_positive_int("n_battles", n_battles)
    check_finite_number("tie_rate", tie_rate, minimum=0.0)
    if tie_rate > 1:
        raise ValueError(f"tie_rate ({tie_rate!r}) must lie in [0, 1]")
    rng = random.Random(seed)
    names = list(strengths)
    battles = []
    for _ in range(n_battles):
        a, b = rng.sample(names, 2)
        p = 1.0 / (1.0 + base ** ((strengths[b] - strengths[a]) / scale))
        tie = tie_rate * 2.0 * min(p, 1.0 - p)
        u = rng.random()
        winner = "model_a" if u < p - tie / 2 else "tie" if u < p + tie / 2 else "model_b"
        battles.append((a, b, winner))
    return battles


def online_elo(
    battles: Sequence[Battle],
    k: float = 4.0,
    scale: float = 400.0,
    base: float = 10.0,
    init_rating: float = 1000.0,
) -> dict[str, float]:
    """Run the Elo update over the battles in the order given (the Arena's first leaderboard).

    For each battle, with ``E_a = 1 / (1 + base ** ((R_b - R_a) / scale))`` and model_a's score
    ``S_a`` (1, 0.5, 0): ``R_a += k (S_a - E_a)`` and ``R_b -= k (S_a - E_a)``. Every model starts
    at ``init_rating``. Defaults: K = 4, scale 400, base 10, 1000 [lmsys2023arena].

    Returns:
        ``{model: rating}`` in float64, models sorted by name. Depends on the order of ``battles``.

    Raises:
        ValueError: a malformed log (see :func:`check_battles`) or non-positive ``k``/``scale``.
    """
    check_finite_number("k", k, minimum=0.0)
    _check_scale(scale, base)
    check_finite_number("init_rating", init_rating)
    models, pairs, scores = check_battles(battles)
    ratings = [float(init_rating)] * len(models)
    for (a, b), s in zip(pairs.tolist(), scores.tolist(), strict=True):
        expected = 1.0 / (1.0 + base ** ((ratings[b] - ratings[a]) / scale))
        update = k * (s - expected)
        ratings[a] += update
        ratings[b] -= update
    return dict(zip(models, ratings, strict=True))


def _check_scale(scale: float, base: float) -> None:
    check_finite_number("scale", scale)
    check_finite_number("base", base)
    if scale <= 0 or base <= 1:
        raise ValueError(f"scale ({scale!r}) must be > 0 and base ({base!r}) > 1")


def pair_counts(
    pairs: torch.Tensor, scores: torch.Tensor, m: int, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum the battles per ordered pair: ``wins`` and ``games``, both ``(m, m)`` float64.

    ``wins[i, j]`` is model i's total score against j (a tie adds 0.5 to both sides), whatever
    seat (a or b) each sat in; ``games[i, j] = games[j, i]`` counts their battles. ``weights``
    ``(n,)`` counts each row that many times (default once).
    """
    w = torch.ones_like(scores) if weights is None else weights.to(torch.float64)
    wins = torch.zeros(m, m, dtype=torch.float64)
    games = torch.zeros(m, m, dtype=torch.float64)
    a, b = pairs[:, 0], pairs[:, 1]
    wins.index_put_((a, b), w * scores, accumulate=True)
    wins.index_put_((b, a), w * (1.0 - scores), accumulate=True)
    games.index_put_((a, b), w, accumulate=True)
    games.index_put_((b, a), w, accumulate=True)
    return wins, games


def fit_bradley_terry(
    wins: torch.Tensor,
    games: torch.Tensor,
    models: Sequence[str] | None = None,
    tol: float = 1e-12,
    max_iter: int = 100,
) -> torch.Tensor:
    """Maximise the Bradley–Terry log-likelihood by Newton's method; natural-log strengths.

    With ``p_ij = sigmoid(theta_i - theta_j)`` the log-likelihood of the counts is
    ``sum_ij wins_ij log p_ij`` (a tie, 0.5 to each side, is half a win and half a loss). Its
    gradient is ``g_i = sum_j (wins_ij - games_ij p_ij)`` and its Hessian ``-L`` with ``L`` the
    Laplacian of the weights ``games_ij p_ij (1 - p_ij)``. Only differences are identified; the
    step solves ``(L + 1 1^T / m) delta = g``, which keeps ``sum(theta) = 0``.

    Args:
        wins, games: ``(m, m)`` float64 from :func:`pair_counts`.
        models: the ``m`` names, for the error messages.

    Returns:
        ``theta`` ``(m,)`` float64 with ``sum(theta) = 0``.

    Raises:
        ValueError: the maximum likelihood does not exist (a model that won or lost every battle,
            or models in two groups that never met): Newton's steps do not settle.
    """
    m = wins.shape[0]
    names = list(models) if models is not None else [f"model {i}" for i in range(m)]
    scored, played = wins.sum(1), games.sum(1)
    for i in range(m):
        if played[i] == 0 or scored[i] == 0 or scored[i] == played[i]:
            raise ValueError(
                f"{names[i]!r} scored {scored[i].item():g} of {played[i].item():g}: with a model that "
                "never won or never lost, the Bradley–Terry maximum likelihood does not exist"
            )
    theta = torch.zeros(m, dtype=torch.float64)
    center = torch.full((m, m), 1.0 / m, dtype=torch.float64)
    for _ in range(max_iter):
        p = torch.sigmoid(theta[:, None] - theta[None, :])  # (m, m): P(i beats j)
        grad = (wins - games * p).sum(1)  # (m,)
        weight = games * p * (1.0 - p)  # (m, m)
        laplacian = torch.diag(weight.sum(1)) - weight  # (m, m)
        try:
            delta = torch.linalg.solve(laplacian + center, grad)
        except torch.linalg.LinAlgError:  # singular: groups of models that never met
            raise ValueError(
                "the battles split the models into groups that never met each other, so their "
                "relative strength (the Bradley–Terry maximum likelihood) does not exist"
            ) from None
        theta = theta + delta
        if delta.abs().max() < tol:
            return theta - theta.mean()
    raise ValueError(
        f"Newton's method did not converge in {max_iter} steps: the battles do not connect every "
        "model both ways, so the Bradley–Terry maximum likelihood does not exist"
    )


def to_elo_scale(
    theta: torch.Tensor,
    models: Sequence[str],
    scale: float = 400.0,
    base: float = 10.0,
    init_rating: float = 1000.0,
    anchor: tuple[str, float] | None = None,
) -> torch.Tensor:
    """Natural-log strengths ``(..., m)`` -> Elo-scale ratings ``init + scale * theta / ln(base)``.

    With ``theta`` summing to zero the ratings average ``init_rating``; ``anchor = (model,
    rating)`` shifts them so that ``model`` sits at ``rating`` (the Arena pins
    mixtral-8x7b-instruct-v0.1 at 1114 when it is in the log, FastChat's ``scale_and_offset``).
    """
    ratings = init_rating + scale * theta / math.log(base)
    if anchor is not None:
        name, value = anchor
        if name not in models:
            raise ValueError(f"anchor model {name!r} is not in the battles ({list(models)})")
        ratings = ratings + (value - ratings[..., [list(models).index(name)]])
    return ratings


def bradley_terry(
    battles: Sequence[Battle],
    scale: float = 400.0,
    base: float = 10.0,
    init_rating: float = 1000.0,
    anchor: tuple[str, float] | None = None,
) -> dict[str, float]:
    """Fit the Bradley–Terry model to all battles by maximum likelihood; Elo-scale ratings.

    ``P(a beats b) = 1 / (1 + base ** ((R_b - R_a) / scale))``, a tie counted as half a win for
    each side. The result does not depend on the order of the battles.

    Returns:
        ``{model: rating}`` (float64), models sorted by name, averaging ``init_rating`` unless
        ``anchor`` pins one model (see :func:`to_elo_scale`).

    Raises:
        ValueError: a malformed log (:func:`check_battles`), or one where the maximum likelihood
            does not exist (:func:`fit_bradley_terry`).
    """
    _check_scale(scale, base)
    models, pairs, scores = check_battles(battles)
    wins, games = pair_counts(pairs, scores, len(models))
    theta = fit_bradley_terry(wins, games, models)
    ratings = to_elo_scale(theta, models, scale, base, init_rating, anchor)
    return dict(zip(models, ratings.tolist(), strict=True))


def bootstrap_bradley_terry(
    battles: Sequence[Battle],
    rounds: int = 200,
    seed: int = 0,
    scale: float = 400.0,
    base: float = 10.0,
    init_rating: float = 1000.0,
    anchor: tuple[str, float] | None = None,
) -> tuple[list[str], torch.Tensor]:
    """Refit Bradley–Terry on ``rounds`` resamples of the battles (with replacement).

    Each round draws ``n`` battles from the log with replacement, as the Arena's bootstrap does
    (FastChat draws the counts of each distinct (pair, outcome) from a multinomial, which is the
    same distribution).

    Returns:
        ``models`` and ``ratings`` ``(r, m)`` float64, one row per round.

    Raises:
        ValueError: as :func:`bradley_terry`, or a resample where the maximum likelihood does not
            exist (too few battles for the number of models).
    """
    check_positive_int("rounds", rounds)
    check_nonnegative_int("seed", seed)
    _check_scale(scale, base)
    models, pairs, scores = check_battles(battles)
    # distinct (a, b, score) rows and which row each battle is: a resample only recounts them
    rows, which = torch.unique(
        torch.cat([pairs.double(), scores[:, None]], dim=1), dim=0, return_inverse=True
    )
    row_pairs, row_scores = rows[:, :2].long(), rows[:, 2]
    gen = torch.Generator().manual_seed(seed)
    n, fits = len(scores), []
    for r in range(rounds):
        pick = torch.randint(n, (n,), generator=gen)  # (n,) battles drawn with replacement
        counts = torch.bincount(which.index_select(0, pick), minlength=len(rows))
        wins, games = pair_counts(row_pairs, row_scores, len(models), counts)
        try:
            fits.append(fit_bradley_terry(wins, games, models))
        except ValueError as error:
            raise ValueError(
                f"bootstrap resample {r} of {rounds} (seed {seed}): {error}; a log of {n} battles "
                f"is too small to resample for {len(models)} models"
            ) from None
    theta = torch.stack(fits)  # (r, m)
    return models, to_elo_scale(theta, models, scale, base, init_rating, anchor)


def confidence_intervals(
    samples: torch.Tensor, models: Sequence[str], level: float = 0.95
) -> dict[str, tuple[float, float, float]]:
    """Percentile intervals of bootstrap ratings ``(r, m)``: ``{model: (lower, median, upper)}``.

    ``level = 0.95`` takes the 2.5 % and 97.5 % quantiles, as the Arena's leaderboard does.
    """
    check_finite_number("level", level)
    if not 0 < level < 1:
        raise ValueError(f"level ({level!r}) must lie strictly between 0 and 1")
    q = torch.tensor([(1 - level) / 2, 0.5, (1 + level) / 2], dtype=samples.dtype)
    lo, mid, hi = torch.quantile(samples, q, dim=0)  # each (m,)
    return {name: (lo[j].item(), mid[j].item(), hi[j].item()) for j, name in enumerate(models)}


def bradley_terry_sklearn(
    battles: Sequence[Battle],
    scale: float = 400.0,
    base: float = 10.0,
    init_rating: float = 1000.0,
    C: float = math.inf,
) -> dict[str, float]:
    """The reference: scikit-learn's logistic regression on the ±1 design matrix, as the Arena fits.

    One row per battle, duplicated as FastChat's ``compute_mle_elo`` does: a win for model_a is
    two rows with label 1, a win for model_b two rows with label 0, a tie one of each ("two half
    battles"). Row ``x`` has ``+ln(base)`` in model_a's column and ``-ln(base)`` in model_b's, no
    intercept, so the coefficients are base-``base`` strengths (``theta / ln(base)``). ``C = inf``
    is no regularisation (scikit-learn 1.8 deprecated ``penalty=None`` for it); ``C = 1`` is
    scikit-learn's default L2 penalty, which fschat 0.2.36's ``compute_elo_mle_with_tie`` ran.

    Returns:
        ``{model: rating}`` on the Elo scale, centred on ``init_rating`` as :func:`bradley_terry`.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    models, pairs, scores = check_battles(battles)
    n, m = len(scores), len(models)
    X = np.zeros((2 * n, m))  # (2n, m): every battle twice
    rows = np.arange(2 * n)
    both = np.concatenate([pairs.numpy(), pairs.numpy()])
    X[rows, both[:, 0]] = math.log(base)
    X[rows, both[:, 1]] = -math.log(base)
    s = scores.numpy()
    y = np.concatenate([s > 0.0, s == 1.0]).astype(np.float64)  # a tie: 1 in the first copy only
    fit = LogisticRegression(C=C, fit_intercept=False, solver="newton-cg", tol=1e-12, max_iter=1000)
    fit.fit(X, y)
    theta = torch.from_numpy(fit.coef_[0].copy()) * math.log(base)  # natural-log strengths
    ratings = to_elo_scale(theta - theta.mean(), models, scale, base, init_rating)
    return dict(zip(models, ratings.tolist(), strict=True))
