"""The "Train a Snake that wins" study: the ``snake-master`` recipe on several seeds (and
optimizers), each evaluated on 1024 greedy episodes, with the table, the plots and the GIF of a
winning game that docs/results.md shows.

    python benchmarks/snake_wins.py --num-seeds 3 --optimizers muon adam --out docs/results/snake-wins
    python benchmarks/snake_wins.py --replot --out docs/results/snake-wins
    python benchmarks/snake_wins.py --replot --out docs/results/snake-wins --gif docs/results/snake-wins/policy.msgpack

The record is ``results.json``: per seed the 1024-game summary with apples per game as counts,
the periodic 256-game win rates per seed, and each run's training curves downsampled to a few
hundred points per seed. ``--replot`` remakes the page (``results.md``) and its plots from the
run directories present in ``--out`` (``RUN/eval1024.json``, ``metrics.jsonl``, ``evals.jsonl``:
their rows replace the record's for those runs, new runs are appended, the record's other runs
stay as recorded), or from ``results.json`` alone when none is. ``--gif POLICY`` records the greedy
game of ``ppo-eval POLICY --gif-every 4`` as ``winning_game.gif`` and names the command on the
page.

Each optimizer is one ``ppo-train --preset snake-master --optimizer O --num-seeds N`` process
(the seeds vmapped in one program; timed wall clock: compile, training, periodic and final
evaluations), then ``ppo-eval RUN --episodes 1024`` (1024 greedy episodes per seed). The
preset evaluates every 61 updates (about 1M env steps; ``evals.jsonl``), so the table gives the
first env step and wall-clock second at which each seed's greedy win rate reached 90%. Extra
arguments after ``--`` go to ``ppo-train``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

APPLES = 97  # a 10x10 board is full after 97 apples (the snake starts 3 long)
CURVE_POINTS = 250  # training-curve points kept per seed
CURVE_METRICS = ("charts/apples", "charts/win", "charts/episodic_return", "charts/episodic_length")
BEST_EVAL = "best_eval1024.json"  # ppo-eval of RUN/best_policy.msgpack (ppo-train --keep-best)
BEST_EVAL_SEED_OFFSET = 1000


def run_one(out: Path, preset: str, name: str, flags: list[str], num_seeds: int,
            extra: list[str]) -> list[dict[str, Any]]:
    """Train (unless ``out/name`` has a checkpoint) and evaluate one run: ``ppo-train --preset
    PRESET --num-seeds N --run-name NAME FLAGS EXTRA``, then 1024 greedy episodes per seed."""
    run = out / name
    if not (run / "checkpoint.msgpack").exists():
        cmd = [sys.executable, "-m", "ppo_trainer.app.train_cli", "--preset", preset,
               "--num-seeds", str(num_seeds), "--run-dir", str(out), "--run-name", name,
               *flags, *extra]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        (run / "wall_clock_s.txt").write_text(f"{time.perf_counter() - t0:.1f}\n")
    if not (run / "eval1024.json").exists():
        subprocess.run([sys.executable, "-m", "ppo_trainer.app.eval_cli", str(run),
                        "--episodes", "1024", "--gif", "none", "--json",
                        str(run / "eval1024.json")], check=True)
    if (run / "best_policy.msgpack").exists() and not (run / BEST_EVAL).exists():
        subprocess.run([sys.executable, "-m", "ppo_trainer.app.eval_cli",
                        *best_eval_command(run)[1:]], check=True)
    return summarize_run(run)


def best_eval_command(run: Path) -> list[str]:
    """``ppo-eval RUN/best_policy.msgpack --episodes 1024 --seed SEED+1000``: the ``--keep-best``
    policy on 1024 games it was not picked on (with the run's own seed its first 256 games would
    be the periodic evaluation that picked it)."""
    seed = json.loads((run / "config.json").read_text())["seed"] + BEST_EVAL_SEED_OFFSET
    return ["ppo-eval", (run / "best_policy.msgpack").as_posix(), "--episodes", "1024",
            "--seed", str(seed), "--gif", "none", "--json", (run / BEST_EVAL).as_posix()]


def run_label(name: str, config: dict[str, Any], index: int) -> str:
    """``NAME seed I`` for seed index I of ``--seed 0`` (the vmapped seeds split from key 0),
    ``NAME --seed S`` for a single-seed run, ``NAME --seed S #I`` otherwise."""
    if config["num_seeds"] == 1 and config["seed"] != 0:
        return f"{name} --seed {config['seed']}"
    return f"{name} seed {index}" if config["seed"] == 0 else f"{name} --seed {config['seed']} #{index}"


