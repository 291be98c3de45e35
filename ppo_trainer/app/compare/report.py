"""What a comparison writes to ``--out``: plots, the markdown table, the raw JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ppo_trainer.app import stats
from ppo_trainer.app.compare import JSON_NAME, SKIPPED_FIELDS, STEPS_PLOT, TABLE_NAME, TIME_PLOT
from ppo_trainer.app.compare.analysis import as_array, label, metric_keys, summarize

FEW_SEEDS = 4  # up to this many seeds, every seed's curve is drawn (faint) under the mean
NOT_SETTINGS = SKIPPED_FIELDS  # run-directory flags: left out of the "shared settings" line


def fmt(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:,.{digits}f}"


def interval(mean: float, lo: float, hi: float, digits: int = 1) -> str:
    """``mean [lo, hi]`` (just the mean when the interval is undefined or empty)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo == hi:
        return fmt(mean, digits)
    return f"{fmt(mean, digits)} [{fmt(lo, digits)}, {fmt(hi, digits)}]"


def _digits(values: Sequence[float]) -> int:
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    return 1 if not finite or max(finite) >= 10 else 2


def format_table(data: dict[str, Any], summary: dict[str, Any]) -> str:
    """The markdown report: settings, one table per metric, per-seed finals, timing notes."""
    runs = data["runs"]
    labels = list(runs)
    first = runs[labels[0]]["config"]
    conf = int(round(100 * data.get("confidence", 0.95)))
    lines = [f"# {first['env']}: {' vs '.join(labels)}", ""]
    lines += [f"Command: `{data.get('command', '')}`", ""]
    shared = {k: v for k, v in first.items() if k not in NOT_SETTINGS}
    lines += ["Settings (shared): " + ", ".join(f"{k}={v}" for k, v in shared.items()
                                                if v not in (None, {})), ""]
    for lb in labels:
        cfg = runs[lb]["config"]
        extra = ", ".join(f"{k}={v}" for k, v in cfg.get("optimizer_kwargs", {}).items())
        lines.append(f"- `{lb}`: optimizer={runs[lb]['optimizer']}, lr={cfg.get('lr')}"
                     + (f", {extra}" if extra else ""))
    lines.append("")
    for key in metric_keys(runs):
        s = summary[key]
        rows = s["rows"]
        d = _digits([r["final_mean"] for r in rows.values()])
        lines += [f"## {label(key)} (`{key}`)", "",
                  f"Seeds: {rows[labels[0]]['num_seeds']}; intervals: {conf}% percentile "
                  "bootstrap over seeds; final = each seed's mean over the last "
                  f"{100 * data.get('final_window', 0.05):g}% of updates; AUC = mean over "
                  f"training (area / env steps); threshold = {fmt(s['threshold'], 2)}.", ""]
        base = s["baseline"]
        header = ["optimizer", f"final [{conf}% CI]", "AUC [CI]",
                  f"env steps to {fmt(s['threshold'], d)}", f"final vs {base}", f"AUC vs {base}",
                  "env steps/s", "compile s"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for lb, r in rows.items():
            run = runs[lb]
            reach = f"{fmt(r['steps_to_threshold'], 0)} ({r['seeds_reaching']}/{r['num_seeds']} seeds)"
            vs = ["baseline", "baseline"]
            if lb != base:
                vs = [f"{interval(r[f'{w}_diff'], r[f'{w}_diff_lo'], r[f'{w}_diff_hi'], d)} "
                      f"({r[f'{w}_verdict']})" for w in ("final", "auc")]
            lines.append("| " + " | ".join([
                f"`{lb}`", interval(r["final_mean"], r["final_lo"], r["final_hi"], d),
                interval(r["auc_mean"], r["auc_lo"], r["auc_hi"], d), reach, *vs,
                fmt(run["steps_per_s"], 0), fmt(run["compile_s"], 1)]) + " |")
        lines += ["", "Per-seed final values: " + "; ".join(
            f"`{lb}` " + ", ".join(fmt(v, d) for v in r["final_per_seed"])
            for lb, r in rows.items()), ""]
    lines += ["## Timing", "",
              "env steps/s counts all seeds together and excludes compilation (reported "
              "separately); wall-clock curves use " + ", ".join(
                  sorted({runs[lb]["wall_clock_source"] for lb in labels})) + " time stamps.", ""]
    host = data.get("host", {})
    lines.append(f"Host: {host.get('cpu_count', '?')} CPU cores, jax backend "
                 f"{host.get('backend', '?')}; load average (1/5/15 min) before/after each run: "
                 + "; ".join(f"`{lb}` {runs[lb].get('load_before')} -> {runs[lb].get('load_after')}"
                             for lb in labels))
    lines += ["", f"![return vs env steps]({STEPS_PLOT})", "",
              f"![return vs wall-clock]({TIME_PLOT})", ""]
    return "\n".join(lines)


def smooth(curves: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` updates along the last axis (NaN-aware), for
    the plots only: per-update returns are noisy enough to hide the curves."""
    if window <= 1:
        return curves
    ok = np.isfinite(curves)
    kernel = np.ones(window)
    total = np.apply_along_axis(lambda r: np.convolve(r, kernel)[: r.size], -1,
                                np.where(ok, curves, 0.0))
    count = np.apply_along_axis(lambda r: np.convolve(r, kernel)[: r.size], -1, ok.astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def smoothing_window(num_updates: int) -> int:
    return max(1, num_updates // 100)


def draw_curves(ax: Any, x: np.ndarray, curves: np.ndarray, name: str,
                confidence: float) -> None:
    """Mean over seeds with its bootstrap band; every seed faintly when seeds are few."""
    curves = smooth(curves, smoothing_window(curves.shape[-1]))
    mean, lo, hi = stats.curve_band(curves, confidence)
    (line,) = ax.plot(x, mean, label=f"{name} (n={curves.shape[0]})")
    if curves.shape[0] <= FEW_SEEDS:
        for c in curves:
            ax.plot(x, c, color=line.get_color(), alpha=0.3, linewidth=0.8)
    if curves.shape[0] >= 2:
        ax.fill_between(x, lo, hi, alpha=0.2, color=line.get_color(), linewidth=0)


def plot(data: dict[str, Any], out: Path) -> list[Path]:
    """Both PNGs: per optimizer, the mean and its band vs env steps and vs wall-clock seconds."""
    runs = data["runs"]
    confidence = data.get("confidence", 0.95)
    keys = metric_keys(runs)
    env = next(iter(runs.values()))["config"]["env"]
    paths = []
    for name, xkey, xlabel in ((STEPS_PLOT, "global_step", "environment steps (per seed)"),
                               (TIME_PLOT, "wall_clock_s", "wall-clock seconds (after compile)")):
        fig = Figure(figsize=(6.5 * len(keys), 4.2))
        axes = fig.subplots(1, len(keys), squeeze=False)
        for ax, key in zip(axes[0], keys, strict=True):
            for lb, run in runs.items():
                if key in run["curves"]:
                    draw_curves(ax, np.asarray(run[xkey], dtype=float),
                                stats.forward_fill(as_array(run["curves"][key])), lb, confidence)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(label(key))
            ax.grid(alpha=0.3)
            ax.legend(loc="best")
        num_updates = len(next(iter(runs.values()))["global_step"])
        fig.suptitle(f"{env}: mean over seeds, {round(100 * confidence)}% bootstrap band\n"
                     f"thin lines: each seed (n <= {FEW_SEEDS}); moving average over "
                     f"{smoothing_window(num_updates)} update(s)", fontsize=10)
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        paths.append(out / name)
    return paths


def jsonable(x: Any) -> Any:
    """NaN/inf -> None and numpy -> Python, recursively, for strict JSON."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        return jsonable(x.item())
    return x


def unjsonable(x: Any) -> Any:
    """Inverse of :func:`jsonable` for summaries: None -> NaN."""
    if x is None:
        return math.nan
    if isinstance(x, dict):
        return {k: unjsonable(v) for k, v in x.items()}
    if isinstance(x, list):
        return [unjsonable(v) for v in x]
    return x


def write_report(data: dict[str, Any], out: Path) -> tuple[str, dict[str, Any]]:
    """Plots, results.md and curves.json (with the summary) from the raw run data."""
    summary = summarize(data["runs"], threshold=data.get("threshold_given"),
                        threshold_frac=data.get("threshold_frac", 0.9),
                        final_window=data.get("final_window", 0.05),
                        confidence=data.get("confidence", 0.95))
    summary = unjsonable(jsonable(summary))
    plot(data, out)
    table = format_table(data, summary)
    (out / TABLE_NAME).write_text(table)
    (out / JSON_NAME).write_text(json.dumps(jsonable({**data, "summary": summary})) + "\n")
    return table, summary
