"""Train one optimizer spec: all seeds in one program, with per-update wall-clock stamps.

Built with the run loop's own build step (``ppo_trainer.app.build``), so a compared config
trains exactly what ``ppo-train`` would; in memory, without a run directory.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from ppo_trainer.app.build import Setup, build
from ppo_trainer.app.evaluate import Evaluator, eval_key
from ppo_trainer.config import TrainConfig

CURVE_KEYS = ("charts/episodic_return",)  # plus every charts/<env info key>


def host() -> dict[str, Any]:
    """What a comparison ran on, recorded beside its curves."""
    return {"cpu_count": os.cpu_count(), "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()]}


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


class UpdateStamps:
    """The host time after each update, stamped by the trainer's ``jax.debug.callback``
    (its ``progress_fn``); NaN where no stamp came."""

    def __init__(self, num_updates: int) -> None:
        self.times = np.full(num_updates, np.nan)

    def __call__(self, update_step: Any, _metrics: Any) -> None:
        i = int(np.asarray(update_step).reshape(-1)[-1]) - 1
        if 0 <= i < self.times.size:
            self.times[i] = time.perf_counter()


@dataclass
class Timing:
    """Compile and run seconds of one program, and when the run started (``perf_counter``)."""

    compile_s: float
    start: float
    run_s: float


def train_seeds(setup: Setup, num_updates: int) -> tuple[Any, Any, Timing]:
    """Compile, then run, every seed of ``setup`` in one program: final state, host metrics."""
    trainer = setup.trainer

    def train(key: Any) -> Any:
        return trainer.run(trainer.init(key), num_updates)

    t0 = time.perf_counter()
    compiled = jax.jit(jax.vmap(train)).lower(setup.keys).compile()
    compile_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    state, metrics = jax.block_until_ready(compiled(setup.keys))
    return state, jax.device_get(metrics), Timing(compile_s, t1, time.perf_counter() - t1)


def wall_clock_series(stamps: UpdateStamps | None, timing: Timing,
                      num_updates: int) -> tuple[np.ndarray, str]:
    """Seconds after the start at each update, and their source: the stamps if every update
    has one, else the run time spread evenly (``linear``)."""
    if stamps is not None and np.isfinite(stamps.times).all():
        return stamps.times - timing.start, "callback"
    return timing.run_s * np.arange(1, num_updates + 1) / num_updates, "linear"


def final_eval(setup: Setup, state: Any, episodes: int) -> dict[str, Any]:
    """Every seed's greedy evaluation after the last update, as the run loop keys it."""
    config = setup.config
    evaluator = Evaluator(setup.trainer, setup.env_params, episodes)
    summary = evaluator(state.params, state.norm, eval_key(config.seed, config.num_updates))
    summary.pop("episodes", None)
    return summary


def run_spec(config: TrainConfig, wall_clock: str = "callback",
             log: Callable[[str], None] | None = None, eval_episodes: int = 0) -> dict[str, Any]:
    """Train ``config.num_seeds`` seeds of one config; curves, timings and (with
    ``eval_episodes``) a final greedy evaluation of every seed."""
    num_updates = config.num_updates
    stamps = UpdateStamps(num_updates) if wall_clock == "callback" else None
    setup = build(config, progress_fn=stamps)
    load_before = loadavg()
    state, metrics, timing = train_seeds(setup, num_updates)
    wall, source = wall_clock_series(stamps, timing, num_updates)
    total_steps = num_updates * config.batch_size * config.num_seeds
    keys = CURVE_KEYS + tuple(f"charts/{k}" for k in setup.trainer.info_keys)
    if log:
        log(f"{config.optimizer}: compiled in {timing.compile_s:.1f} s, trained "
            f"{config.num_seeds} seeds x {num_updates} updates in {timing.run_s:.1f} s "
            f"({total_steps / timing.run_s:,.0f} steps/s)")
    out = {
        "optimizer": config.optimizer, "config": config.to_dict(),
        "compile_s": timing.compile_s, "run_s": timing.run_s,
        "steps_per_s": total_steps / timing.run_s, "wall_clock_source": source,
        "load_before": load_before, "load_after": loadavg(),
        "global_step": [float((u + 1) * config.batch_size) for u in range(num_updates)],
        "wall_clock_s": wall.tolist(),
        "curves": {key: np.asarray(metrics[key], dtype=float).tolist() for key in keys},
    }
    if eval_episodes:
        out["eval"] = final_eval(setup, state, eval_episodes)
    return out
