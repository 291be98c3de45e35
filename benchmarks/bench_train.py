"""Whole-PPO-loop throughput: env steps per second of training (collect + GAE + updates).

Times ``trainer.run(state, num_updates)`` compiled once (compile time reported separately), for
CartPole-v1 with PureJaxRL's settings (1 seed, and 8 seeds vmapped in one program) and for the
Snake-v0 preset. Prints a markdown table.

    python benchmarks/bench_train.py            # the README numbers
    python benchmarks/bench_train.py --quick    # a few updates each: a smoke run
"""

from __future__ import annotations

import argparse
import platform
import time
from typing import Any

import jax

from ppo_trainer.app.build import build
from ppo_trainer.config import TrainConfig
from ppo_trainer.presets import preset_config


def bench(name: str, cfg: TrainConfig, num_seeds: int, num_updates: int, repeats: int) -> dict:
    """Compile ``num_updates`` updates for ``num_seeds`` seeds, then time ``repeats`` runs."""
    setup = build(cfg.replace(num_seeds=num_seeds))
    trainer = setup.trainer
    state = jax.jit(jax.vmap(trainer.init))(setup.keys)
    run = jax.jit(jax.vmap(lambda s: trainer.run(s, num_updates)))

    t0 = time.perf_counter()
    compiled = run.lower(state).compile()
    compile_s = time.perf_counter() - t0

    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, _ = jax.block_until_ready(compiled(state))
        times.append(time.perf_counter() - t0)
    run_s = min(times)
    steps = num_seeds * num_updates * cfg.batch_size
    return {
        "config": name,
        "seeds": num_seeds,
        "envs x steps": f"{cfg.num_envs} x {cfg.num_steps}",
        "network": cfg.network,
        "optimizer": cfg.optimizer,
        "env steps timed": steps,
        "compile s": f"{compile_s:.1f}",
        "run s": f"{run_s:.2f}",
        "env steps/s": f"{steps / run_s:,.0f}",
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few updates each (smoke run)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the fastest counts")
    parser.add_argument("--cartpole-updates", type=int, default=100)
    parser.add_argument("--snake-updates", type=int, default=5)
    parser.add_argument("--snake-optimizer", default=TrainConfig.optimizer)
    parser.add_argument("--skip-snake", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.cartpole_updates, args.snake_updates, args.repeats = 5, 1, 1

    cartpole = preset_config("CartPole-v1", optimizer="adam")
    rows = [
        bench("CartPole-v1 (PureJaxRL)", cartpole, 1, args.cartpole_updates, args.repeats),
        bench("CartPole-v1 (PureJaxRL)", cartpole, 8, args.cartpole_updates, args.repeats),
    ]
    if not args.skip_snake:
        try:
            snake = preset_config("Snake-v0", optimizer=args.snake_optimizer)
            rows.append(bench("Snake-v0 (defaults)", snake, 1, args.snake_updates, args.repeats))
        except ValueError as err:  # snake_gymnax not installed
            print(f"skipping Snake: {err}")
    device = jax.devices()[0]
    print(
        f"jax {jax.__version__} on {device.platform} ({device.device_kind}); {platform.processor() or platform.machine()}"
    )
    print(markdown(rows))


if __name__ == "__main__":
    main()
