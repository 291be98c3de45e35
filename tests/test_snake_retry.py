"""Snake-v0's ``retry_death``: a game that dies may restart right after its last apple."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snake_gymnax import EnvParams, EnvState, RetryState, Snake

STRAIGHT, RIGHT = 1, 2  # relative actions


def assert_same_game(a: EnvState, b: EnvState) -> None:
    """The boards, heads, headings, food and lengths agree (not the clocks)."""
    for name in ("body", "head_row", "head_col", "direction", "food", "length", "start_length"):
        np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)),
                                      err_msg=name)


def test_a_crash_restarts_right_after_the_last_apple_with_the_clock_running():
    env = Snake(6, 6, actions="relative", retry_death=1.0)
    params = env.default_params
    obs, state = env.reset(jax.random.key(0), params)
    assert isinstance(state, RetryState)
    ahead = int(state.head_row) * env.width + int(state.head_col) + 1
    state = state.replace(food=jnp.int32(ahead))  # the apple right in front of the head
    step = jax.jit(env.step)
    obs, state, reward, terminated, _, _ = step(jax.random.key(1), state, STRAIGHT, params)
    assert float(reward) == 1.0 and not bool(terminated) and int(state.length) == 4
    after_apple, obs_after_apple = state, obs
    assert_same_game(state.saved, after_apple)
    for t in range(2, 10):  # straight on into the right-hand wall
        previous = state
        obs, state, reward, terminated, _, _ = step(jax.random.key(t), state, STRAIGHT, params)
        if bool(terminated):
            break
    assert bool(terminated) and float(reward) == -1.0
    assert_same_game(state, after_apple)
    assert int(state.time) == int(previous.time) + 1  # the time limit still bounds the game
    assert int(state.steps_without_food) == 0 and not bool(state.dead)
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(obs_after_apple))
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(env.get_obs(state, params)))
    assert bool(state.retried)
    for t in range(10, 20):  # the same crash again: once per apple, so a new game
        obs, state, reward, terminated, _, _ = step(jax.random.key(t), state, STRAIGHT, params)
        if bool(terminated):
            break
    assert bool(terminated) and int(state.time) == 0 and int(state.length) == 3
    assert not bool(state.retried)


def test_starving_with_starvation_is_death_retries_from_the_start_if_no_apple_was_eaten():
    env = Snake(6, 6, actions="relative", observation="egocentric", tail_reach=True,
                retry_death=1.0)
    params = EnvParams(starvation_is_death=True, max_steps_without_food=6)
    _, start = env.reset(jax.random.key(2), params)
    corner = jnp.int32(0)  # out of the 2x2 circle the right turns trace
    start = start.replace(food=corner, saved=start.saved.replace(food=corner))
    state, step = start, jax.jit(env.step)
    for t in range(6):
        obs, state, reward, terminated, _, info = step(jax.random.key(t), state, RIGHT, params)
    assert bool(terminated) and bool(info["starved"]) and float(reward) == -1.0
    assert_same_game(state, start)
    assert int(state.time) == 6
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(start.saved_obs))


def test_a_fraction_of_first_deaths_retry_and_nothing_else_does():
    env = Snake(5, 5, retry_death=0.5)
    params = env.default_params.replace(max_steps_in_episode=30)

    def play(key):
        _, state = env.reset(key, params)

        def body(state, k):
            a, e = jax.random.split(k)
            second = state.retried  # this game already restarted from its point
            obs, state, _, terminated, truncated, _ = env.step(
                e, state, jax.random.randint(a, (), 0, 4), params)
            return state, (terminated, truncated, second, state.time)

        return jax.lax.scan(body, state, jax.random.split(key, 80))[1]

    terminated, truncated, second, time = map(
        np.asarray, jax.jit(jax.vmap(play))(jax.random.split(jax.random.key(3), 256)))
    died = terminated & ~truncated  # a 5x5 board is not won by random moves
    first = died & ~second
    retried = time[first] > 0  # a fresh start has its clock at 0
    count = first.sum()
    assert count > 1000 and (died & second).sum() > 100
    assert abs(retried.mean() - 0.5) < 4 * np.sqrt(0.25 / count), (retried.mean(), count)
    assert (time[died & second] == 0).all()  # a second death at the same point: a new game
    assert (time[truncated & ~terminated] == 0).all()  # the time limit: always a new game


def test_off_by_default_checked_and_undone_for_evaluation():
    assert type(Snake().reset(jax.random.key(0))[1]) is EnvState  # off: no extra state
    assert Snake(retry_death=0.3).evaluation_kwargs == {"retry_death": 0.0}
    assert Snake(retry_death=0.3, curriculum_start=0.2).evaluation_kwargs == {
        "curriculum_start": 0.0, "retry_death": 0.0}
    assert Snake().evaluation_kwargs == {}
    with pytest.raises(ValueError, match="retry_death"):
        Snake(retry_death=1.5)


def test_greedy_evaluation_plays_one_life() -> None:
    from ppo_trainer.app.build import build
    from ppo_trainer.config import TrainConfig

    config = TrainConfig(env="Snake-v0", env_kwargs={"width": 6, "height": 6,
                                                     "retry_death": 1.0},
                         num_envs=4, num_steps=8, total_timesteps=64, num_minibatches=2)
    trainer = build(config).trainer
    assert trainer.env.evaluation_kwargs == {"retry_death": 0.0}
    _, state = trainer.eval_env.reset(jax.random.key(0), trainer.env_params)
    assert not isinstance(state.env_state, RetryState)
