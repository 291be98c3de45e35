"""Greedy evaluation: the env's own time limit, unfinished episodes apart, compiled once."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import pytest
from flax import struct
from gymnax.environments import environment, spaces

from ppo_trainer.app.evaluate import Evaluator, format_summary, summarize
from ppo_trainer.config import TrainConfig
from ppo_trainer.ppo import Trainer


@struct.dataclass
class TickState(environment.EnvState):
    time: int


@struct.dataclass
class TickParams(environment.EnvParams):
    max_steps_in_episode: int = 12_000


class TickEnv(environment.Environment):
    """Reward 1 per step; episodes end only at the time limit (a truncation)."""

    @property
    def default_params(self) -> TickParams:
        return TickParams()

    def step_env(self, key, state, action, params):
        return jnp.ones(2), TickState(time=state.time + 1), jnp.float32(1.0), jnp.bool_(False), {}

    def reset_env(self, key, params):
        return jnp.ones(2), TickState(time=0)

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (2,), jnp.float32)

    def action_space(self, params):
        return spaces.Discrete(2)


def trainer_and_state(env: TickEnv):
    cfg = TrainConfig(env="CartPole-v1", network="mlp", hidden_size=8, num_hidden_layers=1,
                      num_envs=2, num_steps=4, total_timesteps=8, num_minibatches=1)
    trainer = Trainer(cfg, env, env.default_params, optax.adam(1e-3))
    state = jax.vmap(trainer.init)(jax.random.split(jax.random.PRNGKey(0), 2))
    return trainer, state


def test_episodes_run_to_the_envs_own_time_limit() -> None:
    """12,000 steps: past the old fixed cap of 10,000 (Snake's limit on boards of 15x15 and up)."""
    env = TickEnv()
    trainer, state = trainer_and_state(env)
    summary = Evaluator(trainer, env.default_params, 3)(state.params, state.norm,
                                                        jax.random.PRNGKey(1))
    assert summary["finished_episodes"] == 6 and summary["unfinished_episodes"] == 0
    assert summary["mean_return"] == 12_000 and summary["mean_episode_length"] == 12_000


def test_unfinished_episodes_are_reported_apart_never_averaged_in() -> None:
    env = TickEnv()
    trainer, state = trainer_and_state(env)
    summary = Evaluator(trainer, env.default_params, 3, max_steps=50)(
        state.params, state.norm, jax.random.PRNGKey(1))
    assert summary["finished_episodes"] == 0 and summary["unfinished_episodes"] == 6
    assert summary["mean_return"] is None and summary["mean_return_unfinished"] == 50
    assert "6 episode(s) unfinished" in format_summary(summary)


def test_a_deterministic_env_is_reported_as_one_game_per_seed() -> None:
    """Greedy episodes of a deterministic env repeat one game: say so instead of implying N
    independent samples; varied episodes are counted as they are."""
    env = TickEnv()
    trainer, state = trainer_and_state(env)
    summary = Evaluator(trainer, env.default_params, 3)(state.params, state.norm,
                                                        jax.random.PRNGKey(1))
    assert summary["distinct_episodes_per_seed"] == [1, 1]
    assert "one game per seed" in format_summary(summary)
    varied = summarize({"return": [[1.0, 2.0, 2.0], [3.0, 3.0, 3.0]],
                        "episode_length": [[5, 6, 6], [7, 7, 8]],
                        "finished": [[True, True, True], [True, True, False]]})
    assert varied["distinct_episodes_per_seed"] == [2, 1]
    assert "one game" not in format_summary(varied)


def test_periodic_evaluations_compile_once(monkeypatch) -> None:
    env = TickEnv()
    trainer, state = trainer_and_state(env)
    traces = []
    network_input = trainer.network_input
    monkeypatch.setattr(trainer, "network_input",
                        lambda norm, obs: traces.append(1) or network_input(norm, obs))
    evaluator = Evaluator(trainer, env.default_params, 2, max_steps=20)
    for k in range(3):
        evaluator(state.params, state.norm, jax.random.PRNGKey(k))
    first = len(traces)
    assert first > 0
    evaluator(state.params, state.norm, jax.random.PRNGKey(9))
    assert len(traces) == first  # no new trace, no recompilation


@pytest.mark.parametrize("bad", [0, -3])
def test_bad_episode_counts_are_refused_by_ppo_eval(bad: int, tmp_path, capsys) -> None:
    from ppo_trainer.app import eval_cli

    assert eval_cli.main([str(tmp_path), "--episodes", str(bad)]) == 2
    assert "--episodes must be positive" in capsys.readouterr().err
