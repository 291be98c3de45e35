"""The README's Snake claim: the default `ppo-train --env Snake-v0 --optimizer muon`, timed.

Runs the real command once per seed (a fresh process each, so compile time is included), then
reads each run's ``eval.json`` (greedy play, ``--eval-episodes`` episodes) and prints a markdown
table of wall-clock time and mean apples per episode, plus the spread over seeds.

    python benchmarks/bench_snake_default.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_seed(seed: int, run_dir: Path, extra: list[str]) -> dict:
    """One default training run in a subprocess; returns its wall time and greedy eval."""
    name = f"snake_default_s{seed}"
    cmd = [sys.executable, "-m", "ppo_trainer.app.train_cli", "--env", "Snake-v0", "--optimizer", "muon",
           "--seed", str(seed), "--run-dir", str(run_dir), "--run-name", name, *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    evaluation = json.loads((run_dir / name / "eval.json").read_text())
    return {"seed": seed, "wall_s": wall, "apples": evaluation["mean_apples"],
            "return": evaluation["mean_return"], "episodes": evaluation["episodes_per_seed"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--run-dir", type=Path, default=None, help="keep the runs here")
    args, extra = parser.parse_known_args()
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="bench_snake_"))
    rows = [run_seed(seed, run_dir, extra) for seed in args.seeds]
    print(f"`ppo-train --env Snake-v0 --optimizer muon {' '.join(extra)}`".replace(" `", "`"))
    print("\n| seed | wall clock (s, compile + train + eval + GIF) | greedy apples/episode | "
          "greedy return | eval episodes |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {r['wall_s']:.0f} | {r['apples']:.1f} | {r['return']:.1f} | "
              f"{r['episodes']} |")
    apples = [r["apples"] for r in rows]
    spread = statistics.stdev(apples) if len(apples) > 1 else 0.0
    print(f"\nmean over {len(rows)} seeds: {statistics.mean(apples):.1f} apples "
          f"(std {spread:.1f}, min {min(apples):.1f}, max {max(apples):.1f}); "
          f"slowest run {max(r['wall_s'] for r in rows):.0f} s")


if __name__ == "__main__":
    main()
