"""The Navix adapter (``--env navix/ID``) on the real package: the gymnax 1.0 contract,
termination vs truncation from Navix's step types, frames, and ppo-train/ppo-eval end to end."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("navix")  # the suite's package (the test extra installs it)

from suite_contract import assert_auto_reset, first_end, make, rollout, train_and_eval  # noqa: E402

from ppo_trainer.errors import ConfigError  # noqa: E402

# Navix-Empty-5x5: the agent starts in the top-left corner facing east, the goal is bottom-right
FORWARD, RIGHT = 2, 1
TO_GOAL = [FORWARD, FORWARD, RIGHT, FORWARD, FORWARD]


def scripted(actions):
    def policy(state, key):
        return jnp.int32(actions[int(state.time) % len(actions)])
    return policy


def test_observation_is_the_symbolic_grid_as_an_image() -> None:
    env, params = make("navix/Navix-Empty-5x5-v0")
    assert env.observation_space(params).shape == (5, 5, 3)
    assert env.action_space(params).n == 7
    assert params.max_steps_in_episode == 100  # Navix's max_steps
    frame = env.render_frame(env.reset(jax.random.PRNGKey(0), params)[1], params)
    assert frame.dtype == jnp.uint8 and frame.ndim == 3 and frame.shape[-1] == 3
    assert int(frame.max()) > int(frame.min())


def test_reaching_the_goal_is_a_termination() -> None:
    env, params = make("navix/Navix-Empty-5x5-v0")
    rows = rollout(env, params, 7, policy=scripted(TO_GOAL))
    end = first_end(rows)
    assert (end["t"], end["terminated"], end["truncated"]) == (4, True, False)
    assert_auto_reset(end)
    assert not np.array_equal(end["final"], end["obs"])


def test_max_steps_is_a_truncation() -> None:
    env, params = make("navix/Navix-Empty-5x5-v0", env_kwargs={"max_steps": 6})
    rows = rollout(env, params, 9, policy=scripted([RIGHT]))  # turning in place never ends
    end = first_end(rows)
    assert (end["t"], end["terminated"], end["truncated"]) == (5, False, True)
    assert_auto_reset(end)


def test_unknown_navix_id_is_one_line() -> None:
    with pytest.raises(ConfigError, match="unknown Navix env 'Nope'"):
        make("navix/Nope")


def test_train_checkpoint_eval(tmp_path) -> None:
    train_and_eval(tmp_path, "navix/Navix-Empty-5x5-v0")
