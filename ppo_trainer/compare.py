"""``ppo-compare``: several optimizers x several seeds on one env and network, with statistics.

Why: "does Muon help PPO?" needs the same env, network, budget and seed keys for every optimizer,
several seeds, and intervals rather than single curves. For each optimizer spec this builds the
``TrainConfig`` exactly as ``ppo-train`` would, trains all seeds in one program
(``jax.jit(jax.vmap(make_train(...)))(keys)``; the same keys for every optimizer, so the network
initialisations and env resets match), and writes to ``--out``:

- ``return_vs_steps.png``: mean over seeds with a 95% t-interval band, per optimizer (a second
  panel for ``charts/apples`` when the env reports apples, e.g. Snake);
- ``return_vs_time.png``: the same against wall-clock seconds after compilation;
- ``results.md``: final value, normalised area under the curve, env steps to a threshold, the
  difference to the first optimizer (Welch interval, win/tie/loss), steps/s and compile time;
- ``curves.json``: the raw per-seed curves, wall-clock stamps, configs and timings
  (``ppo-compare --replot --out DIR`` redraws the plots and table from it without training).

Optimizer specs: ``NAME`` or ``NAME:key=value,key=value`` where a key is any ``ppo-train`` flag
(e.g. ``adam:lr=2.5e-4``, ``muon:muon_lr=0.05``); the spec text is the label. Every other
``ppo-train`` training flag applies to all specs; an optimizer's own flags (``--muon-lr``) apply to
the specs of the optimizers that declare them. Unset plugin hyperparameters take the defaults their
plugin declares (Muon: ``muon_lr`` 0.02, its auxiliary Adam at ``--lr``).

Curves: ``charts/episodic_return`` is NaN in an update where no episode ended; each seed's curve
carries its last finished value forward. Wall clock: with ``--wall-clock callback`` (default) a
``jax.debug.callback`` stamps ``time.perf_counter()`` after every update (the last seed's call);
``linear`` spreads the measured run time evenly over the updates instead (use it on GPU, where a
host callback per update costs a device sync).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from plugins import OptimizerError
from ppo_trainer import stats
from ppo_trainer.cli import (
    FIELD_CHOICES,
    GROUP_TITLES,
    OneLineParser,
    add_option,
    flag,
    normalize_argv,
    validate,
)
from ppo_trainer.config import TrainConfig
from ppo_trainer.errors import CLIError

PROG = "ppo-compare"
JSON_NAME = "curves.json"
TABLE_NAME = "results.md"
STEPS_PLOT = "return_vs_steps.png"
TIME_PLOT = "return_vs_time.png"
METRICS = (("charts/episodic_return", "episodic return"), ("charts/apples", "apples per episode"))
# ppo-train flags that manage a single run's directory, checkpoints, evaluation or W&B.
RUN_ONLY_FIELDS = ("run_dir", "run_name", "save_freq", "eval_freq", "eval_episodes", "wandb",
                   "wandb_project", "wandb_entity", "resume")
SKIPPED_FIELDS = ("optimizer", "optimizer_kwargs", *RUN_ONLY_FIELDS)
COMPARE_DEFAULTS: dict[str, Any] = {"num_seeds": 4}
_PLUGIN = "opt__"


@dataclasses.dataclass(frozen=True)
class Spec:
    """One compared optimizer: its label (the spec text), registry name and overrides."""

    label: str
    name: str
    overrides: tuple[tuple[str, str], ...]


def parse_spec(text: str) -> Spec:
    """``NAME`` or ``NAME:key=value,key=value`` -> Spec (values stay strings until parsed)."""
    name, _, rest = text.partition(":")
    if not name:
        raise CLIError(f"optimizer spec {text!r}: missing optimizer name")
    pairs = []
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise CLIError(f"optimizer spec {text!r}: expected key=value, got {item!r}")
        pairs.append((key.strip().replace("-", "_"), value.strip()))
    return Spec(text, name, tuple(pairs))


def _train_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(TrainConfig)
            if f.name not in SKIPPED_FIELDS and f.metadata.get("group") != "internal"]


def _add_train_flags(parser: argparse.ArgumentParser, hyperparams: Sequence[Any]) -> None:
    """Every ppo-train training flag (from TrainConfig) and the given plugin flags."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for field in _train_fields():
        group_name = field.metadata.get("group", "ppo")
        if group_name not in groups:
            groups[group_name] = parser.add_argument_group(GROUP_TITLES.get(group_name, group_name))
        default = COMPARE_DEFAULTS.get(field.name, field.default)
        type_name = field.type if isinstance(field.type, str) else field.type.__name__
        choices = field.metadata.get("choices") or FIELD_CHOICES.get(field.name)
        add_option(groups[group_name], field.name, type_name, default,
                   field.metadata.get("help", ""), choices)
    if hyperparams:
        group = parser.add_argument_group("optimizer hyperparameters (declared by their plugins; "
                                          "each applies to the optimizers declaring it)")
        for hp in hyperparams:
            type_name = hp.type.__name__ + (" | None" if hp.default is None else "")
            add_option(group, _PLUGIN + hp.name, type_name, hp.default, hp.help,
                       getattr(hp, "choices", None), flag_name=hp.name)


