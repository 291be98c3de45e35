"""The suite's report: a markdown table per env and optimizer, aggregate normalized scores
(IQM and mean with stratified-bootstrap intervals, probability of improvement), one small plot
per env. Everything is recomputed from the raw JSON, so ``--replot`` needs no training."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ppo_trainer.app import stats
from ppo_trainer.app.compare.analysis import as_array
from ppo_trainer.app.compare.report import draw_curves, fmt, interval, jsonable
from ppo_trainer.app.suite import raw as raw_store
from ppo_trainer.config import TrainConfig
from ppo_trainer.errors import ConfigError
from ppo_trainer.presets import preset_config

CONFIDENCE = 0.95
# Fields that name a run's output, not how it trained.
NOT_SETTINGS = ("run_dir", "run_name", "sources")
PROFILE_PLOT = "performance_profile.png"
PROFILE_POINTS = 101  # thresholds tau on the profile's x axis


def effective(config: dict[str, Any]) -> dict[str, Any]:
    """A recorded config with the fields added since it ran at their defaults, and Muon's
    ``aux_adam_lr`` None (meaning: the run's ``lr``) spelled out."""
    full = {**TrainConfig().to_dict(), **config}
    # JSON has no tuples: a recorded obs_drop [1, 3] is today's (1, 3)
    full = {k: tuple(v) if isinstance(v, list) else v for k, v in full.items()}
    kwargs = dict(full["optimizer_kwargs"])
    if "aux_adam_lr" in kwargs and kwargs["aux_adam_lr"] is None:
        kwargs["aux_adam_lr"] = full["lr"]
    full["optimizer_kwargs"] = kwargs
    return full


def own_flags(config: dict[str, Any], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a row's own command set on top of its preset: the fields its ``config.json`` marks
    as command-line flags (``ppo-suite --add-runs``), else the suite's seeds and ``overrides``."""
    sources = config.get("sources")
    if sources:
        names = {k for k, v in sources.items() if v == "flag" and "." not in k}
        return {k: config[k] for k in sorted(names - {"env", "optimizer", *NOT_SETTINGS})}
    return {"num_seeds": config["num_seeds"], "seed": config["seed"], **(overrides or {})}


def preset_drift(env: str, optimizer: str, config: dict[str, Any],
                 overrides: dict[str, Any] | None = None) -> dict[str, tuple[Any, Any]]:
    """Every setting where a recorded row differs from what its own command gives with today's
    presets: name -> (recorded, today). Empty: the row is the current preset."""
    flags = own_flags(config, overrides)
    today = effective(preset_config(env, optimizer=optimizer, **flags).to_dict())
    ran = effective(config)
    return {k: (ran[k], today[k]) for k in today
            if k not in NOT_SETTINGS and ran.get(k) != today[k]}


def row_settings(env: str, optimizer: str, config: dict[str, Any],
                 overrides: dict[str, Any] | None = None) -> str:
    """The settings cell of a row; ``n/a`` for a row without a preset or a full config."""
    try:
        return settings_note(preset_drift(env, optimizer, config, overrides))
    except (ConfigError, KeyError):
        return "n/a"


def settings_note(drift: dict[str, tuple[Any, Any]]) -> str:
    """The table's "settings" cell: current, or what the row ran with that the preset no
    longer has."""
    if not drift:
        return "preset"
    return "earlier preset: " + ", ".join(f"{k} {v[0]} (now {v[1]})" for k, v in drift.items())


def seed_scores(run: dict[str, Any]) -> np.ndarray:
    """Each seed's mean greedy return over its evaluation episodes."""
    return np.array([np.nan if v is None else v for v in run["eval"]["per_seed_mean_return"]],
                    dtype=float)


def steps_to(run: dict[str, Any], target: float | None) -> float:
    """First env step at which the mean-over-seeds training return reaches ``target``."""
    if target is None:
        return math.nan
    curves = stats.forward_fill(as_array(run["curves"]["charts/episodic_return"]))
    mean = stats.curve_band(curves, CONFIDENCE, reps=10)[0]
    return stats.first_crossing(np.asarray(run["global_step"]), mean, target)


def normalized(score: np.ndarray, ref: dict[str, Any], random: float) -> np.ndarray:
    """``(score - random) / (reference - random)``: 0 is the random policy, 1 the reference."""
    return (score - random) / (ref["reference"] - random)


def aggregate(raw: dict[str, dict[str, Any]], refs: dict[str, dict[str, Any]],
              optimizers: list[str]) -> dict[str, Any]:
    """IQM, mean and optimality gap of normalized scores over envs x seeds per optimizer, and
    P(b > a)."""
    envs = [e for e in raw if e in refs and "reference" in refs[e]
            and all(o in raw[e]["runs"] for o in optimizers)]
    scores = {o: [normalized(seed_scores(raw[e]["runs"][o]), refs[e], raw[e]["random"]["mean"])
                  for e in envs] for o in optimizers}
    out: dict[str, Any] = {"envs": envs, "per_optimizer": {}}
    for o in optimizers:
        iqm = stats.stratified_bootstrap_ci(scores[o], stats.iqm, CONFIDENCE, reps=2000)
        mean = stats.stratified_bootstrap_ci(scores[o], lambda x: float(np.mean(x)), CONFIDENCE,
                                             reps=2000)
        gap = stats.stratified_bootstrap_ci(scores[o], stats.optimality_gap, CONFIDENCE,
                                            reps=2000)
        out["per_optimizer"][o] = {"iqm": iqm, "mean": mean, "optimality_gap": gap}
    if len(optimizers) == 2:
        a, b = optimizers
        out["probability_of_improvement"] = {
            "of": b, "over": a,
            "estimate": stats.probability_of_improvement(scores[b], scores[a], CONFIDENCE)}
    pairs = recurrent_pairs(optimizers)
    if pairs:  # the memory tasks: each recurrent row against its optimizer's feed-forward row
        out["recurrent_over_feed_forward"] = {
            arm: {"over": base, "estimate": stats.probability_of_improvement(
                scores[arm], scores[base], CONFIDENCE)} for arm, base in pairs}
    return out


def recurrent_pairs(keys: list[str]) -> list[tuple[str, str]]:
    """``(recurrent row, feed-forward row)`` of each optimizer that has both: ``("adam+gru",
    "adam")`` (``run.run_key``)."""
    return [(k, k.split("+", 1)[0]) for k in keys if "+" in k and k.split("+", 1)[0] in keys]


def recurrent_lines(raw: dict[str, dict[str, Any]], keys: list[str]) -> list[str]:
    """The memory tasks' table: per env and optimizer, the feed-forward and the recurrent
    policy's return with its interval, and whether the recurrent interval lies above."""
    pairs = recurrent_pairs(keys)
    if not pairs:
        return []
    conf = int(100 * CONFIDENCE)
    lines = ["", "## Recurrent vs feed-forward", "",
             f"Each row: the same env, optimizer, settings and seeds, with `--rnn none` and with "
             f"a recurrent cell; *above*: the recurrent policy's {conf}% interval lies entirely "
             "above the feed-forward one's.", "",
             "| env | optimizer | feed-forward | recurrent | above |", "|---|---|---|---|---|"]
    for env, data in raw.items():
        for arm, base in pairs:
            if arm not in data["runs"] or base not in data["runs"]:
                continue
            cis = [stats.bootstrap_ci(seed_scores(data["runs"][k]), CONFIDENCE)
                   for k in (base, arm)]
            d = 2 if max(abs(c[0]) for c in cis) < 10 else 1
            lines.append(f"| {env} | {arm} | {interval(*cis[0], d)} | {interval(*cis[1], d)} | "
                         f"{'yes' if cis[1][1] > cis[0][2] else 'no'} |")
    return lines


def aggregate_lines(agg: dict[str, Any], conf: int) -> list[str]:
    """The report's aggregate section: IQM, mean and optimality gap per row kind, the
    probabilities of improvement, the performance profile."""
    lines = ["## Aggregate (normalized scores)", "",
              f"Envs with a reference: {len(agg['envs'])}; runs pooled over envs and seeds; "
              f"{conf}% stratified-bootstrap intervals (Agarwal et al. 2021).", "",
              "| optimizer | IQM | mean | optimality gap (lower is better) |", "|---|---|---|---|"]
    for o, v in agg["per_optimizer"].items():
        lines.append(f"| {o} | {interval(*v['iqm'], 2)} | {interval(*v['mean'], 2)} | "
                     f"{interval(*v['optimality_gap'], 2)} |")
    if "probability_of_improvement" in agg:
        p = agg["probability_of_improvement"]
        lines += ["", f"Probability of improvement P({p['of']} > {p['over']}): "
                  f"{interval(*p['estimate'], 2)}"]
    lines += ["", f"Performance profile (fraction of runs above each normalized score, "
              f"{conf}% stratified-bootstrap bands): ![performance profile](plots/{PROFILE_PLOT})"]
    for arm, p in agg.get("recurrent_over_feed_forward", {}).items():
        lines += ["", f"Probability of improvement P({arm} > {p['over']}): "
                  f"{interval(*p['estimate'], 2)}"]
    return lines


def format_report(raw: dict[str, dict[str, Any]], refs: dict[str, dict[str, Any]],
                  optimizers: list[str]) -> tuple[str, dict[str, Any]]:
    """The markdown page and the summary dict."""
    agg = aggregate(raw, refs, optimizers)
    conf = int(100 * CONFIDENCE)
    commands = raw_store.commands(raw)
    groups = ", ".join(sorted({refs[e].get("group", "") for e in raw if e in refs} - {""}))
    lines = [f"# PPO on the suite ({groups or 'no group'}): " + " vs ".join(optimizers), "",
             "Commands: " + "; ".join(f"`{c}`" for c in commands), "",
             f"Final greedy return: each seed's mean over its evaluation episodes, then the mean "
             f"over seeds with a {conf}% percentile-bootstrap interval. gymnax-blines: the return "
             "of its published PPO checkpoint; *steps to it*: first env step at which the mean "
             "training return (stochastic policy) reaches it. Normalized score: (return - "
             "random policy) / (reference - random policy).", ""]
    lines += aggregate_lines(agg, conf)
    lines += recurrent_lines(raw, optimizers)
    header = ["env", "optimizer", f"greedy return [{conf}% CI]", "per seed", "gymnax-blines",
              "steps to it", "env steps/seed", "env steps/s", "wall s", "learning rate",
              "settings"]
    lines += ["", "## Per env", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for env, data in raw.items():
        ref = refs.get(env, {})
        for o in optimizers:
            run = data["runs"].get(o)
            if run is None:
                continue
            scores = seed_scores(run)
            d = 2 if np.nanmax(np.abs(scores)) < 10 else 1
            cfg = run["config"]
            name = cfg.get("optimizer", o.split("+", 1)[0])  # the row key: adam, adam+gru
            lr = cfg["optimizer_kwargs"].get("muon_lr", cfg["lr"]) if name == "muon" else cfg["lr"]
            own = {**(ref.get("overrides") or {}),
                   **({"rnn": cfg["rnn"]} if cfg.get("rnn", "none") != "none" else {})}
            lines.append("| " + " | ".join([
                env, o, interval(*stats.bootstrap_ci(scores, CONFIDENCE), d),
                ", ".join(fmt(s, d) for s in scores), fmt(ref.get("blines"), d),
                fmt(steps_to(run, ref.get("blines")), 0), f"{cfg['total_timesteps']:,}",
                fmt(run["steps_per_s"], 0), fmt(run["wall_s"], 0), f"{lr:g}",
                row_settings(env, name, cfg, own or ref.get("overrides"))]) + " |")
    lines += ["", "*settings*: `preset` where the row is what its command trains with the current "
              "presets (`ppo_trainer/presets.toml`); otherwise the settings it ran with that the "
              "preset has since changed (the row stays valid for those settings).", "",
              "Plots: `plots/<env>.png` (training return, mean and band over seeds; dashed: "
              "gymnax-blines). Raw data: `raw/<env>.json`.", ""]
    lines += [f"![{env}](plots/{env}.png)" for env in raw]
    return "\n".join(lines) + "\n", jsonable(agg)


def write_report(out: Path, suite: dict[str, dict[str, Any]], order: list[str]) -> str:
    """``results.md``, ``summary.json`` and ``plots/<env>.png`` in ``out`` from every
    ``out/raw/<env>.json`` (the suite's envs first, then any others; the optimizers of ``order``
    first, then any others); returns the page."""
    raw_dir = out / "raw"
    # an env-suite id (SUITE/ID) is a folder and a file: raw/jumanji/Snake-v1.json
    files = ({p.relative_to(raw_dir).with_suffix("").as_posix(): p
              for p in raw_dir.rglob("*.json")} if raw_dir.is_dir() else {})
    if not files:
        raise ConfigError(f"no raw results in {raw_dir}; run without --replot first")
    envs = [*suite, *sorted(set(files) - set(suite))]
    raw = {env: json.loads(files[env].read_text()) for env in envs if env in files}
    text, summary = format_report(raw, suite, raw_store.optimizers(raw, order))
    for env, data in raw.items():
        plot_env(data, suite.get(env, {}), out / "plots" / f"{env}.png")
    plot_performance_profile(normalized_scores(raw, suite, raw_store.optimizers(raw, order))[1],
                             out / "plots" / PROFILE_PLOT)
    (out / "results.md").write_text(text)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return text


def _save(fig: Any, ax: Any, path: Path, legend: str) -> None:
    """The suite plots' common finish: small ticks, a light grid, the legend, the file."""
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc=legend)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def plot_env(data: dict[str, Any], ref: dict[str, Any], path: Path) -> None:
    """One small plot: training return per optimizer vs env steps, gymnax-blines dashed."""
    fig = Figure(figsize=(4.5, 3.0))
    ax = fig.subplots()
    for o, run in data["runs"].items():
        draw_curves(ax, np.asarray(run["global_step"], dtype=float),
                    stats.forward_fill(as_array(run["curves"]["charts/episodic_return"])), o,
                    CONFIDENCE)
    if ref.get("blines") is not None:
        ax.axhline(ref["blines"], color="k", linestyle="--", linewidth=1, label="gymnax-blines")
    ax.set_title(data["env"], fontsize=10)
    ax.set_xlabel("env steps (per seed)", fontsize=8)
    ax.set_ylabel("training return", fontsize=8)
    _save(fig, ax, path, legend="best")


def normalized_scores(raw: dict[str, dict[str, Any]], refs: dict[str, dict[str, Any]],
                      optimizers: list[str]) -> tuple[list[str], dict[str, list[np.ndarray]]]:
    """The envs with a reference that every optimizer ran, and per optimizer each env's
    per-seed normalized scores (the runs :func:`aggregate` pools)."""
    envs = [e for e in raw if e in refs and "reference" in refs[e]
            and all(o in raw[e]["runs"] for o in optimizers)]
    return envs, {o: [normalized(seed_scores(raw[e]["runs"][o]), refs[e], raw[e]["random"]["mean"])
                      for e in envs] for o in optimizers}


def performance_profile(scores: list[np.ndarray], taus: np.ndarray,
                        confidence: float = CONFIDENCE, reps: int = 2000,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fraction, lo, hi)`` per threshold of ``taus``: the fraction of runs whose normalized
    score is above it (each env's fraction, averaged over envs: rliable's run-score
    distribution, which weighs envs equally when they have equal seeds), with a
    stratified-bootstrap band (each env's runs resampled on their own). A seed with no finished
    episode (NaN) counts as below every threshold.

    Written here rather than imported from rliable: rliable brings arch, pandas and seaborn for
    what is, on top of the stratified bootstrap :mod:`ppo_trainer.app.stats` already has, a
    mean of comparisons."""
    tasks = [np.asarray(s, dtype=float).ravel() for s in scores]
    taus = np.asarray(taus, dtype=float)

    def profile(runs: list[np.ndarray]) -> np.ndarray:
        return np.mean([np.mean(r[:, None] > taus[None, :], axis=0) for r in runs], axis=0)

    rng = np.random.default_rng(seed)
    samples = np.stack([profile([t[rng.integers(0, t.size, t.size)] for t in tasks])
                        for _ in range(reps)])
    lo, hi = np.quantile(samples, [(1 - confidence) / 2, (1 + confidence) / 2], axis=0)
    return profile(tasks), lo, hi


def profile_taus(scores: dict[str, list[np.ndarray]], points: int = PROFILE_POINTS) -> np.ndarray:
    """The profile's thresholds: from 0 (or the lowest score) to 1 (or the highest)."""
    pooled = np.concatenate([np.ravel(s) for runs in scores.values() for s in runs])
    pooled = pooled[np.isfinite(pooled)]
    low = min(0.0, float(pooled.min())) if pooled.size else 0.0
    high = max(1.0, float(pooled.max())) if pooled.size else 1.0
    return np.linspace(low, high, points)


def plot_performance_profile(scores: dict[str, list[np.ndarray]], path: Path) -> None:
    """Every optimizer's performance profile on one plot, as rliable draws it: the fraction of
    runs (envs x seeds) with a normalized score above tau, with its bootstrap band."""
    if not scores or not next(iter(scores.values())):
        return
    taus = profile_taus(scores)
    fig = Figure(figsize=(5.0, 3.4))
    ax = fig.subplots()
    for o, runs in scores.items():
        frac, lo, hi = performance_profile(runs, taus)
        (line,) = ax.plot(taus, frac, label=f"{o} ({len(runs)} envs)")
        ax.fill_between(taus, lo, hi, alpha=0.2, color=line.get_color(), linewidth=0)
    ax.axvline(1.0, color="k", linestyle=":", linewidth=1)
    ax.set_xlabel(r"normalized score $\tau$ (1: the reference return)", fontsize=8)
    ax.set_ylabel(r"fraction of runs with score > $\tau$", fontsize=8)
    ax.set_ylim(0, 1.02)
    _save(fig, ax, path, legend="lower left")


def smoothed_return(run: dict[str, Any]) -> np.ndarray:
    """The mean-over-seeds training return (stochastic policy, episodes finished in each
    update, carried forward over updates without one), as a trailing mean over 2% of the
    updates, so a single lucky update does not count as reaching a score."""
    curves = stats.forward_fill(as_array(run["curves"]["charts/episodic_return"]))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN leading updates
        mean = np.nanmean(curves, axis=0)
    window = max(1, mean.size // 50)
    kernel = np.ones(window)
    finite = np.isfinite(mean)
    total = np.convolve(np.where(finite, mean, 0.0), kernel)[: mean.size]
    count = np.convolve(finite.astype(float), kernel)[: mean.size]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def time_to_fraction(data: dict[str, Any], optimizers: list[str],
                     fraction: float = 0.9) -> dict[str, Any]:
    """Sample efficiency and wall clock of one env's runs: the target is ``fraction`` of the
    way from the untrained policy's training return (the first update's mean over seeds,
    averaged over the optimizers) to the better final smoothed training return
    (:func:`smoothed_return`, its last value), and per optimizer the first env step (per seed)
    at which its smoothed training return reaches it and the training seconds (after compile)
    it took to get there (each run's own clock, interpolated over its updates). ``target`` is
    None where no optimizer's final return beats the start. The untrained policy's return,
    not the random policy's of the normalized scores: it is the same (stochastic, training)
    measurement as the curve, where the random policy's comes from the evaluation loop."""
    curves = {o: smoothed_return(data["runs"][o]) for o in optimizers if o in data["runs"]}
    firsts = [c[np.isfinite(c)][0] for c in curves.values() if np.isfinite(c).any()]
    start = float(np.mean(firsts)) if firsts else math.nan
    finals = {o: float(c[-1]) for o, c in curves.items()}
    best = max(finals.values(), default=math.nan)
    out: dict[str, Any] = {"start": start, "final": finals, "target": None, "runs": {}}
    if not (math.isfinite(best) and math.isfinite(start)) or best <= start:
        return out
    target = start + fraction * (best - start)
    out["target"] = target
    for o, curve in curves.items():
        run = data["runs"][o]
        steps = np.asarray(run["global_step"], dtype=float)
        step = stats.first_crossing(steps, curve, target)
        seconds = (float(np.interp(step, steps, np.asarray(run["wall_clock_s"], dtype=float)))
                   if math.isfinite(step) and "wall_clock_s" in run else math.nan)
        out["runs"][o] = {"steps": step, "seconds": seconds, "run_s": run.get("run_s"),
                          "total_timesteps": run["config"]["total_timesteps"]}
    return out
