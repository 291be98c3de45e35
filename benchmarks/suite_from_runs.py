"""Turn time-boxed ``ppo-train`` run directories into the suite's raw JSON, so ``ppo-suite
--replot`` reports them with the same table, aggregate scores and plots as the CPU suite.

Used for the GPU MinAtar runs (``benchmarks/gpu_minatar.sh``): a GPU lease is a few minutes, so
those runs are ``ppo-train`` processes stopped at a time box with a checkpoint, not one
``ppo-suite`` program that must finish. Each run directory holds ``config.json``,
``metrics.jsonl`` (training curves), ``wall_clock_s.txt`` and ``eval<N>.json`` (``ppo-eval``).
The table's "env steps/seed" is the step each run reached, not the budget it asked for.

    python benchmarks/suite_from_runs.py --out docs/results/suite-gpu RUN_DIR [RUN_DIR ...]
    ppo-suite --replot --out docs/results/suite-gpu
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from ppo_trainer.app.compare.report import jsonable
from ppo_trainer.app.suite.run import random_return


def run_from_dir(run: Path) -> dict[str, Any]:
    """One optimizer's entry of a suite raw JSON, from a run directory."""
    config = json.loads((run / "config.json").read_text())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    seeds = config["num_seeds"]
    updates = sorted({r["update"] for r in rows})
    by_key = {(r["update"], r["seed"]): r for r in rows}
    step = [float(by_key[(u, 0)]["global_step"]) for u in updates]
    curves = [[by_key[(u, s)].get("charts/episodic_return", np.nan) for u in updates]
              for s in range(seeds)]
    times = np.array([by_key[(u, 0)]["time"] for u in updates], dtype=float)
    evals = sorted(run.glob("eval*.json"))
    if not evals:
        raise SystemExit(f"{run}: no eval*.json (run ppo-eval RUN --json RUN/eval64.json)")
    ev = json.loads(evals[-1].read_text())
    ev.pop("episodes", None)
    # metrics' "time" counts from the start of training (compile included): the first chunk's
    # stamp is compile + its own updates, so throughput is measured from the first stamp on
    first = int(np.argmax(times > times[0])) if (times > times[0]).any() else 0
    run_s = float(times[-1] - times[0]) if first else float(times[-1])
    steps_done = (step[-1] - (step[first - 1] if first else 0.0)) * seeds
    config["total_timesteps"] = int(step[-1])  # reached, not requested
    return {
        "optimizer": config["optimizer"], "config": config,
        "compile_s": float("nan"), "run_s": run_s, "steps_per_s": steps_done / run_s,
        "wall_clock_source": "metrics.jsonl time stamps (per chunk)",
        "global_step": step, "wall_clock_s": times.tolist(),
        "curves": {"charts/episodic_return": curves}, "eval": ev,
        "wall_s": float((run / "wall_clock_s.txt").read_text()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="ppo-train run directories")
    p.add_argument("--out", type=Path, required=True, help="suite folder (writes <out>/raw)")
    p.add_argument("--command", default="benchmarks/gpu_minatar.sh OUT",
                   help="the command that made the runs (shown in the report)")
    args = p.parse_args()
    envs: dict[str, dict[str, Any]] = {}
    for run in args.runs:
        entry = run_from_dir(run)
        env = entry["config"]["env"]
        data = envs.setdefault(env, {"env": env, "runs": {}, "command": args.command})
        data["runs"][entry["optimizer"]] = entry
    (args.out / "raw").mkdir(parents=True, exist_ok=True)
    for env, data in envs.items():
        data["random"] = random_return(env)
        (args.out / "raw" / f"{env}.json").write_text(json.dumps(jsonable(data)) + "\n")
        print(f"{env}: {', '.join(data['runs'])}")


if __name__ == "__main__":
    main()
