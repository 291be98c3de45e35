"""The Brax adapter (``--env brax/ID``) on the real package: the gymnax 1.0 contract, termination
vs truncation from Brax's ``EpisodeWrapper``, restarts from the cached first reset, metrics, and
ppo-train/ppo-eval end to end."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("brax")  # the suite's package (the test extra installs it)

from suite_contract import assert_auto_reset, first_end, make, rollout, train_and_eval  # noqa: E402

from ppo_trainer import envs  # noqa: E402
from ppo_trainer.errors import ConfigError  # noqa: E402

EPISODE = 12  # steps; inverted_pendulum stays up for that long when it is not pushed


@pytest.fixture(scope="module")
def pendulum():
    """One env for the module, so its jitted step compiles once; Brax's ``spring`` pipeline
    compiles faster than the default ``mjx``, and the time limit and the termination
    come from Brax's wrapper and env whatever the pipeline."""
    return make("brax/inverted_pendulum",
                env_kwargs={"episode_length": EPISODE, "backend": "spring"})


def constant(value: float):
    def policy(state, key):
        return jnp.full((1,), value, jnp.float32)
    return policy


def test_spaces_and_time_limit(pendulum) -> None:
    env, params = pendulum
    assert env.observation_space(params).shape == (4,)
    space = env.action_space(params)
    assert space.shape == (1,)
    np.testing.assert_array_equal([space.low, space.high], [-1.0, 1.0])
    assert params.max_steps_in_episode == EPISODE
    default, default_params = make("brax/inverted_pendulum")
    assert default_params.max_steps_in_episode == 1000  # Brax's default episode_length
    assert default.env.env.backend == "mjx"


def test_time_limit_is_a_truncation_and_restarts_from_the_first_reset(pendulum) -> None:
    env, params = pendulum
    first, _ = env.reset(jax.random.PRNGKey(0), params)
    rows = rollout(env, params, EPISODE + 2, policy=constant(0.0))
    end = first_end(rows)
    assert (end["t"], end["terminated"], end["truncated"]) == (EPISODE - 1, False, True)
    assert_auto_reset(end)
    assert not np.array_equal(end["final"], end["obs"])  # final_observation: the pre-reset one
    np.testing.assert_array_equal(end["obs"], first)  # the cached first reset, not a new draw


def test_a_falling_pole_is_a_termination(pendulum) -> None:
    env, params = pendulum
    first, _ = env.reset(jax.random.PRNGKey(0), params)
    rows = rollout(env, params, EPISODE, policy=constant(1.0))  # full force topples the pole
    end = first_end(rows)
    assert end["t"] < EPISODE - 1
    assert (end["terminated"], end["truncated"]) == (True, False)
    assert_auto_reset(end)
    assert abs(float(end["final"][1])) > 0.2  # Brax's termination: the pole angle left +-0.2
    np.testing.assert_array_equal(end["obs"], first)


def test_brax_metrics_reach_info() -> None:
    env, params = make("brax/halfcheetah", env_kwargs={"episode_length": 5, "backend": "spring"})
    assert {"x_velocity", "reward_ctrl"} <= set(envs.info_metrics(env, params))
    assert env.action_space(params).shape == (6,)


def test_unknown_brax_id_is_one_line() -> None:
    with pytest.raises(ConfigError, match="unknown Brax env 'Nope'.*inverted_pendulum"):
        make("brax/Nope")


@pytest.mark.slow
def test_train_checkpoint_eval(tmp_path) -> None:
    train_and_eval(tmp_path, "brax/inverted_pendulum", "--env-kwargs", "episode_length=20")
