"""Shared checks for env-suite adapters (tests/test_suite_*.py): the gymnax 1.0 contract through
``make_env``, and a tiny ppo-train -> checkpoint -> ppo-eval run on a suite id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ppo_trainer import envs
from ppo_trainer.app import eval_cli, train_cli
from ppo_trainer.config import TrainConfig


def make(env_id: str, **settings: Any) -> tuple[Any, Any]:
    env, params = envs.make_env(TrainConfig(env=env_id, **settings))
    envs.check_final_observation(env, params)
    return env, params


def rollout(env: Any, params: Any, steps: int, policy=None, seed: int = 0) -> list[dict]:
    """``steps`` steps of one env (jitted ``step``); each row holds what the contract checks."""
    key = jax.random.PRNGKey(seed)
    obs, state = env.reset(key, params)
    space = env.observation_space(params)
    assert obs.shape == tuple(space.shape), (obs.shape, space.shape)
    step = jax.jit(env.step)
    rows = []
    for t in range(steps):
        key, k_act, k_step = jax.random.split(key, 3)
        action = (policy(state, k_act) if policy is not None
                  else env.action_space(params).sample(k_act))
        prev_obs = obs
        obs, state, reward, terminated, truncated, info = step(k_step, state, action, params)
        assert obs.shape == prev_obs.shape and obs.dtype == prev_obs.dtype
        assert np.isfinite(np.asarray(reward)).all()
        rows.append({"t": t, "terminated": bool(terminated), "truncated": bool(truncated),
                     "time": int(state.time), "info": info, "obs": obs,
                     "final": info["final_observation"]})
    return rows


def first_end(rows: list[dict]) -> dict:
    ends = [r for r in rows if r["terminated"] or r["truncated"]]
    assert ends, "no episode ended"
    return ends[0]


def assert_auto_reset(row: dict) -> None:
    """After an episode's last step the env is reset: the step counter is 0 again."""
    assert row["time"] == 0


def train_and_eval(tmp_path: Path, env_id: str, *extra: str, steps: str = "64") -> dict:
    """``ppo-train`` for a tiny budget on ``env_id`` with a checkpoint, then ``ppo-eval`` on it."""
    argv = ["--env", env_id, "--optimizer", "adam", "--num-envs", "4", "--num-steps", "8",
            "--total-timesteps", steps, "--num-minibatches", "2", "--update-epochs", "1",
            "--hidden-size", "16", "--num-hidden-layers", "1", "--save-freq", "1",
            "--eval-episodes", "2", "--no-anneal-lr", "--run-dir", str(tmp_path),
            "--run-name", "run", *extra]
    assert train_cli.main(argv) == 0
    run = tmp_path / "run"
    assert (run / "checkpoint.msgpack").is_file()
    assert json.loads((run / "config.json").read_text())["env"] == env_id
    out = tmp_path / "eval.json"
    assert eval_cli.main([str(run), "--episodes", "2", "--max-steps", "50",
                          "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["finished_episodes"] + summary["unfinished_episodes"] == 2
    return summary


def first_valid(env: Any, params: Any):
    """A policy taking the first action ``valid_actions`` allows (a snake that never crashes
    into a wall or itself while it has a way out)."""
    def policy(state, key):
        return jnp.argmax(env.valid_actions(state, params)).astype(jnp.int32)
    return policy
