"""The MuJoCo Playground adapter (``--env playground/ID``) on the real package: the gymnax 1.0
contract, termination vs truncation, restarts from the cached first reset, metrics, the refusal of
tasks whose models are downloaded, and ppo-train/ppo-eval end to end."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("mujoco_playground")  # the suite's package (the test extra installs it)

from suite_contract import assert_auto_reset, first_end, make, rollout, train_and_eval  # noqa: E402

from ppo_trainer.errors import ConfigError  # noqa: E402

EPISODE = 6


@pytest.fixture(scope="module")
def cartpole():
    """One env for the module: its reset and step compile once (~25 s each on a 2-core CPU)."""
    return make("playground/CartpoleBalance", env_kwargs={"episode_length": EPISODE})


def constant(value: float):
    def policy(state, key):
        return jnp.full((1,), value, jnp.float32)
    return policy


def test_spaces_metrics_and_time_limit(cartpole) -> None:
    env, params = cartpole
    assert env.observation_space(params).shape == (5,)
    space = env.action_space(params)
    assert space.shape == (1,)
    np.testing.assert_array_equal([space.low, space.high], [-1.0, 1.0])
    assert params.max_steps_in_episode == EPISODE  # the config's episode_length
    rows = rollout(env, params, 1, policy=constant(0.0))
    assert {"reward/upright", "reward/centered"} <= set(rows[0]["info"])


def test_time_limit_is_a_truncation_and_restarts_from_the_first_reset(cartpole) -> None:
    env, params = cartpole
    first, _ = env.reset(jax.random.PRNGKey(0), params)
    rows = rollout(env, params, EPISODE + 1, policy=constant(1.0))
    end = first_end(rows)
    assert (end["t"], end["terminated"], end["truncated"]) == (EPISODE - 1, False, True)
    assert_auto_reset(end)
    assert not np.array_equal(end["final"], end["obs"])
    np.testing.assert_array_equal(end["obs"], first)


def test_diverged_physics_is_a_termination(cartpole) -> None:
    """A DM Control task's own end is a diverged simulation (NaN state): ``done`` without the
    time limit, so a termination, and the next episode starts from the cached first reset."""
    env, params = cartpole
    first, state = env.reset(jax.random.PRNGKey(0), params)
    action = jnp.full((1,), jnp.nan, jnp.float32)
    obs, state, _, terminated, truncated, info = jax.jit(env.step)(
        jax.random.PRNGKey(1), state, action, params)
    assert (bool(terminated), bool(truncated), int(state.time)) == (True, False, 0)
    assert np.isnan(np.asarray(info["final_observation"])).any()
    np.testing.assert_array_equal(obs, first)


def test_a_task_that_downloads_its_model_is_refused_in_one_line() -> None:
    from mujoco_playground._src import mjx_env

    if mjx_env.MENAGERIE_PATH.exists():
        pytest.skip("mujoco_menagerie is installed here: locomotion tasks can be built")
    with pytest.raises(ConfigError, match="locomotion task.*downloads.*brax/ant") as err:
        make("playground/Go1JoystickFlatTerrain")
    assert "\n" not in str(err.value)


def test_unknown_playground_id_and_config_key_are_one_line() -> None:
    with pytest.raises(ConfigError, match="unknown MuJoCo Playground env 'Nope'.*CartpoleBalance"):
        make("playground/Nope")
    with pytest.raises(ConfigError, match="nope not in CartpoleBalance's config"):
        make("playground/CartpoleBalance", env_kwargs={"nope": 1})


@pytest.mark.slow
def test_train_checkpoint_eval(tmp_path) -> None:
    train_and_eval(tmp_path, "playground/CartpoleBalance", "--env-kwargs", "episode_length=20")