def game_stats(episodes: dict[str, Any], seed: int) -> dict[str, Any]:
    """Win rate, apples and steps per win of one seed's greedy games (an eval JSON's
    ``episodes``)."""
    wins = np.asarray(episodes["win"][seed], dtype=float)
    steps = np.asarray(episodes["episode_length"][seed], dtype=float)
    return {"win_rate": float(wins.mean()),
            "mean_apples": float(np.mean(episodes["apples"][seed])),
            "mean_steps_per_win": float(steps[wins > 0].mean()) if wins.any() else None,
            "unfinished": int((~np.asarray(episodes["finished"][seed], bool)).sum()),
            "apples_counts": np.bincount(np.asarray(episodes["apples"][seed], dtype=int),
                                         minlength=APPLES + 1).tolist()}


def summarize_run(run: Path) -> list[dict[str, Any]]:
    """One row per seed of a run directory's final checkpoint, and with a ``--keep-best``
    evaluation (``RUN/best_eval1024.json``) one more per seed, labelled ``best``, at the
    env steps of the update the best policy was picked at."""
    ev = json.loads((run / "eval1024.json").read_text())
    config = json.loads((run / "config.json").read_text())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    wall = run / "wall_clock_s.txt"
    evals = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()] \
        if (run / "evals.jsonl").exists() else []
    best = json.loads((run / BEST_EVAL).read_text()) if (run / BEST_EVAL).exists() else None
    out = []
    for seed in range(config["num_seeds"]):
        row = {"run": run_label(run.name, config, seed), "optimizer": config["optimizer"],
               "seed": config["seed"] if config["num_seeds"] == 1 else seed,
               "env_steps": rows[-1]["global_step"], "training_s": rows[-1]["time"],
               "wall_s": float(wall.read_text()) if wall.exists() else rows[-1]["time"],
               "num_seeds": config["num_seeds"], **game_stats(ev["episodes"], seed)}
        if config.get("eval_episodes", 256) != 256:  # the periodic evaluations' size
            row["periodic_episodes"] = config["eval_episodes"]
        for e in evals:
            if (e.get("per_seed_mean_win") or [0] * (seed + 1))[seed] >= 0.9:
                row["first_90_step"] = e["global_step"]
                row["first_90_s"] = next((r["time"] for r in rows
                                          if r["global_step"] >= e["global_step"]), None)
                break
        out.append(row)
        if best is not None:
            same = ("optimizer", "seed", "training_s", "wall_s", "num_seeds", "first_90_step",
                    "first_90_s", "periodic_episodes")  # the run's clock and evaluations
            picked_by = config.get("keep_best_by", "return")
            out.append({**{k: row[k] for k in same if k in row},
                        "run": f"{row['run']} best", "env_steps": best["update"] * config["batch_size"],
                        "eval_seed": config["seed"] + BEST_EVAL_SEED_OFFSET,
                        **({"picked_by": picked_by} if picked_by != "return" else {}),
                        **game_stats(best["episodes"], seed)})
    return out


def recorded_periodic(record: dict[str, Any]) -> dict[str, dict[int, Any]]:
    """The record's periodic win rates per run, keyed by env step (JSON keeps them as text)."""
    return {name: {int(step): wins for step, wins in curve.items()}
            for name, curve in record.get("periodic", {}).items()}


