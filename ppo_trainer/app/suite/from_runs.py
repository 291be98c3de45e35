"""``ppo-train`` run directories as suite results (``ppo-suite --add-runs``).

For runs made outside ``ppo-suite``: GPU time often comes in slots of a few minutes, so the GPU MinAtar runs
(``benchmarks/gpu_minatar.sh``) are ``ppo-train`` processes stopped at a time box with a
checkpoint, not one suite program that must finish. A run directory holds ``config.json``,
``metrics.jsonl`` (the training curves) and an ``eval*.json`` written by ``ppo-eval --json``
(the newest one is used). The entry records the env steps the run reached, not the budget it
asked for, so the table's "env steps/seed" is what was trained.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ppo_trainer.app.sinks import read_metrics
from ppo_trainer.app.suite.raw import merge_runs
from ppo_trainer.app.suite.run import random_return, run_key
from ppo_trainer.errors import ConfigError


def run_from_dir(run: Path) -> dict[str, Any]:
    """One optimizer's entry of a suite raw JSON (the shape ``run.run_env`` writes)."""
    files = {name: run / name for name in ("config.json", "metrics.jsonl")}
    missing = [name for name, path in files.items() if not path.is_file()]
    evals = sorted(run.glob("eval*.json"), key=lambda p: p.stat().st_mtime)
    if missing or not evals:
        what = ", ".join(missing + ([] if evals else ["eval*.json (ppo-eval RUN --json ...)"]))
        raise ConfigError(f"{run}: not an evaluated run directory (missing {what})")
    config = json.loads(files["config.json"].read_text())
    rows = read_metrics(files["metrics.jsonl"])
    by_key = {(r["update"], r["seed"]): r for r in rows}
    updates = sorted({r["update"] for r in rows})
    seeds = config["num_seeds"]
    step = [float(by_key[(u, 0)]["global_step"]) for u in updates]
    curves = [[by_key[(u, s)].get("charts/episodic_return", np.nan) for u in updates]
              for s in range(seeds)]
    # "time" is stamped per chunk and counts compilation into the first chunk: the throughput
    # is taken from the end of the first chunk on (all of it when there is one chunk)
    times = np.array([by_key[(u, 0)]["time"] for u in updates], dtype=float)
    later = np.flatnonzero(times > times[0])
    if later.size:
        run_s, steps = times[-1] - times[0], (step[-1] - step[later[0] - 1]) * seeds
    else:
        run_s, steps = times[-1], step[-1] * seeds
    wall_file = run / "wall_clock_s.txt"
    evaluation = json.loads(evals[-1].read_text())
    evaluation.pop("episodes", None)
    config["total_timesteps"] = int(step[-1])  # reached, not requested
    return {
        "optimizer": config["optimizer"], "config": config,
        "run_s": float(run_s), "steps_per_s": float(steps / run_s),
        "wall_clock_source": "metrics.jsonl time stamps (per chunk)",
        "global_step": step, "wall_clock_s": times.tolist(),
        "curves": {"charts/episodic_return": curves}, "eval": evaluation,
        "wall_s": float(wall_file.read_text()) if wall_file.is_file() else float(times[-1]),
    }


def add_runs(raw_dir: Path, runs: list[Path], command: str) -> list[str]:
    """Put each run into ``raw_dir/<env>.json`` under its optimizer (``optimizer+cell`` for a
    recurrent run: ``run.run_key``), replacing an entry of the same key and keeping the others;
    returns the envs written, in order."""
    envs: list[str] = []
    for run in runs:
        entry = run_from_dir(run)
        env = entry["config"]["env"]
        key = run_key(entry["optimizer"], entry["config"].get("rnn", "none"))
        merge_runs(raw_dir, env, {key: entry}, command,
                   lambda env=env: random_return(env))
        envs += [] if env in envs else [env]
    return envs