def build_parser(hyperparams: Sequence[Any] = ()) -> OneLineParser:
    """The ppo-compare parser: its own options plus the training flags of ppo-train."""
    parser = OneLineParser(
        prog=PROG, allow_abbrev=False,
        description="Train the same env and network with several optimizers x seeds (seeds "
        "vmapped) and write plots with 95%% confidence bands, a markdown table and the raw "
        "curves to --out.",
        epilog="Optimizer spec: NAME or NAME:key=value,... (e.g. adam:lr=2.5e-4 "
        "muon:muon_lr=0.05); the spec is the label. Other flags are ppo-train's.")
    own = parser.add_argument_group("comparison")
    own.add_argument("--optimizers", nargs="+", default=["adam", "muon"], metavar="SPEC",
                     help="optimizer specs to compare; the first is the baseline (default: adam muon)")
    own.add_argument("--out", required=True, help="output folder (created)")
    own.add_argument("--threshold", type=float, default=None,
                     help="return for 'steps to threshold' (default: see --threshold-frac)")
    own.add_argument("--threshold-frac", type=float, default=0.9,
                     help="threshold = initial + FRAC x (best final mean - initial) (default: 0.9)")
    own.add_argument("--final-window", type=float, default=0.05,
                     help="final value = a seed's mean over this last fraction of updates "
                     "(default: 0.05)")
    own.add_argument("--confidence", type=float, default=0.95, help="interval level (default: 0.95)")
    own.add_argument("--wall-clock", choices=("callback", "linear"), default="callback",
                     help="per-update time stamps via jax.debug.callback, or the run time spread "
                     "linearly over updates (default: callback)")
    own.add_argument("--replot", action="store_true",
                     help="redraw plots and table from --out/curves.json without training")
    _add_train_flags(parser, hyperparams)
    return parser


def _registry() -> Any:
    import warnings

    from plugins import get_registry

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        registry = get_registry()
    for message in getattr(registry, "warnings", ()):
        print(f"{PROG}: warning: {message}", file=sys.stderr)
    return registry


def _reject_run_flags(argv: Sequence[str]) -> None:
    for token in argv:
        if not token.startswith("--"):
            continue
        name = token[2:].partition("=")[0].replace("-", "_")
        name = name[3:] if name.startswith("no_") else name
        if name in RUN_ONLY_FIELDS:
            raise CLIError(f"{flag(name)} is a ppo-train run flag; ppo-compare trains in memory "
                           "and writes only to --out")
        if name in ("optimizer", "use_muon"):
            raise CLIError(f"{flag(name)}: use --optimizers SPEC [SPEC ...] in ppo-compare")


class _SpecParser(OneLineParser):
    """Parses one spec's ``key=value`` overrides; errors name the spec."""

    def __init__(self, label: str) -> None:
        super().__init__(prog=PROG, add_help=False, allow_abbrev=False)
        self.label = label

    def error(self, message: str) -> NoReturn:
        raise CLIError(f"optimizer spec {self.label!r}: {message}")


def _reject_foreign_flags(argv: Sequence[str], registry: Any, union: dict[str, Any],
                          labels: list[str]) -> None:
    """A flag of a registered optimizer that is not compared: say whose flag it is."""
    owners: dict[str, list[str]] = {}
    for name in registry.names():
        for hp in registry.get(name).hyperparams:
            owners.setdefault(hp.name, []).append(name)
    for token in argv:
        name = token[2:].partition("=")[0].replace("-", "_") if token.startswith("--") else ""
        name = name[3:] if name.startswith("no_") and name[3:] in owners else name
        if name in owners and name not in union:
            raise CLIError(f"{flag(name)} is a hyperparameter of {', '.join(owners[name])}, which "
                           f"is not among --optimizers {' '.join(labels)}")


