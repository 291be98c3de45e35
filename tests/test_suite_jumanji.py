"""The Jumanji adapter (``--env jumanji/ID``) on the real package: the gymnax 1.0 contract, the
observation rule, the action mask, termination vs truncation, and ppo-train/ppo-eval end to end."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("jumanji")  # the suite's package (the test extra installs it)

from suite_contract import (  # noqa: E402
    assert_auto_reset,
    first_end,
    first_valid,
    make,
    rollout,
    train_and_eval,
)

from ppo_trainer import envs  # noqa: E402
from ppo_trainer.errors import ConfigError  # noqa: E402


def test_snake_observation_rule_and_mask() -> None:
    env, params = make("jumanji/Snake-v1")
    # grid (12x12x5) then step_count, flattened and concatenated; the action mask is taken out
    assert env.observation_space(params).shape == (12 * 12 * 5 + 1,)
    assert env.action_space(params).n == 4
    assert params.max_steps_in_episode == 4000  # the env's own time_limit
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    _, timestep = env.env.reset(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(obs[:-1], np.asarray(timestep.observation.grid).reshape(-1))
    np.testing.assert_array_equal(env.valid_actions(state, params),
                                  timestep.observation.action_mask)
    image, _ = make("jumanji/Snake-v1", env_kwargs={"obs_keys": "grid"})
    assert image.observation_space(params).shape == (12, 12, 5)
    assert envs.action_mask_fn(env, params)(state).dtype == jnp.bool_


def test_snake_time_limit_is_a_truncation() -> None:
    # a snake that only takes valid moves survives 6 steps on a 12x12 board: the time limit ends
    env, params = make("jumanji/Snake-v1", env_kwargs={"time_limit": 6})
    rows = rollout(env, params, 14, policy=first_valid(env, params))
    end = first_end(rows)
    assert (end["t"], end["terminated"], end["truncated"]) == (5, False, True)
    assert_auto_reset(end)
    assert not np.array_equal(end["final"], end["obs"])  # the pre-reset observation


def test_snake_crash_is_a_termination() -> None:
    env, params = make("jumanji/Snake-v1")
    # always "up" (action 0): the snake hits the top wall within 12 steps
    rows = rollout(env, params, 14, policy=lambda state, key: jnp.int32(0))
    end = first_end(rows)
    assert end["terminated"] and not end["truncated"] and end["t"] < 12
    assert_auto_reset(end)


@pytest.mark.parametrize("env_id, kwargs, limit", [("jumanji/Snake-v1", {"time_limit": 5}, None),
                                                    ("jumanji/Game2048-v1", {}, 5)])
def test_step_equals_gymnax_step(env_id: str, kwargs: dict, limit: int | None) -> None:
    # our step selects the reset on Jumanji's own state before flattening (it is faster); every
    # output, info and state leaf must equal gymnax's Environment.step's, episode ends included
    from gymnax.environments.environment import Environment

    from ppo_trainer import suites

    env, params = suites.make(env_id, **kwargs)
    if limit is not None:  # Jumanji's time limit (Snake) or ours (Game2048 has none)
        params = params.replace(max_steps_in_episode=limit)
    n = 16
    ours = jax.jit(envs.batched_step(env))
    theirs = jax.jit(jax.vmap(lambda k, s, a, p: Environment.step(env, k, s, a, p),
                              in_axes=(0, 0, 0, None)))
    _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(1), n),
                                                       params)
    key, ends = jax.random.PRNGKey(2), 0
    for _ in range(12):
        key, k_act, k_step = jax.random.split(key, 3)
        actions = jax.random.randint(k_act, (n,), 0, env.action_space(params).n)
        keys = jax.random.split(k_step, n)
        out, ref = ours(keys, state, actions, params), theirs(keys, state, actions, params)
        assert jax.tree.structure(out) == jax.tree.structure(ref)
        for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(ref), strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        state = out[1]
        ends += int(jnp.sum(out[3] | out[4]))
    assert ends > 0  # resets were compared, not only plain steps


def test_game2048_metrics_and_our_time_limit() -> None:
    env, params = make("jumanji/Game2048-v1", env_params={"max_steps_in_episode": 7})
    assert env.observation_space(params).shape == (4, 4)  # one field keeps its shape
    assert envs.info_metrics(env, params) == ("highest_tile",)
    rows = rollout(env, params, 9, policy=first_valid(env, params))
    end = first_end(rows)
    assert (end["t"], end["terminated"], end["truncated"]) == (6, False, True)
    assert_auto_reset(end)
    assert float(rows[3]["info"]["highest_tile"]) >= 2.0


def test_game2048_is_terminated_when_no_move_is_left() -> None:
    env, params = make("jumanji/Game2048-v1")
    rows = rollout(env, params, 3000, policy=first_valid(env, params))
    end = first_end(rows)
    assert end["terminated"] and not end["truncated"]


def test_unknown_jumanji_id_and_bad_obs_keys_are_one_line() -> None:
    with pytest.raises(ConfigError, match="unknown Jumanji env 'Nope-v0'") as err:
        make("jumanji/Nope-v0")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="obs_keys pixels not among"):
        make("jumanji/Snake-v1", env_kwargs={"obs_keys": "pixels"})


def test_train_checkpoint_eval_with_action_mask(tmp_path) -> None:
    train_and_eval(tmp_path, "jumanji/Game2048-v1", "--action-mask")
