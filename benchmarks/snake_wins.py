"""The "Train a Snake that wins" study: the ``snake-master`` recipe on several seeds (and
optimizers), each evaluated on 1024 greedy episodes, with the table, the apples histogram and
the GIF of a winning game that docs/results.md shows.

    python benchmarks/snake_wins.py --seeds 0 1 2 --out docs/results/snake-wins
    python benchmarks/snake_wins.py --seeds 0 1 2 --optimizers adam muon --eval-freq 20 \\
        --out /tmp/snake-wins-optimizers         # who reaches 90% wins first (steps, seconds)
    python benchmarks/snake_wins.py --replot --out docs/results/snake-wins

Each run is ``ppo-train --preset snake-master --optimizer O --seed S`` in its own process (timed
wall clock: compile, training and the final evaluation), then ``ppo-eval RUN --episodes 1024``.
With ``--eval-freq N`` the runs evaluate every N updates (``evals.jsonl``) and the table gives
the first env step and wall-clock second at which the greedy win rate reached 90%. Extra
arguments after ``--`` go to ``ppo-train``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def run_one(out: Path, preset: str, optimizer: str, seed: int, eval_freq: int,
            extra: list[str]) -> dict[str, Any]:
    name = f"{optimizer}-seed{seed}"
    run = out / name
    if not (run / "checkpoint.msgpack").exists():
        cmd = [sys.executable, "-m", "ppo_trainer.app.train_cli", "--preset", preset,
               "--optimizer", optimizer, "--seed", str(seed), "--run-dir", str(out),
               "--run-name", name, *(["--eval-freq", str(eval_freq)] if eval_freq else []),
               *extra]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        (run / "wall_clock_s.txt").write_text(f"{time.perf_counter() - t0:.1f}\n")
    if not (run / "eval1024.json").exists():
        subprocess.run([sys.executable, "-m", "ppo_trainer.app.eval_cli", str(run),
                        "--episodes", "1024", "--gif", "none", "--json",
                        str(run / "eval1024.json")], check=True)
    return summarize_run(run)


def summarize_run(run: Path) -> dict[str, Any]:
    ev = json.loads((run / "eval1024.json").read_text())
    config = json.loads((run / "config.json").read_text())
    episodes = ev["episodes"]
    wins = np.asarray(episodes["win"], dtype=float).ravel()
    steps = np.asarray(episodes["episode_length"], dtype=float).ravel()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    out = {"run": run.name, "optimizer": config["optimizer"], "seed": config["seed"],
           "env_steps": rows[-1]["global_step"], "training_s": rows[-1]["time"],
           "wall_s": float((run / "wall_clock_s.txt").read_text()),
           "win_rate": float(wins.mean()), "mean_apples": ev["mean_apples"],
           "mean_steps_per_win": float(steps[wins > 0].mean()) if wins.any() else None,
           "unfinished": ev["unfinished_episodes"],
           "apples": np.asarray(episodes["apples"], dtype=float).ravel().tolist()}
    evals = run / "evals.jsonl"
    if evals.exists():
        for line in evals.read_text().splitlines():
            e = json.loads(line)
            if (e.get("mean_win") or 0) >= 0.9:
                step = e["global_step"]
                t = next((r["time"] for r in rows if r["global_step"] >= step), None)
                out.update(first_90_step=step, first_90_s=t)
                break
    return out


def winning_gif(run: Path, path: Path, tries: int = 64) -> dict[str, Any] | None:
    """Record greedy episodes (seed 0 of the run) until one fills the board; keep that GIF."""
    import jax

    from ppo_trainer.app.evaluate import record_gif
    from ppo_trainer.app.rundir import load_run

    loaded = load_run(run)
    state = jax.tree_util.tree_map(lambda x: x[0], loaded.runner_state)
    for k in range(tries):
        stats = record_gif(loaded.setup.trainer, loaded.setup.env_params, state.params,
                           state.norm, jax.random.PRNGKey(k), path, max_steps=6000, fps=30)
        if stats.get("win"):
            return {**stats, "key": k}
    return None


def report(results: list[dict[str, Any]], out: Path, command: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [f"# Snake 10x10: the snake-master recipe\n\nCommand: `{command}`\n",
             "Greedy evaluation of the final checkpoint, 1024 episodes per run (`ppo-eval RUN "
             "--episodes 1024`). Wall clock: the whole `ppo-train` process (compilation, "
             "training, final evaluation, GIF) on this machine's 2 shared CPU cores.\n",
             "| run | env steps | wall clock | win rate | mean apples | mean steps per win | "
             "90% wins first at (steps / s) |", "|---|---|---|---|---|---|---|"]
    for r in results:
        first = (f"{r['first_90_step']:,} / {r['first_90_s']:.0f}" if r.get("first_90_step")
                 else "n/a")
        per_win = f"{r['mean_steps_per_win']:,.0f}" if r["mean_steps_per_win"] else "n/a"
        lines.append(f"| {r['run']} | {r['env_steps']:,} | {r['wall_s'] / 60:.1f} min | "
                     f"{100 * r['win_rate']:.1f}% | {r['mean_apples']:.1f} | {per_win} | {first} |")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.arange(0, 99) - 0.5
    for r in results:
        ax.hist(r["apples"], bins=bins, histtype="step", label=r["run"])
    ax.set_xlabel("apples per episode (97 fill the board)")
    ax.set_ylabel("episodes (of 1024)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "apples_hist.png", dpi=100)
    plt.close(fig)
    lines += ["", "![apples per episode](apples_hist.png)", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--optimizers", nargs="+", default=["muon"])
    parser.add_argument("--preset", default="snake-master")
    parser.add_argument("--eval-freq", type=int, default=0)
    parser.add_argument("--out", default="docs/results/snake-wins")
    parser.add_argument("--replot", action="store_true")
    parser.add_argument("--gif-run", default=None, help="run whose winning game becomes the GIF")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        results = [summarize_run(p.parent) for p in sorted(out.glob("*/eval1024.json"))]
    else:
        results = [run_one(out, args.preset, o, s, args.eval_freq, extra)
                   for o in args.optimizers for s in args.seeds]
    command = "python benchmarks/snake_wins.py " + " ".join(sys.argv[1:])
    text = report(results, out, command)
    if args.gif_run:
        gif = winning_gif(out / args.gif_run, out / "winning_game.gif")
        text += ("\n![a winning game](winning_game.gif)\n" if gif else
                 "\nNo winning game in the first greedy episodes of that run.\n")
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(json.dumps(
        [{k: v for k, v in r.items() if k != "apples"} for r in results], indent=1))
    print(text)


if __name__ == "__main__":
    main()