@dataclasses.dataclass
class Request:
    """What the command line asked for: one config per spec, plus the comparison options."""

    specs: list[Spec]
    configs: dict[str, TrainConfig]
    options: argparse.Namespace
    argv: list[str]


def parse_args(argv: Sequence[str] | None = None) -> Request:
    """Parse the command line into one validated ``TrainConfig`` per optimizer spec."""
    args = normalize_argv(sys.argv[1:] if argv is None else argv)
    _reject_run_flags(args)
    pre = OneLineParser(prog=PROG, add_help=False, allow_abbrev=False)
    pre.add_argument("--optimizers", nargs="+", default=["adam", "muon"])
    pre.add_argument("--replot", action="store_true")
    known, _ = pre.parse_known_args(args)
    specs = [parse_spec(s) for s in known.optimizers]
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise CLIError(f"--optimizers lists a spec twice: {' '.join(labels)}")
    registry = _registry()
    infos = {s.name: registry.get(s.name) for s in specs}  # unknown name: one-line registry error
    union: dict[str, Any] = {}
    for info in infos.values():
        for hp in info.hyperparams:
            union.setdefault(hp.name, hp)
    _reject_foreign_flags(args, registry, union, labels)
    namespace = vars(build_parser(list(union.values())).parse_args(args))
    options = argparse.Namespace(**{k: namespace.pop(k) for k in
                                    ("optimizers", "out", "threshold", "threshold_frac",
                                     "final_window", "confidence", "wall_clock", "replot")})
    if not 0 < options.final_window <= 1:
        raise CLIError(f"--final-window must be in (0, 1], got {options.final_window}")
    if not 0 < options.confidence < 1:
        raise CLIError(f"--confidence must be in (0, 1), got {options.confidence}")
    plugin_given = {k[len(_PLUGIN):]: namespace.pop(k) for k in list(namespace)
                    if k.startswith(_PLUGIN)}
    common = {**COMPARE_DEFAULTS, **namespace}
    configs = {}
    for spec in specs:
        info = infos[spec.name]
        spec_parser = _SpecParser(spec.label)
        _add_train_flags(spec_parser, info.hyperparams)
        over = vars(spec_parser.parse_args([f"--{k.replace('_', '-')}={v}"
                                            for k, v in spec.overrides]))
        declared = {hp.name for hp in info.hyperparams}
        kwargs = {k: v for k, v in plugin_given.items() if k in declared}
        kwargs.update({k[len(_PLUGIN):]: over.pop(k) for k in list(over) if k.startswith(_PLUGIN)})
        kwargs = registry.validate(spec.name, **kwargs)
        config = TrainConfig(**{**common, **over}, optimizer=spec.name, optimizer_kwargs=kwargs)
        try:
            validate(config)
        except CLIError as exc:
            raise CLIError(f"{spec.label}: {exc}") from None
        configs[spec.label] = config
    shapes = {(c.env, c.network, c.num_envs, c.num_steps, c.total_timesteps)
              for c in configs.values()}
    if len(shapes) > 1:
        print(f"{PROG}: warning: the specs differ in env/network/budget; curves are still "
              "plotted against env steps", file=sys.stderr)
    return Request(specs, configs, options, list(args))