def merge_rows(recorded: list[dict[str, Any]], fresh: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The record's rows with each run measured again replaced in place and new runs appended:
    a study grows run by run without keeping every earlier run directory."""
    by_run: dict[str, list[dict[str, Any]]] = {}
    for row in fresh:
        by_run.setdefault(row["run"].split(" ", 1)[0], []).append(row)
    merged = []
    for row in recorded:
        name = row["run"].split(" ", 1)[0]
        if name not in by_run:
            merged.append(row)
        elif by_run[name]:
            merged += by_run.pop(name)
            by_run[name] = []
    return merged + [row for rows in by_run.values() for row in rows]


def winning_gif(policy: Path, out: Path, every: int = 4) -> dict[str, Any]:
    """``ppo-eval POLICY --episodes 1024 --gif OUT/winning_game.gif --gif-every 4``: the greedy
    game of the policy's first kept seed; the record names the command."""
    path = out / "winning_game.gif"
    cmd = ["ppo-eval", policy.as_posix(), "--episodes", "1024", "--gif", path.as_posix(),
           "--gif-every", str(every)]
    subprocess.run([sys.executable, "-m", "ppo_trainer.app.eval_cli", *cmd[1:]], check=True)
    return {"file": path.name, "command": " ".join(cmd)}


def _round(x: float) -> float:
    return float(f"{x:.4g}")


def compact_curves(run: Path, points: int = CURVE_POINTS) -> dict[str, Any]:
    """A run's ``metrics.jsonl`` downsampled to at most ``points`` updates (evenly spaced, the
    last included): env steps, training clock, and per seed each of ``CURVE_METRICS``."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    seeds = sorted({r["seed"] for r in rows})
    by_update: dict[int, dict[int, dict[str, Any]]] = {}
    for r in rows:
        by_update.setdefault(r["update"], {})[r["seed"]] = r
    updates = sorted(u for u, per in by_update.items() if len(per) == len(seeds))
    keep = [updates[i] for i in np.unique(np.linspace(0, len(updates) - 1,
                                                      min(points, len(updates))).round().astype(int))]
    first = [by_update[u][seeds[0]] for u in keep]
    return {"global_step": [r["global_step"] for r in first],
            "time": [r["time"] for r in first],
            "per_seed": {m: [[_round(by_update[u][s][m]) for u in keep] for s in seeds]
                         for m in CURVE_METRICS}}


def training_curves(out: Path, curves: dict[str, dict[str, Any]]) -> str:
    """Training apples and win rate per seed against env steps, per run (the compact curves)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not curves:
        return ""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for colour, (name, curve) in zip(_run_colors(len(curves)), curves.items(), strict=True):
        for ax, metric, scale in ((axes[0], "charts/apples", 1), (axes[1], "charts/win", 100)):
            for seed, values in enumerate(curve["per_seed"][metric]):
                ax.plot(curve["global_step"], scale * np.asarray(values), color=colour,
                        alpha=0.8, lw=1, label=name if seed == 0 else None)
    axes[1].set_xlabel("env steps per seed")
    axes[1].set_ylabel("training games won (%)")
    axes[1].grid(alpha=0.3)
    # noisy per-update curves compress badly: a smaller image stays small (a lever study's, with
    # its legend below the plots, smaller still)
    _finish(fig, axes[0], "env steps per seed", "apples per training game", out / "training.png",
            dpi=70 if len(curves) <= LEGEND_INSIDE_MAX else 55)
    points = max(len(c["global_step"]) for c in curves.values())
    return "\n".join(["", "Training games per seed (the policy's sampled actions), at "
                       f"{points} evenly spaced updates of each run's training log:", "",
                       "![training apples and wins](training.png)", ""])


def _run_colors(count: int) -> list[Any]:
    """One colour per run: matplotlib's default cycle up to ten runs, tab20 beyond (the default
    cycle repeats after ten, and a lever study has more runs than that)."""
    import matplotlib

    if count <= 10:
        return [f"C{i}" for i in range(count)]
    return [matplotlib.colormaps["tab20"](i % 20) for i in range(count)]


LEGEND_INSIDE_MAX = 8
"""The most runs whose legend fits inside a plot; more go below it, in a smaller image."""


def _finish(fig: Any, ax: Any, xlabel: str, ylabel: str, path: Path, dpi: int = 100) -> None:
    """Labels, legend and grid, then save and close the figure."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    handles, labels = ax.get_legend_handles_labels()
    if len(labels) > LEGEND_INSIDE_MAX:  # a lever study's 30-odd runs: below the plot
        dpi = min(dpi, 80)  # and the taller image kept small
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0), ncol=3,
                   fontsize=6, frameon=False)
    else:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def periodic(out: Path) -> dict[str, dict[int, list[float]]]:
    """Run name -> {env step: greedy win rate per seed}, from every ``*/evals.jsonl`` under
    ``out`` (the periodic 256-episode evaluations)."""
    curves = {}
    for path in sorted(out.glob("*/evals.jsonl")):
        evals = [json.loads(line) for line in path.read_text().splitlines()]
        curves[path.parent.name] = {e["global_step"]: e["per_seed_mean_win"] for e in evals}
    return curves


def win_curves(out: Path, curves: dict[str, dict[int, list[float]]],
               results: Sequence[dict[str, Any]] = ()) -> str:
    """Greedy win rate per seed against env steps, per run: a plot and a table at the steps all
    runs evaluated, so optimizers are compared at equal env steps even if one run was stopped;
    runs that share few such steps (other batch sizes or evaluation intervals: fewer than half
    of the most evaluated run's) get a table over every step any of them evaluated at, "n/a"
    where one did not."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not curves:
        return ""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for colour, (name, curve) in zip(_run_colors(len(curves)), curves.items(), strict=True):
        steps = sorted(curve)
        wins = np.asarray([curve[s] for s in steps])
        for seed in range(wins.shape[1]):
            ax.plot(steps, 100 * wins[:, seed], color=colour, alpha=0.8,
                    label=name if seed == 0 else None)
    ax.axhline(90, color="grey", ls="--", lw=1)
    _finish(fig, ax, "env steps per seed", "greedy win rate (%), per seed", out / "win_rate.png")
    names = list(curves)
    rows = sorted(set.intersection(*(set(c) for c in curves.values())))
    where = "the env steps every run evaluated"
    if 2 * len(rows) < max(len(c) for c in curves.values()):
        rows = sorted(set.union(*(set(c) for c in curves.values())))
        where = "every env step a run evaluated at (n/a: that run did not evaluate there)"
    lines = ["", f"Greedy win rate per seed ({periodic_size(results)} episodes each) at {where}:",
             "", "| env steps | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for step in rows:
        cells = [", ".join(f"{100 * w:.0f}%" for w in curves[n][step]) if step in curves[n]
                 else "n/a" for n in names]
        lines.append(f"| {step:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines + ["", "![win rate](win_rate.png)", ""])


def periodic_size(results: Sequence[dict[str, Any]]) -> str:
    """The periodic evaluations' games each, in words: "256" unless a run's --eval-episodes
    said otherwise ("256 or 1024" for a mix)."""
    return " or ".join(str(n) for n in sorted({r.get("periodic_episodes", 256) for r in results}))


def best_pick(results: Sequence[dict[str, Any]]) -> str:
    """What a ``best`` row's policy was picked by (``--keep-best-by``), in words."""
    keys = sorted({r.get("picked_by", "return") for r in results if r["run"].endswith(" best")})
    words = {"return": "the highest mean return", "win": "the most games won"}
    return " or ".join(words.get(k, f"the highest mean {k}") for k in keys)


def report(results: list[dict[str, Any]], out: Path, hardware: str, preset: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [f"# Snake 10x10: the {preset} recipe\n",
             "Generated from `results.json` by `python benchmarks/snake_wins.py --replot --out "
             f"{out.as_posix()}`.\n",
             "Greedy evaluation of the final checkpoint, 1024 episodes per seed (`ppo-eval RUN "
             "--episodes 1024`). Wall clock: the whole `ppo-train` process of all its vmapped "
             f"seeds (compilation, training, periodic and final evaluations, GIF) on {hardware} "
             "where it was timed, otherwise the training clock (all seeds together, resumed "
             "sessions added up); the time to 90% wins is always the training clock.\n",
             *([f"Rows ending in `best`: the run's `--keep-best` policy (the periodic "
                f"{periodic_size(results)}-game evaluation with {best_pick(results)}), at the env "
                "steps it was picked at, on 1024 "
                f"other games (`ppo-eval RUN/best_policy.msgpack --episodes 1024 --seed "
                f"SEED+{BEST_EVAL_SEED_OFFSET}`).\n"] if any(r["run"].endswith(" best")
                                                             for r in results) else []),
             "| run | env steps | wall clock (all seeds) | win rate | mean apples | mean steps "
             "per win | 90% wins first at (steps / s) |", "|---|---|---|---|---|---|---|"]
    for r in results:
        first = (f"{r['first_90_step']:,} / {r['first_90_s']:.0f}" if r.get("first_90_step")
                 else "n/a")
        per_win = f"{r['mean_steps_per_win']:,.0f}" if r["mean_steps_per_win"] else "n/a"
        lines.append(f"| {r['run']} | {r['env_steps']:,} | {r['wall_s'] / 60:.1f} min | "
                     f"{100 * r['win_rate']:.1f}% | {r['mean_apples']:.1f} | {per_win} | {first} |")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.arange(0, 99) - 0.5
    for colour, r in zip(_run_colors(len(results)), results, strict=True):
        ax.stairs(r["apples_counts"], bins[:len(r["apples_counts"]) + 1], label=r["run"],
                  color=colour)
    ax.set_yscale("log")
    _finish(fig, ax, "apples per episode (97 fill the board)", "episodes (of 1024)",
            out / "apples_hist.png")
    lines += ["", "![apples per episode](apples_hist.png)", ""]
    return "\n".join(lines)


def variants(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """(run name, ppo-train flags) per run: each ``--variant NAME=FLAGS``, else one run per
    optimizer named after it."""
    if not args.variant:
        return [(o, ["--optimizer", o]) for o in args.optimizers]
    out = []
    for text in args.variant:
        name, sep, flags = text.partition("=")
        if not sep or not name:
            raise SystemExit(f"--variant wants NAME=FLAGS, got {text!r}")
        out.append((name, shlex.split(flags)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-seeds", type=int, default=3)
    parser.add_argument("--optimizers", nargs="+", default=["muon"])
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=FLAGS",
                        help="a run named NAME with these ppo-train flags (quoted; repeatable), "
                             "instead of one run per --optimizers entry")
    parser.add_argument("--preset", default=None,
                        help="the preset trained (default: snake-master; on --replot the record's)")
    parser.add_argument("--out", default="docs/results/snake-wins")
    parser.add_argument("--replot", action="store_true")
    parser.add_argument("--gif", default=None, metavar="POLICY",
                        help="policy file (or run directory) whose greedy game becomes "
                             "winning_game.gif (ppo-eval --gif-every 4)")
    parser.add_argument("--hardware", default=None,
                        help="where the runs were timed, for the report's wall-clock note "
                             "(default: the record's, else a 2-core CPU)")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record_path = out / "results.json"
    old = json.loads(record_path.read_text()) if record_path.exists() else {}
    old = old if isinstance(old, dict) else {}  # the first records were a bare list of rows
    fresh = ([r for p in sorted(out.glob("*/eval1024.json")) for r in summarize_run(p.parent)]
             if args.replot else
             [r for name, flags in variants(args)
              for r in run_one(out, args.preset or "snake-master", name, flags,
                               args.num_seeds, extra)])
    if args.replot and not fresh and not old:
        parser.error(f"nothing to replot in {out}: no results.json and no RUN/eval1024.json")
    # Runs without a directory here keep their recorded rows and curves.
    results = merge_rows(old.get("rows", []), fresh)
    curves = {**recorded_periodic(old), **periodic(out)}
    training = {**old.get("curves", {}),
                **{p.parent.name: compact_curves(p.parent) for p in sorted(out.glob("*/metrics.jsonl"))}}
    hardware = args.hardware or old.get("hardware") or "2 CPU cores, no GPU"
    preset = args.preset or old.get("preset", "snake-master")
    gif = old.get("gif")
    if args.gif:
        gif = winning_gif(Path(args.gif), out)
    text = report(results, out, hardware, preset) + win_curves(out, curves, results)
    text += training_curves(out, training)
    if gif:
        text += (f"\nA winning game, the greedy game that `{gif['command']}` records:\n\n"
                 f"![a winning game]({gif['file']})\n")
    (out / "results.md").write_text(text)
    record = {"preset": preset, "hardware": hardware, "rows": results, "periodic": curves}
    if training:
        record["curves"] = training
    if gif:
        record["gif"] = gif
    # no spaces after separators: the curves are most of a record, and a lever study's record
    # of 40-odd runs stays under 512 KB
    record_path.write_text(json.dumps(record, separators=(",", ":")) + "\n")
    print(text)


if __name__ == "__main__":
    main()
