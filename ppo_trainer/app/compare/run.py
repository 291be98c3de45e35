"""Train one optimizer spec: all seeds in one program, with per-update wall-clock stamps.

Built with the run loop's own build step (``ppo_trainer.app.build``), so a compared config
trains exactly what ``ppo-train`` would; in memory, without a run directory.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ppo_trainer.config import TrainConfig

CURVE_KEYS = ("charts/episodic_return",)  # plus every charts/<env info key>


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run_spec(config: TrainConfig, wall_clock: str = "callback",
             log: Callable[[str], None] | None = None, eval_episodes: int = 0) -> dict[str, Any]:
    """Train ``config.num_seeds`` seeds of one config; curves, timings and (with
    ``eval_episodes``) a final greedy evaluation of every seed."""
    import jax

    from ppo_trainer.app.build import build

    num_updates = config.num_updates
    stamps = np.full(num_updates, np.nan)

    def stamp(update_step: Any, _metrics: Any) -> None:
        i = int(np.asarray(update_step).reshape(-1)[-1]) - 1
        if 0 <= i < num_updates:
            stamps[i] = time.perf_counter()

    setup = build(config, progress_fn=stamp if wall_clock == "callback" else None)
    trainer = setup.trainer

    def train(key: Any) -> Any:
        return trainer.run(trainer.init(key), num_updates)

    load_before = loadavg()
    t0 = time.perf_counter()
    compiled = jax.jit(jax.vmap(train)).lower(setup.keys).compile()
    compile_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    state, metrics = jax.block_until_ready(compiled(setup.keys))
    run_s = time.perf_counter() - t1
    metrics = jax.device_get(metrics)
    if wall_clock == "callback" and np.isfinite(stamps).all():
        wall = stamps - t1
    else:
        wall = run_s * np.arange(1, num_updates + 1) / num_updates
        wall_clock = "linear"
    total_steps = num_updates * config.batch_size * config.num_seeds
    keys = CURVE_KEYS + tuple(f"charts/{k}" for k in trainer.info_keys)
    curves = {key: np.asarray(metrics[key], dtype=float).tolist() for key in keys}
    if log:
        log(f"{config.optimizer}: compiled in {compile_s:.1f} s, trained {config.num_seeds} seeds "
            f"x {num_updates} updates in {run_s:.1f} s ({total_steps / run_s:,.0f} steps/s)")
    out = {
        "optimizer": config.optimizer,
        "config": config.to_dict(),
        "compile_s": compile_s,
        "run_s": run_s,
        "steps_per_s": total_steps / run_s,
        "wall_clock_source": wall_clock,
        "load_before": load_before,
        "load_after": loadavg(),
        "global_step": [float((u + 1) * config.batch_size) for u in range(num_updates)],
        "wall_clock_s": wall.tolist(),
        "curves": curves,
    }
    if eval_episodes:
        from ppo_trainer.app.evaluate import Evaluator

        evaluator = Evaluator(trainer, setup.env_params, eval_episodes)
        key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 1_000_003 + num_updates)
        out["eval"] = evaluator(state.params, state.norm, key)
        out["eval"].pop("episodes", None)
    return out