# --------------------------------------------------------------------------------- training
def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run_spec(config: TrainConfig, wall_clock: str = "callback",
             log: Any = None) -> dict[str, Any]:
    """Train ``config.num_seeds`` seeds of one optimizer in one program; curves and timings."""
    import jax

    from ppo_trainer.envs import make_env
    from ppo_trainer.optim import make_optimizer
    from ppo_trainer.ppo import make_train

    try:
        env, env_params = make_env(config)
        tx, lr_schedule = make_optimizer(config)
    except ValueError as exc:  # unknown env, env params, plugin errors
        raise CLIError(str(exc).splitlines()[0]) from None
    num_updates = config.num_updates
    stamps = np.full(num_updates, np.nan)

    def stamp(update_step: Any, _metrics: Any) -> None:
        i = int(np.asarray(update_step).reshape(-1)[-1]) - 1
        if 0 <= i < num_updates:
            stamps[i] = time.perf_counter()

    train = make_train(config, env, env_params, tx, lr_schedule=lr_schedule,
                       progress_fn=stamp if wall_clock == "callback" else None)
    keys = jax.random.split(jax.random.PRNGKey(config.seed), config.num_seeds)
    load_before = _loadavg()
    t0 = time.perf_counter()
    compiled = jax.jit(jax.vmap(train)).lower(keys).compile()
    compile_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    _, metrics = compiled(keys)
    metrics = jax.device_get(metrics)
    run_s = time.perf_counter() - t1
    if wall_clock == "callback" and np.isfinite(stamps).all():
        wall = stamps - t1
    else:
        wall = run_s * np.arange(1, num_updates + 1) / num_updates
        wall_clock = "linear"
    total_steps = num_updates * config.batch_size * config.num_seeds
    curves = {key: np.asarray(metrics[key], dtype=float).tolist()
              for key, _ in METRICS if key in metrics}
    if log:
        log(f"{config.optimizer}: compiled in {compile_s:.1f} s, trained {config.num_seeds} seeds "
            f"x {num_updates} updates in {run_s:.1f} s ({total_steps / run_s:,.0f} steps/s)")
    return {
        "optimizer": config.optimizer,
        "config": config.to_dict(),
        "compile_s": compile_s,
        "run_s": run_s,
        "steps_per_s": total_steps / run_s,
        "wall_clock_source": wall_clock,
        "load_before": load_before,
        "load_after": _loadavg(),
        "global_step": np.asarray(metrics["global_step"])[0].astype(float).tolist(),
        "wall_clock_s": wall.tolist(),
        "curves": curves,
    }


# --------------------------------------------------------------------------------- analysis
def _array(rows: Any) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)


def summarize(runs: dict[str, dict[str, Any]], *, threshold: float | None = None,
              threshold_frac: float = 0.9, final_window: float = 0.05,
              confidence: float = 0.95) -> dict[str, Any]:
    """Per metric and optimizer: final value, AUC, steps to threshold, difference to baseline."""
    labels = list(runs)
    out: dict[str, Any] = {}
    for key, _ in METRICS:
        present = [lb for lb in labels if key in runs[lb]["curves"]]
        if not present:
            continue
        per: dict[str, Any] = {}
        for lb in present:
            steps = np.asarray(runs[lb]["global_step"], dtype=float)
            curves = stats.forward_fill(_array(runs[lb]["curves"][key]))
            window = max(1, math.ceil(final_window * curves.shape[1]))
            with np.errstate(invalid="ignore"), _quiet():
                final = np.nanmean(curves[:, -window:], axis=1)
            auc = np.array([stats.normalized_auc(steps, c) for c in curves])
            mean_curve = stats.curve_band(curves, confidence)[0]
            per[lb] = {"steps": steps, "curves": curves, "final": final, "auc": auc,
                       "mean_curve": mean_curve}
        finals = [stats.t_interval(per[lb]["final"], confidence)[0] for lb in present]
        starts = [c[np.isfinite(c)][0] for c in (per[lb]["mean_curve"] for lb in present)
                  if np.isfinite(c).any()]
        thr = threshold
        if thr is None or key != METRICS[0][0]:
            best = max((f for f in finals if math.isfinite(f)), default=math.nan)
            init = float(np.mean(starts)) if starts else math.nan
            thr = init + threshold_frac * (best - init)
        base = present[0]
        table = {}
        for lb in present:
            p = per[lb]
            fm, fh = stats.t_interval(p["final"], confidence)
            am, ah = stats.t_interval(p["auc"], confidence)
            reach = [stats.first_crossing(p["steps"], c, thr) for c in p["curves"]]
            row = {
                "final_mean": fm, "final_ci": fh, "final_per_seed": p["final"].tolist(),
                "auc_mean": am, "auc_ci": ah,
                "steps_to_threshold": stats.first_crossing(p["steps"], p["mean_curve"], thr),
                "seeds_reaching": int(np.isfinite(reach).sum()), "num_seeds": len(reach),
            }
            if lb != base:
                for what in ("final", "auc"):
                    d, h = stats.welch_interval(per[base][what], p[what], confidence)
                    row[f"{what}_diff"], row[f"{what}_diff_ci"] = d, h
                    row[f"{what}_verdict"] = stats.verdict(d, h)
            table[lb] = row
        out[key] = {"threshold": thr, "baseline": base, "rows": table}
    return out


