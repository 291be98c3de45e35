"""One env of the suite: every optimizer on the same seeds, plus a random-policy baseline.

Each optimizer's config is its preset's (``ppo_trainer/presets.toml``: the env's settings and the
optimizer's own tuned values), trained with ``compare.run.run_spec`` (the run loop's build step,
all seeds in one program) and evaluated greedily at the end. The result is one JSON-able dict
per env, written by the CLI to ``<out>/raw/<env>.json`` so that envs can be (re)run one at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ppo_trainer.app.compare.run import run_spec
from ppo_trainer.app.evaluate import play_episodes, step_cap
from ppo_trainer.config import TrainConfig
from ppo_trainer.envs import make_action_fn, make_env
from ppo_trainer.presets import preset_config


def random_return(env_id: str, episodes: int = 256, seed: int = 0,
                  config: TrainConfig | None = None) -> dict[str, float]:
    """Mean and std of the return of a uniformly random policy (the 0 of normalized scores),
    played by the greedy evaluation's episode loop. ``config``: the env settings to play (a
    preset's ``env_params``, say), else ``env_id``'s defaults."""
    env, params = make_env(config or TrainConfig(env=env_id))
    space = env.action_space(params)
    to_env = make_action_fn(env, params)

    def act(keys: Sequence[Any], obs: Any, state: Any) -> Any:
        action = jax.vmap(space.sample)(jax.random.split(keys[0], episodes))
        if action.ndim > 1 or jnp.issubdtype(action.dtype, jnp.floating):
            action = to_env(action.reshape(episodes, -1))
        return action

    run = play_episodes(env, params, episodes, step_cap(params), act, act_keys=1)
    returns = np.asarray(jax.jit(run)(jax.random.PRNGKey(seed))["return"])
    return {"mean": float(returns.mean()), "std": float(returns.std()), "episodes": episodes}


def run_key(optimizer: str, rnn: str) -> str:
    """A row's key in ``raw/<env>.json``: the optimizer for a feed-forward policy (the suite's
    rows), ``optimizer+cell`` for a recurrent one (``adam+gru``), so that both rows of a memory
    task exist side by side and ``--rnn gru`` never overwrites a feed-forward row."""
    return optimizer if rnn == "none" else f"{optimizer}+{rnn}"


def run_env(env_id: str, optimizers: list[str], *, num_seeds: int = 4, seed: int = 0,
            eval_episodes: int = 64, overrides: dict[str, Any] | None = None,
            variants: Sequence[str | None] = (None,),
            log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train every optimizer on ``env_id`` (its preset; ``overrides`` on top) and evaluate.
    ``variants``: the ``--rnn`` of each network to train (``None``: the preset's), each
    optimizer with each; rows are keyed by :func:`run_key`."""
    runs = {}
    for optimizer in optimizers:
        for rnn in variants:
            config = preset_config(env_id, optimizer=optimizer, num_seeds=num_seeds, seed=seed,
                                   **{**(overrides or {}), **({"rnn": rnn} if rnn else {})})
            key = run_key(optimizer, config.rnn)
            if log:
                log(f"{env_id} / {key}: {num_seeds} seeds x {config.total_timesteps:,} steps")
            t0 = time.perf_counter()
            run = run_spec(config, "linear", log, eval_episodes=eval_episodes)
            run["wall_s"] = time.perf_counter() - t0  # compile + train + evaluation
            runs[key] = run
    return {"env": env_id, "random": random_return(env_id, config=config.replace(rnn="none")),
            "runs": runs}
