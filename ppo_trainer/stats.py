"""Small statistics for multi-seed comparisons (used by ``ppo-compare``).

Why its own module: the numbers in the results tables must be checkable by hand, so every
estimator here is a few lines of numpy with a unit test on known values.

- ``t_interval(values)``: mean and the half-width of the two-sided Student-t confidence interval
  over seeds (``t_{1-a/2, n-1} * s / sqrt(n)``, ``s`` the sample standard deviation, ddof=1).
- ``welch_interval(a, b)``: mean difference ``mean(b) - mean(a)`` and its Welch t half-width
  (unequal variances, Welch-Satterthwaite degrees of freedom).
- ``curve_band(curves)``: per-point mean and t-interval of ``(num_seeds, T)`` curves.
- ``forward_fill``: a training curve has NaN in updates where no episode ended; carry the last
  finished episode's value forward (leading NaNs stay NaN).
- ``normalized_auc``: trapezoid area under a curve divided by the x span, i.e. the average value
  over training, in the curve's own units.
- ``first_crossing``: the first x at which a curve reaches a threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def t_critical(df: float, confidence: float = 0.95) -> float:
    """Two-sided Student-t critical value ``t_{(1+confidence)/2, df}``."""
    from scipy import stats  # scipy comes with jax

    return float(stats.t.ppf(0.5 + confidence / 2.0, df))


def t_interval(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """``(mean, half_width)`` over the finite values; half-width NaN with fewer than 2."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan
    sem = float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, t_critical(x.size - 1, confidence) * sem


def welch_interval(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> tuple[float, float]:
    """``(mean(b) - mean(a), half_width)`` of the Welch t-interval; NaN width if undefined."""
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if x.size == 0 or y.size == 0:
        return math.nan, math.nan
    diff = float(y.mean() - x.mean())
    if x.size < 2 or y.size < 2:
        return diff, math.nan
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se2 = vx + vy
    if se2 == 0.0:
        return diff, 0.0
    df = se2**2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    return diff, t_critical(df, confidence) * math.sqrt(se2)


def verdict(diff: float, half_width: float) -> str:
    """``win`` / ``loss`` when the interval of ``b - a`` excludes 0, else ``tie``."""
    if not math.isfinite(diff) or not math.isfinite(half_width):
        return "n/a"
    if diff - half_width > 0:
        return "win"
    if diff + half_width < 0:
        return "loss"
    return "tie"


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


def curve_band(
    curves: np.ndarray, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-point ``(mean, lo, hi)`` over seeds (axis 0), ignoring NaN; lo = hi = mean if n < 2."""
    c = np.asarray(curves, dtype=float)
    n = np.isfinite(c).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.where(np.isfinite(c), c, 0.0).sum(axis=0)
        mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        sq = np.where(np.isfinite(c), (c - mean) ** 2, 0.0).sum(axis=0)
        sd = np.sqrt(sq / np.maximum(n - 1, 1))
    half = np.zeros_like(mean)
    for k in np.unique(n):
        if k >= 2:
            half[n == k] = t_critical(int(k) - 1, confidence) * sd[n == k] / math.sqrt(k)
    return mean, mean - half, mean + half


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