class _quiet:
    """Silence numpy's 'mean of empty slice' for all-NaN seeds (reported as NaN)."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


def _fmt(x: float, digits: int = 1) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:,.{digits}f}"


def _pm(mean: float, half: float, digits: int = 1) -> str:
    return _fmt(mean, digits) + ("" if not math.isfinite(half) else f" ± {_fmt(half, digits)}")


def _digits(values: Sequence[float]) -> int:
    finite = [abs(v) for v in values if math.isfinite(v)]
    return 1 if not finite or max(finite) >= 10 else 2


def format_table(data: dict[str, Any], summary: dict[str, Any]) -> str:
    """The markdown report: settings, one table per metric, per-seed finals, timing notes."""
    runs = data["runs"]
    labels = list(runs)
    first = runs[labels[0]]["config"]
    conf = int(round(100 * data.get("confidence", 0.95)))
    lines = [f"# {first['env']}: {' vs '.join(labels)}", ""]
    lines += [f"Command: `{data.get('command', '')}`", ""]
    shared = {k: v for k, v in first.items() if k not in SKIPPED_FIELDS}
    lines += ["Settings (shared): " + ", ".join(f"{k}={v}" for k, v in shared.items()
                                                if v is not None), ""]
    for lb in labels:
        kw = runs[lb]["config"].get("optimizer_kwargs", {})
        lr = runs[lb]["config"].get("lr")
        extra = ", ".join(f"{k}={v}" for k, v in kw.items())
        lines.append(f"- `{lb}`: optimizer={runs[lb]['optimizer']}, lr={lr}"
                     + (f", {extra}" if extra else ""))
    lines.append("")
    for key, label in METRICS:
        if key not in summary:
            continue
        s = summary[key]
        rows = s["rows"]
        d = _digits([r["final_mean"] for r in rows.values()])
        lines += [f"## {label} (`{key}`)", "",
                  f"Seeds: {rows[labels[0]]['num_seeds']}; intervals: {conf}% Student-t over "
                  f"seeds; final = each seed's mean over the last "
                  f"{100 * data.get('final_window', 0.05):g}% of updates; AUC = mean over "
                  f"training (area / env steps); threshold = {_fmt(s['threshold'], 2)}.", ""]
        base = s["baseline"]
        header = ["optimizer", f"final ({conf}% CI)", "AUC (normalised)",
                  f"env steps to {_fmt(s['threshold'], d)}", f"final vs {base}",
                  f"AUC vs {base}", "env steps/s", "compile s"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for lb, r in rows.items():
            run = runs[lb]
            reach = (f"{_fmt(r['steps_to_threshold'], 0)} ({r['seeds_reaching']}/"
                     f"{r['num_seeds']} seeds)")
            vs = ["baseline", "baseline"]
            if lb != base:
                vs = [f"{_pm(r[f'{w}_diff'], r[f'{w}_diff_ci'], d)} ({r[f'{w}_verdict']})"
                      for w in ("final", "auc")]
            lines.append("| " + " | ".join([
                f"`{lb}`", _pm(r["final_mean"], r["final_ci"], d), _pm(r["auc_mean"], r["auc_ci"], d),
                reach, *vs, _fmt(run["steps_per_s"], 0), _fmt(run["compile_s"], 1)]) + " |")
        lines += ["", "Per-seed final values: " + "; ".join(
            f"`{lb}` " + ", ".join(_fmt(v, d) for v in r["final_per_seed"])
            for lb, r in rows.items()), ""]
    lines += ["## Timing", "",
              "env steps/s counts all seeds together, excludes compilation (reported separately), "
              "and was measured on the machine below; wall-clock curves use "
              + ", ".join(sorted({runs[lb]["wall_clock_source"] for lb in labels}))
              + " time stamps (see the README, 'Does Muon help PPO?').", ""]
    host = data.get("host", {})
    lines.append(f"Host: {host.get('cpu_count', '?')} CPU cores, jax backend "
                 f"{host.get('backend', '?')}; load average (1/5/15 min) before/after each run: "
                 + "; ".join(f"`{lb}` {runs[lb].get('load_before')} -> {runs[lb].get('load_after')}"
                             for lb in labels))
    lines += ["", f"![return vs env steps]({STEPS_PLOT})", "",
              f"![return vs wall-clock]({TIME_PLOT})", ""]
    return "\n".join(lines)


def plot(data: dict[str, Any], out: Path) -> list[Path]:
    """Both PNGs: mean and CI band per optimizer vs env steps and vs wall-clock seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = data["runs"]
    confidence = data.get("confidence", 0.95)
    keys = [(k, lab) for k, lab in METRICS if any(k in r["curves"] for r in runs.values())]
    env = next(iter(runs.values()))["config"]["env"]
    paths = []
    for name, xkey, xlabel in ((STEPS_PLOT, "global_step", "environment steps (per seed)"),
                               (TIME_PLOT, "wall_clock_s", "wall-clock seconds (after compile)")):
        fig, axes = plt.subplots(1, len(keys), figsize=(6.5 * len(keys), 4.2), squeeze=False)
        for ax, (key, ylabel) in zip(axes[0], keys, strict=True):
            for lb, run in runs.items():
                if key not in run["curves"]:
                    continue
                x = np.asarray(run[xkey], dtype=float)
                curves = stats.forward_fill(_array(run["curves"][key]))
                mean, lo, hi = stats.curve_band(curves, confidence)
                (line,) = ax.plot(x, mean, label=f"{lb} (n={curves.shape[0]})")
                ax.fill_between(x, lo, hi, alpha=0.2, color=line.get_color(), linewidth=0)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            ax.legend(loc="best")
        fig.suptitle(f"{env}: mean over seeds, {round(100 * confidence)}% t-interval band")
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        paths.append(out / name)
    return paths


