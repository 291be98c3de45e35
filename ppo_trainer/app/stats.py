"""Statistics for multi-seed comparisons (``ppo-compare``, ``ppo-suite``).

Intervals are percentile bootstrap intervals over seeds: with the 2-5 seeds RL studies run, a
Student-t interval is dominated by its critical value (t = 12.7 for 2 seeds) and reaches far
outside anything the data can be; a bootstrap interval of a mean always lies within the range of
the data. Aggregates over several envs follow Agarwal et al. 2021 ("Deep RL at the edge of the
statistical precipice"): normalized scores, the interquartile mean (IQM: the mean of the middle
50% of all runs, ``scipy.stats.trim_mean(x, 0.25)``, as ``rliable.metrics.aggregate_iqm``) and a
stratified bootstrap (runs resampled within each env).

Written here rather than taken from ``rliable``: rliable 1.2.0 needs ``arch < 8``, and arch 7
fails to import with pandas 3 (``TypeError`` in ``deprecate_kwarg``); the two functions it would
give us are a few lines of numpy, checked against rliable (same point estimate; intervals within
Monte-Carlo error) in tests/test_stats.py.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

REPS = 5000


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    return x[np.isfinite(x)]


def bootstrap_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95,
                 reps: int = REPS, seed: int = 0) -> tuple[float, float, float]:
    """``(mean, lo, hi)``: the mean over the finite values and its percentile bootstrap
    interval (``lo = hi = mean`` for one value, all NaN for none)."""
    x = _finite(values)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, (reps, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return mean, float(lo), float(hi)


def bootstrap_diff_ci(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                      confidence: float = 0.95, reps: int = REPS,
                      seed: int = 0) -> tuple[float, float, float]:
    """``(mean(b) - mean(a), lo, hi)``, both groups resampled independently; NaN if undefined."""
    x, y = _finite(a), _finite(b)
    if x.size == 0 or y.size == 0:
        return math.nan, math.nan, math.nan
    diff = float(y.mean() - x.mean())
    if x.size < 2 or y.size < 2:
        return diff, math.nan, math.nan
    rng = np.random.default_rng(seed)
    dx = x[rng.integers(0, x.size, (reps, x.size))].mean(axis=1)
    dy = y[rng.integers(0, y.size, (reps, y.size))].mean(axis=1)
    lo, hi = np.quantile(dy - dx, [(1 - confidence) / 2, (1 + confidence) / 2])
    return diff, float(lo), float(hi)


def verdict(lo: float, hi: float) -> str:
    """``win`` / ``loss`` when the interval of ``b - a`` excludes 0, else ``tie``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "n/a"
    return "win" if lo > 0 else "loss" if hi < 0 else "tie"


def curve_band(curves: np.ndarray, confidence: float = 0.95, reps: int = 1000,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-point ``(mean, lo, hi)`` over seeds (axis 0): the bootstrap interval of the mean,
    ignoring NaN; it never leaves the per-point range of the data."""
    c = np.asarray(curves, dtype=float)
    ok = np.isfinite(c)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.where(ok, c, 0.0).sum(axis=0) / np.maximum(n, 1), np.nan)
    if c.shape[0] < 2:
        return mean, mean.copy(), mean.copy()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, c.shape[0], (reps, c.shape[0]))
    sample, mask = c[idx], ok[idx]  # (reps, seeds, T)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(mask, sample, 0.0).sum(axis=1) / mask.sum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        lo, hi = np.nanquantile(means, [(1 - confidence) / 2, (1 + confidence) / 2], axis=0)
    return mean, lo, hi


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean of all values (``rliable.metrics.aggregate_iqm``)."""
    return float(stats.trim_mean(np.asarray(scores, dtype=float), 0.25, axis=None))


def optimality_gap(scores: np.ndarray, threshold: float = 1.0) -> float:
    """How far the runs fall short of ``threshold`` on average, scores above it counting as
    it (``rliable.metrics.aggregate_optimality_gap``): lower is better."""
    return float(np.mean(threshold - np.minimum(np.asarray(scores, dtype=float), threshold)))


def stratified_bootstrap_ci(
    scores: Sequence[np.ndarray], statistic: Callable[[np.ndarray], float] = iqm,
    confidence: float = 0.95, reps: int = REPS, seed: int = 0,
) -> tuple[float, float, float]:
    """``(point, lo, hi)`` of ``statistic`` over the runs of several tasks pooled together;
    each bootstrap sample resamples the runs of every task separately (stratified), as
    ``rliable.library.get_interval_estimates`` does."""
    tasks = [np.asarray(s, dtype=float).ravel() for s in scores]
    point = statistic(np.concatenate(tasks))
    rng = np.random.default_rng(seed)
    samples = np.empty(reps)
    for r in range(reps):
        samples[r] = statistic(np.concatenate([t[rng.integers(0, t.size, t.size)] for t in tasks]))
    lo, hi = np.quantile(samples, [(1 - confidence) / 2, (1 + confidence) / 2])
    return point, float(lo), float(hi)


def probability_of_improvement(
    x_tasks: Sequence[np.ndarray], y_tasks: Sequence[np.ndarray], confidence: float = 0.95,
    reps: int = 2000, seed: int = 0,
) -> tuple[float, float, float]:
    """``(P(X > Y), lo, hi)``: per task the Mann-Whitney probability that a run of X beats a run
    of Y (ties count half), averaged over tasks, with a stratified-bootstrap interval (as
    ``rliable.metrics.probability_of_improvement``)."""
    def statistic(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray]) -> float:
        per_task = [float(np.mean((x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])))
                    for x, y in zip(xs, ys, strict=True)]
        return float(np.mean(per_task))

    xs = [np.asarray(x, dtype=float).ravel() for x in x_tasks]
    ys = [np.asarray(y, dtype=float).ravel() for y in y_tasks]
    point = statistic(xs, ys)
    rng = np.random.default_rng(seed)
    samples = [statistic([x[rng.integers(0, x.size, x.size)] for x in xs],
                         [y[rng.integers(0, y.size, y.size)] for y in ys]) for _ in range(reps)]
    lo, hi = np.quantile(samples, [(1 - confidence) / 2, (1 + confidence) / 2])
    return point, float(lo), float(hi)


def forward_fill(curve: np.ndarray) -> np.ndarray:
    """Replace NaN with the last finite value along the last axis (leading NaNs stay NaN)."""
    x = np.array(curve, dtype=float, copy=True)
    flat = x.reshape(-1, x.shape[-1])
    for row in flat:
        last = math.nan
        for i, v in enumerate(row):
            if math.isfinite(v):
                last = v
            else:
                row[i] = last
    return flat.reshape(x.shape)


def normalized_auc(x: np.ndarray, y: np.ndarray) -> float:
    """Trapezoid area under ``y(x)`` over the finite points, divided by their x span."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size == 0:
        return math.nan
    if x.size == 1 or x[-1] == x[0]:
        return float(y.mean())
    area = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))
    return area / float(x[-1] - x[0])


def first_crossing(x: np.ndarray, y: np.ndarray, threshold: float) -> float:
    """The first ``x`` with ``y >= threshold`` (NaN if never reached)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    hits = np.nonzero(np.isfinite(y) & (y >= threshold))[0]
    return float(x[hits[0]]) if hits.size else math.nan
