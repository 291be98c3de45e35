"""The learning curve: episodic return (and each env metric, e.g. Snake's apples) vs env steps.

The line is the mean over seeds, the band spans min..max over seeds. Updates in which no
episode ended (``null`` return) are skipped. Figures are drawn on a bare matplotlib
``Figure`` (no pyplot, no backend to choose), so plotting needs no display.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ppo_trainer.app.sinks import read_metrics

NOT_CURVES = ("charts/learning_rate", "charts/SPS", "charts/episodic_length")


def curve_series(rows: list[dict[str, Any]], key: str) -> tuple[np.ndarray, ...]:
    """(steps, mean, min, max) over seeds of ``key`` per update, skipping missing values."""
    by_update: dict[int, tuple[float, list[float]]] = {}
    for row in rows:
        value = row.get(key)
        if value is None or not math.isfinite(value):
            continue
        step, values = by_update.setdefault(row["update"], (row.get("global_step") or 0, []))
        values.append(value)
    updates = sorted(by_update)
    steps = np.array([by_update[u][0] for u in updates], dtype=float)
    vals = [np.array(by_update[u][1]) for u in updates]
    return (steps, np.array([v.mean() for v in vals]), np.array([v.min() for v in vals]),
            np.array([v.max() for v in vals]))


def plot_learning_curve(metrics_path: Path, out_path: Path, title: str = "") -> Path:
    """Write the PNG: one panel for the return, one per env metric (``charts/<info key>``)."""
    rows = read_metrics(metrics_path)
    keys = [("charts/episodic_return", "episodic return")]
    extra = sorted({k for r in rows for k, v in r.items() if k.startswith("charts/")
                    and k not in NOT_CURVES and k != keys[0][0] and v is not None})
    keys += [(k, k.split("/", 1)[1] + " at episode end") for k in extra]
    fig = Figure(figsize=(6 * len(keys), 4))
    axes = fig.subplots(1, len(keys), squeeze=False)
    for ax, (key, label) in zip(axes[0], keys, strict=True):
        steps, mean, lo, hi = curve_series(rows, key)
        ax.plot(steps, mean, label="mean over seeds")
        ax.fill_between(steps, lo, hi, alpha=0.25, label="min..max")
        ax.set_xlabel("environment steps (per seed)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    return Path(out_path)