def _jsonable(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    return x


def _nan(x: Any) -> Any:
    """Inverse of ``_jsonable`` for summaries: None -> NaN in numeric fields."""
    if x is None:
        return math.nan
    if isinstance(x, dict):
        return {k: _nan(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan(v) for v in x]
    return x


def write_report(data: dict[str, Any], out: Path) -> tuple[str, dict[str, Any]]:
    """Plots, results.md and curves.json (with the summary) from the raw run data."""
    summary = summarize(data["runs"], threshold=data.get("threshold_given"),
                        threshold_frac=data.get("threshold_frac", 0.9),
                        final_window=data.get("final_window", 0.05),
                        confidence=data.get("confidence", 0.95))
    summary = _nan(_jsonable(summary))
    plot(data, out)
    table = format_table(data, summary)
    (out / TABLE_NAME).write_text(table)
    (out / JSON_NAME).write_text(json.dumps(_jsonable({**data, "summary": summary})) + "\n")
    return table, summary


def compare(request: Request, log: Any = None) -> tuple[str, dict[str, Any]]:
    """Train every spec (or reload with --replot) and write the report to ``--out``."""
    opts = request.options
    out = Path(opts.out)
    if opts.replot:
        path = out / JSON_NAME
        if not path.is_file():
            raise CLIError(f"--replot: no {JSON_NAME} in {out}")
        data = json.loads(path.read_text())
        data.update(threshold_given=opts.threshold, threshold_frac=opts.threshold_frac,
                    final_window=opts.final_window, confidence=opts.confidence)
        return write_report(data, out)
    import jax

    out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for label, config in request.configs.items():
        if log:
            log(f"training {label}: {config.num_seeds} seeds x {config.total_timesteps:,} steps "
                f"on {config.env}")
        runs[label] = run_spec(config, opts.wall_clock, log)
    data = {
        "command": " ".join([PROG, *request.argv]),
        "confidence": opts.confidence, "threshold_given": opts.threshold,
        "threshold_frac": opts.threshold_frac, "final_window": opts.final_window,
        "host": {"cpu_count": os.cpu_count(), "backend": jax.default_backend(),
                 "devices": [str(d) for d in jax.devices()]},
        "runs": runs,
    }
    return write_report(data, out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ppo-compare``; 2 and one line on stderr for bad input."""
    try:
        request = parse_args(argv)
        table, _ = compare(request, log=lambda m: print(f"{PROG}: {m}", file=sys.stderr))
        print(table)
        print(f"{PROG}: wrote {request.options.out}/{{{STEPS_PLOT},{TIME_PLOT},{TABLE_NAME},"
              f"{JSON_NAME}}}", file=sys.stderr)
        return 0
    except CLIError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OptimizerError as exc:  # the registry's errors carry one-line messages
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
