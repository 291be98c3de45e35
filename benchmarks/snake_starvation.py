"""Snake-v0 with starvation as a truncation or as a death: per-seed results and curves.

Reads ``ppo-train`` run directories (``config.json``, ``metrics.jsonl``, ``eval.json``), groups
them by ``env_params.starvation_is_death``, and writes ``summary.json`` (greedy apples, wins
and starvations per seed, the training curves of apples and of the fraction of episodes that
starved) and ``curves.png`` (one line per seed, one panel per mode) to ``--out``; prints a
markdown table. A seed "collapsed" when its greedy snake eats fewer than 10 apples (a random
policy eats ~0.1; every other seed eats 70+).

    ppo-train --env Snake-v0 --optimizer muon --num-seeds 8 --seed 200 \\
        --env-params starvation_is_death=false --run-dir runs --run-name base_s200
    ppo-train --env Snake-v0 --optimizer muon --num-seeds 8 --seed 200 \\
        --env-params starvation_is_death=true --run-dir runs --run-name starve_s200
    python benchmarks/snake_starvation.py runs/base_s200 runs/starve_s200 --out OUT
    python benchmarks/snake_starvation.py --replot --out OUT    # table.md and curves.png from summary.json

The study's record is ``summary.json`` (the curves are one point per update, 305 per seed at
5M steps); ``--replot`` redraws from it without the run directories.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ppo_trainer.app.sinks import read_metrics

COLLAPSED_BELOW = 10.0  # greedy apples per episode


def load_run(run: Path) -> dict:
    """One run directory as per-seed results and curves."""
    config = json.loads((run / "config.json").read_text())
    evaluation = json.loads((run / "eval.json").read_text())
    rows = read_metrics(run / "metrics.jsonl")
    seeds = list(range(config["seed"], config["seed"] + config["num_seeds"]))
    updates = sorted({r["update"] for r in rows})
    by_key = {(r["update"], r["seed"]): r for r in rows}

    def curve(name: str, s: int) -> list[float]:
        return [round(float(by_key[(u, s)].get(name, np.nan)), 3) for u in updates]

    apples = evaluation["per_seed_mean_apples"]
    return {
        "run": run.name,
        "starvation_is_death": bool(config["env_params"].get("starvation_is_death", False)),
        "seeds": seeds,
        "eval_episodes_per_seed": evaluation["episodes_per_seed"],
        "greedy_apples": apples,
        "greedy_win": evaluation["per_seed_mean_win"],
        "greedy_starved": evaluation.get("per_seed_mean_starved"),
        "collapsed": [a < COLLAPSED_BELOW for a in apples],
        "global_step": [float(by_key[(u, 0)]["global_step"]) for u in updates],
        "train_apples": [curve("charts/apples", s) for s in range(len(seeds))],
        "train_starved": [curve("charts/starved", s) for s in range(len(seeds))],
    }


def plot(runs: list[dict], path: Path) -> None:
    """Training apples (top) and starved fraction (bottom) per seed, one column per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 6), sharex=True, sharey="row")
    for col, death in enumerate((False, True)):
        for run in (r for r in runs if r["starvation_is_death"] == death):
            steps = np.asarray(run["global_step"]) / 1e6
            for i, seed in enumerate(run["seeds"]):
                style = {"lw": 2.0, "color": "crimson"} if run["collapsed"][i] else {"lw": 0.8}
                axes[0, col].plot(steps, run["train_apples"][i], **style,
                                  label=f"seed {seed} (collapsed)" if run["collapsed"][i] else None)
                axes[1, col].plot(steps, run["train_starved"][i], **style)
        mode = "starvation is a death" if death else "starvation is a truncation"
        axes[0, col].set_title(mode)
        axes[1, col].set_xlabel("env steps per seed (M)")
        if axes[0, col].get_legend_handles_labels()[0]:
            axes[0, col].legend(loc="upper left", fontsize=8)
    axes[0, 0].set_ylabel("apples per episode (training)")
    axes[1, 0].set_ylabel("fraction of episodes\nthat starved")
    fig.tight_layout()
    fig.savefig(path, dpi=70)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="*", help="ppo-train run directories")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--replot", action="store_true", help="from <out>/summary.json alone")
    args = parser.parse_args(argv)
    if args.replot:
        runs = json.loads((args.out / "summary.json").read_text())
    else:
        runs = [load_run(run) for run in args.runs]
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "summary.json").write_text(json.dumps(runs, indent=1))
    plot(runs, args.out / "curves.png")
    text = table(runs)
    (args.out / "table.md").write_text(text)
    print(text, end="")


def table(runs: list[dict]) -> str:
    """The per-run table and one pooled line per rule, as markdown."""
    lines = ["| run | starvation | seeds | greedy apples per seed (of 97) | greedy wins | collapsed |",
             "|---|---|---|---|---|---|"]
    for r in runs:
        apples = ", ".join(f"{a:.1f}" for a in r["greedy_apples"])
        wins = ", ".join(f"{w:.0%}" for w in r["greedy_win"])
        mode = "death" if r["starvation_is_death"] else "truncation"
        lines.append(f"| {r['run']} | {mode} | {r['seeds'][0]}-{r['seeds'][-1]} | {apples} | "
                     f"{wins} | {sum(r['collapsed'])} of {len(r['seeds'])} |")
    for death in (False, True):
        apples = np.array([a for r in runs if r["starvation_is_death"] == death
                           for a in r["greedy_apples"]])
        if apples.size:
            lines.append(f"starvation {'death' if death else 'truncation'}: {apples.size} seeds, "
                         f"mean {apples.mean():.1f}, median {np.median(apples):.1f}, "
                         f"collapsed {(apples < COLLAPSED_BELOW).sum()}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
