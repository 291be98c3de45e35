"""How fast ``ppo-train --help`` answers (the tests only check that parsing imports no jax).

    python benchmarks/bench_cli.py [--repeats 10]

Runs ``python -m ppo_trainer.app.train_cli --help`` and ``python -c pass`` alternately in fresh
processes and prints the median and best wall time of each (the interpreter's own start-up is
the floor).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    commands = {"ppo-train --help": [sys.executable, "-m", "ppo_trainer.app.train_cli", "--help"],
                "python -c pass": [sys.executable, "-c", "pass"]}
    times: dict[str, list[float]] = {k: [] for k in commands}
    timed(commands["ppo-train --help"])  # warm the file cache
    for _ in range(args.repeats):  # interleaved
        for name, argv in commands.items():
            times[name].append(timed(argv))
    print("| command | median s | best s |\n|---|---|---|")
    for name, values in times.items():
        print(f"| `{name}` | {statistics.median(values):.3f} | {min(values):.3f} |")


if __name__ == "__main__":
    main()
