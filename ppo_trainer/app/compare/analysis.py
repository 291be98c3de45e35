"""Numbers of a comparison: per metric and optimizer, the final value, the area under the curve,
env steps to a threshold, and the difference to the baseline, each with a bootstrap interval
over seeds (``ppo_trainer.app.stats``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ppo_trainer.app import stats


def metric_keys(runs: dict[str, dict[str, Any]]) -> list[str]:
    """Curve keys present in any run: the return first, then env metrics, sorted."""
    keys = {k for run in runs.values() for k in run["curves"]}
    first = "charts/episodic_return"
    return ([first] if first in keys else []) + sorted(keys - {first})


def label(key: str) -> str:
    name = key.split("/", 1)[-1]
    return "episodic return" if name == "episodic_return" else f"{name} at episode end"


def as_array(rows: Any) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)


def summarize(runs: dict[str, dict[str, Any]], *, threshold: float | None = None,
              threshold_frac: float = 0.9, final_window: float = 0.05,
              confidence: float = 0.95) -> dict[str, Any]:
    """Per metric: threshold, baseline label, and a row per optimizer (see the module doc)."""
    labels = list(runs)
    out: dict[str, Any] = {}
    for key in metric_keys(runs):
        present = [lb for lb in labels if key in runs[lb]["curves"]]
        per: dict[str, Any] = {}
        for lb in present:
            steps = np.asarray(runs[lb]["global_step"], dtype=float)
            curves = stats.forward_fill(as_array(runs[lb]["curves"][key]))
            window = max(1, math.ceil(final_window * curves.shape[1]))
            tail = curves[:, -window:]
            final = np.array([np.mean(r[np.isfinite(r)]) if np.isfinite(r).any() else np.nan
                              for r in tail])
            auc = np.array([stats.normalized_auc(steps, c) for c in curves])
            mean_curve = stats.curve_band(curves, confidence)[0]
            per[lb] = {"steps": steps, "curves": curves, "final": final, "auc": auc,
                       "mean_curve": mean_curve}
        finals = [float(np.nanmean(per[lb]["final"])) if np.isfinite(per[lb]["final"]).any()
                  else math.nan for lb in present]
        starts = [c[np.isfinite(c)][0] for c in (per[lb]["mean_curve"] for lb in present)
                  if np.isfinite(c).any()]
        thr = threshold
        if thr is None or key != "charts/episodic_return":
            best = max((f for f in finals if math.isfinite(f)), default=math.nan)
            init = float(np.mean(starts)) if starts else math.nan
            thr = init + threshold_frac * (best - init)
        base = present[0]
        table = {}
        for lb in present:
            p = per[lb]
            fm, flo, fhi = stats.bootstrap_ci(p["final"], confidence)
            am, alo, ahi = stats.bootstrap_ci(p["auc"], confidence)
            reach = [stats.first_crossing(p["steps"], c, thr) for c in p["curves"]]
            row = {
                "final_mean": fm, "final_lo": flo, "final_hi": fhi,
                "final_per_seed": p["final"].tolist(),
                "auc_mean": am, "auc_lo": alo, "auc_hi": ahi,
                "steps_to_threshold": stats.first_crossing(p["steps"], p["mean_curve"], thr),
                "seeds_reaching": int(np.isfinite(reach).sum()), "num_seeds": len(reach),
            }
            if lb != base:
                for what in ("final", "auc"):
                    d, lo, hi = stats.bootstrap_diff_ci(per[base][what], p[what], confidence)
                    row[f"{what}_diff"], row[f"{what}_diff_lo"], row[f"{what}_diff_hi"] = d, lo, hi
                    row[f"{what}_verdict"] = stats.verdict(lo, hi)
            table[lb] = row
        out[key] = {"threshold": thr, "baseline": base, "rows": table}
    return out
