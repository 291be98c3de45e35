"""Fair tuning: every optimizer gets the same small learning-rate grid, on seeds that are not the
reported ones (the suite reports seeds ``0..n-1`` of seed 0's key; tuning uses seed 100's).

The grid is multiplicative around the preset's value of each optimizer's own step size (Adam:
``--lr``; an optimizer whose plugin declares schedulable hyperparameters, like Muon: the first of
them, ``--muon-lr``), so both get the same number of points at the same relative spacing. The
score is the mean over seeds of the final greedy return; ties keep the starting value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ppo_trainer.app.compare.run import run_spec
from ppo_trainer.app.suite.report import seed_scores
from ppo_trainer.config import TrainConfig
from ppo_trainer.presets import preset_config
from ppo_trainer.registry import registry

GRID = (1 / 3, 1.0, 3.0)
TUNING_SEED = 100


def step_size_name(optimizer: str) -> str:
    """The hyperparameter tuned for ``optimizer``: its first schedulable one, else ``lr``."""
    schedulable = [hp.name for hp in registry().get(optimizer).hyperparams if hp.schedulable]
    return schedulable[0] if schedulable else "lr"


def step_size(config: TrainConfig, name: str) -> float:
    """The value of the tuned hyperparameter ``name`` (``lr`` or an optimizer's own) in ``config``."""
    return config.lr if name == "lr" else config.optimizer_kwargs[name]


def with_step_size(config: TrainConfig, name: str, value: float) -> TrainConfig:
    """``config`` with the tuned hyperparameter ``name`` set to ``value``."""
    if name == "lr":
        return config.replace(lr=value)
    return config.replace(optimizer_kwargs={**config.optimizer_kwargs, name: value})


def tune_env(env_id: str, optimizers: list[str], *, num_seeds: int, eval_episodes: int,
             overrides: dict[str, Any] | None = None,
             log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Score every grid value of every optimizer; the best is the pick."""
    out: dict[str, Any] = {}
    for optimizer in optimizers:
        name = step_size_name(optimizer)
        base = preset_config(env_id, optimizer=optimizer, **(overrides or {}))
        center = step_size(base, name)
        values, scores, per_seed = [], [], []
        for factor in GRID:
            value = float(f"{center * factor:.3g}")
            config = with_step_size(base, name, value).replace(seed=TUNING_SEED,
                                                               num_seeds=num_seeds)
            run = run_spec(config, "linear", None, eval_episodes=eval_episodes)
            seeds = run["eval"]["per_seed_mean_return"]  # None: a seed with no finished episode
            score = float(np.nanmean(seed_scores(run)))
            values.append(value)
            scores.append(score)
            per_seed.append(seeds)
            if log:
                log(f"tune {env_id} / {optimizer}: {name}={value:g} -> {score:.3f}")
        # the best score; a tie keeps the starting value (the middle of the grid)
        best = max(range(len(GRID)), key=lambda i: (np.nan_to_num(scores[i], nan=-np.inf),
                                                     GRID[i] == 1.0))
        out[optimizer] = {"name": name, "values": values, "scores": scores,
                          "picked": values[best], "seeds": num_seeds, "seed": TUNING_SEED,
                          "eval_episodes": eval_episodes,
                          "total_timesteps": base.total_timesteps, "per_seed": per_seed,
                          # what the grid varied around: every other setting of the tuned runs
                          "config": base.to_dict()}
    return out


def toml_snippet(env_id: str, tuned: dict[str, Any]) -> str:
    """The per-optimizer preset tables to paste into presets.toml."""
    lines = []
    for optimizer, t in tuned.items():
        grid = ", ".join(f"{v:g}: {s:.3g}" for v, s in zip(t["values"], t["scores"], strict=True))
        lines += [f'["{env_id}".{optimizer}]', f"{t['name']} = {t['picked']:g}  # grid {grid}"]
    return "\n".join(lines)
