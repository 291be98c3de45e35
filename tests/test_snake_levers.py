"""Snake-v0's late-game levers: the reachability channel and the curriculum (long) start."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import build_state

from snake_gymnax import CurriculumState, EnvState, Snake
from snake_gymnax.reach import (
    reachable,
    reachable_dilate,
    reachable_host,
    tail_region,
    tail_region_host,
)

DROW = np.array([-1, 0, 1, 0])
DCOL = np.array([0, 1, 0, -1])


def reach_of(env: Snake, state: EnvState) -> np.ndarray:
    return np.asarray(reachable(state.body, state.head_row, state.head_col))


def random_safe_states(env: Snake, seed: int, games: int, steps: int) -> EnvState:
    """States of ``games`` games of random safe moves, ``steps`` each, flattened to one batch:
    long snakes (the env's curriculum start) on boards that split, for the fills' checks."""
    params = env.default_params

    def play(key):
        _, state = env.reset(key, params)

        def body(state, k):
            a, e = jax.random.split(k)
            safe = env.safe_actions(state)
            action = jnp.where(safe.any(), jax.random.categorical(a, jnp.log(safe)), 0)
            state = env.step(e, state, action, params)[1]
            return state, state

        return jax.lax.scan(body, state, jax.random.split(key, steps))[1]

    states = jax.jit(jax.vmap(play))(jax.random.split(jax.random.key(seed), games))
    return jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), states)


# ----------------------------------------------------------------------------- reachability


def test_a_pocket_closed_by_the_body_is_not_reachable():
    env = Snake(6, 6)
    ring = [(1, 1), (1, 2), (1, 3), (2, 3), (3, 3), (3, 2), (3, 1), (2, 1)]
    state = build_state(env, [(1, 0), *ring, (2, 0)], food=(5, 5), direction=3)
    got = reach_of(env, state)
    assert not got[2, 2]  # the pocket inside the ring
    assert got[2, 0]  # the tail's cell is passable
    body = np.asarray(state.body)
    expected = (body == 0) | (body == 1)
    expected[2, 2] = False
    np.testing.assert_array_equal(got, expected)


def test_the_tail_cell_opens_the_way_it_is_leaving():
    # Row 1 is all snake; the only way from row 0 to row 2 is through the tail at (1, 0).
    env = Snake(5, 3)
    cells = [(0, 4), (1, 4), (1, 3), (1, 2), (1, 1), (1, 0)]
    state = build_state(env, cells, food=(2, 2), direction=0)
    got = reach_of(env, state)
    assert got[2].all() and got[1, 0] and got[0, :4].all()
    assert not got[0, 4] and not got[1, 1:].any()  # the head and the body
    # The same board with (1, 0) a wall instead of the tail: row 2 is cut off.
    blocked = state.replace(body=state.body.at[1, 0].set(2))
    got = reach_of(env, blocked)
    assert not got[2].any() and got[0, :4].all()


@pytest.mark.parametrize("board", [(10, 10), (7, 12)])
def test_the_fills_agree_with_breadth_first_search(board):
    width, height = board
    env = Snake(width, height, curriculum_start=0.5, curriculum_min_fill=0.2)
    states = random_safe_states(env, seed=3, games=8, steps=30)
    states = jax.tree.map(lambda x: x[::3], states)
    fast = jax.jit(jax.vmap(reachable))(states.body, states.head_row, states.head_col)
    slow = jax.jit(jax.vmap(reachable_dilate))(states.body, states.head_row, states.head_col)
    np.testing.assert_array_equal(fast, slow)
    host = [
        reachable_host(np.asarray(b), int(r), int(c))
        for b, r, c in zip(states.body, states.head_row, states.head_col, strict=True)
    ]
    np.testing.assert_array_equal(fast, np.stack(host))
    assert (np.asarray(fast).sum((1, 2)) < width * height - np.asarray(states.length)).any()


@pytest.mark.parametrize("observation", ["planes", "egocentric"])
def test_reach_channel_shape_values_and_start(observation):
    plain = Snake(8, 6, observation=observation)
    env = Snake(8, 6, observation=observation, reachability=True)
    assert plain.obs_shape[-1] == 3 and env.obs_shape == plain.obs_shape[:-1] + (4,)
    assert env.channels[-1] == "reach" and len(plain.channels) == 3
    assert env.observation_space().shape == env.obs_shape
    params = env.default_params.replace(random_start=True)
    keys = jax.random.split(jax.random.key(0), 16)
    obs, state = jax.vmap(env.reset, (0, None))(keys, params)
    obs_plain, _ = jax.vmap(plain.reset, (0, None))(keys, params)
    np.testing.assert_array_equal(obs[..., :3], obs_plain)  # the other channels unchanged
    board = jax.vmap(reachable)(state.body, state.head_row, state.head_col)
    # The window shows each board cell once: the channel holds the reachable set's size.
    np.testing.assert_array_equal(obs[..., 3].sum((1, 2)), np.asarray(board).sum((1, 2)))
    if observation == "planes":
        np.testing.assert_array_equal(obs[..., 3], np.asarray(board, np.float32))
    # The constant start's precomputed channel equals the computed one.
    start_obs, start = env.reset(jax.random.key(1), env.default_params)
    np.testing.assert_array_equal(start_obs, env.get_obs(start))


def test_make_forwards_the_new_options_and_defaults_are_off():
    env, _ = gymnax.make("Snake-v0", reachability=True, curriculum_start=0.25, tail_reach=True)
    assert env.reachability and env.curriculum_start == 0.25 and env.tail_reach
    default = Snake()
    assert not default.reachability and default.curriculum_start == 0.0
    assert not default.tail_reach and not default.hunger_channel
    assert default.channels == ("head", "body", "food")
    _, state = default.reset(jax.random.key(0), default.default_params)
    assert type(state) is EnvState  # no extra field, no extra work
    with pytest.raises(ValueError, match="curriculum"):
        Snake(curriculum_start=1.5)
    with pytest.raises(ValueError, match="curriculum_min_fill"):
        Snake(curriculum_start=0.5, curriculum_min_fill=0.9, curriculum_max_fill=0.5)


# ----------------------------------------------------------------------------- curriculum start


def assert_valid_snakes(env: Snake, states: CurriculumState) -> None:
    """Every snake: counters 1..L once each, consecutive ones adjacent, head and heading
    consistent, food on a free cell."""
    body = np.asarray(states.body).astype(int)
    for i in range(body.shape[0]):
        length = int(states.length[i])
        cells = {int(v): divmod(int(f), env.width) for f, v in enumerate(body[i].ravel()) if v}
        assert sorted(cells) == list(range(1, length + 1)), i
        for k in range(1, length):
            (r0, c0), (r1, c1) = cells[k], cells[k + 1]
            assert abs(r0 - r1) + abs(c0 - c1) == 1, i
        head, neck = cells[length], cells[length - 1]
        assert head == (int(states.head_row[i]), int(states.head_col[i]))
        d = int(states.direction[i])
        if not bool(states.dead[i]):
            assert (head[0] - neck[0], head[1] - neck[1]) == (DROW[d], DCOL[d]), i
        food = int(states.food[i])
        assert food == env.num_cells or body[i].ravel()[food] == 0


@pytest.mark.parametrize("board", [(10, 10), (9, 6)])
def test_curriculum_resets_are_valid_long_snakes(board):
    env = Snake(*board, curriculum_start=1.0, curriculum_min_fill=0.5, curriculum_max_fill=0.85)
    keys = jax.random.split(jax.random.key(7), 400)
    _, states = jax.jit(jax.vmap(env.reset, (0, None)))(keys, env.default_params)
    length = np.asarray(states.length)
    n = env.num_cells
    assert length.min() >= round(0.5 * n) and length.max() <= round(0.85 * n)
    assert length.std() > 0.05 * n  # drawn, not fixed
    np.testing.assert_array_equal(states.start_length, length)
    assert not np.asarray(states.time).any() and not np.asarray(states.steps_without_food).any()
    assert_valid_snakes(env, states)
    # Never trapped at birth: the next path cell is free.
    assert np.asarray(jax.vmap(env.safe_actions)(states)).any(axis=1).all()
    # The 8 transforms and many offsets: many distinct head cells and headings.
    assert len(set(zip(states.head_row.tolist(), states.head_col.tolist(), strict=True))) > n // 3
    assert len(set(states.direction.tolist())) == 4


def test_curriculum_fraction_and_auto_reset_keep_the_body_valid():
    env = Snake(8, 8, curriculum_start=0.3)
    params = env.default_params

    def play(key):
        _, state = env.reset(key, params)

        def body(state, k):
            a, e = jax.random.split(k)
            state = env.step(e, state, jax.random.randint(a, (), 0, 4), params)[1]
            return state, state

        return jax.lax.scan(body, state, jax.random.split(key, 60))[1]

    states = jax.jit(jax.vmap(play))(jax.random.split(jax.random.key(1), 256))
    flat = jax.tree.map(lambda x: np.asarray(x).reshape(-1, *x.shape[2:]), states)
    fresh = flat.time == 0  # every episode start the auto-reset made
    long = flat.start_length[fresh] > 3
    p, count = long.mean(), fresh.sum()
    assert count > 1000
    assert abs(p - 0.3) < 4 * np.sqrt(0.3 * 0.7 / count), (p, count)
    sample = jax.tree.map(lambda x: x[::37], flat)
    assert_valid_snakes(env, sample)


def test_apples_count_from_a_long_start():
    env = Snake(10, 10, curriculum_start=1.0)
    _, state = env.reset(jax.random.key(4), env.default_params)
    start = int(state.length)
    assert start > 40
    safe = np.asarray(env.safe_actions(state))
    action = int(np.argmax(safe))
    row = int(state.head_row) + DROW[action]
    col = int(state.head_col) + DCOL[action]
    state = state.replace(food=jnp.int32(row * env.width + col))
    _, state, reward, terminated, info = env.transition(
        state, action, env.default_params, jnp.float32(0.5)
    )
    assert float(reward) == 1.0 and not bool(terminated)
    assert int(info["apples"]) == 1 and int(info["length"]) == start + 1
    assert int(state.start_length) == start


# ----------------------------------------------------------------------------- trainer


def test_ppo_train_takes_the_options(tmp_path: Path) -> None:
    from ppo_trainer.app import train_cli as cli

    argv = ["--env", "Snake-v0", "--env-kwargs",
            "width=5,height=5,reachability=true,curriculum_start=0.5",
            "--optimizer", "adam", "--num-envs", "4", "--num-steps", "8",
            "--total-timesteps", "64", "--num-minibatches", "2", "--update-epochs", "1",
            "--hidden-size", "16", "--num-hidden-layers", "1", "--eval-episodes", "2",
            "--env-params.max_steps_in_episode=40", "--no-anneal-lr",
            "--run-dir", str(tmp_path), "--run-name", "levers"]
    assert cli.main(argv) == 0
    config = json.loads((tmp_path / "levers" / "config.json").read_text())
    assert config["env_kwargs"]["reachability"] is True
    assert config["env_kwargs"]["curriculum_start"] == 0.5


def test_greedy_evaluation_plays_the_game_not_the_curriculum() -> None:
    """Training resets start long snakes; the evaluator's env starts at the centre, same spaces."""
    from ppo_trainer.app.build import build
    from ppo_trainer.config import TrainConfig

    config = TrainConfig(env="Snake-v0", env_kwargs={"width": 6, "height": 6,
                                                     "curriculum_start": 1.0},
                         num_envs=4, num_steps=8, total_timesteps=64, num_minibatches=2)
    trainer = build(config).trainer
    keys = jax.random.split(jax.random.PRNGKey(0), 16)
    _, train_states = jax.vmap(trainer.env.reset, (0, None))(keys, trainer.env_params)
    _, eval_states = jax.vmap(trainer.eval_env.reset, (0, None))(keys, trainer.env_params)
    assert (np.asarray(train_states.env_state.length) > 3).all()
    np.testing.assert_array_equal(np.asarray(eval_states.env_state.length), 3)
    params = trainer.env_params
    assert (trainer.eval_env.observation_space(params).shape
            == trainer.env.observation_space(params).shape)
    plain = build(config.replace(env_kwargs={"width": 6, "height": 6})).trainer
    assert plain.eval_env is plain.env  # nothing to undo: evaluation plays the training env


# ----------------------------------------------------------------------------- tail channel


@pytest.mark.parametrize("observation", ["planes", "egocentric"])
@pytest.mark.parametrize("reachability", [False, True])
def test_tail_channel_marks_the_tail_cell_only(observation, reachability):
    plain = Snake(8, 6, observation=observation, reachability=reachability)
    env = Snake(8, 6, observation=observation, reachability=reachability, tail_channel=True)
    assert env.channels == plain.channels + ("tail",)
    assert env.obs_shape == plain.obs_shape[:-1] + (plain.obs_shape[-1] + 1,)
    assert env.observation_space().shape == env.obs_shape
    params = env.default_params.replace(random_start=True)

    def play(key):
        obs, state = env.reset(key, params)

        def body(carry, k):
            state = carry
            a, e = jax.random.split(k)
            safe = env.safe_actions(state)
            action = jnp.where(safe.any(), jax.random.categorical(a, jnp.log(safe)), 0)
            obs, state, *_ = env.step(e, state, action, params)
            return state, (obs, state)

        return jax.lax.scan(body, state, jax.random.split(key, 25))[1]

    obs, states = jax.jit(jax.vmap(play))(jax.random.split(jax.random.key(2), 6))
    obs, states = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), (obs, states))
    n = obs.shape[0]
    # The other channels are the plain env's, in its order.
    np.testing.assert_array_equal(obs[..., :-1], jax.vmap(plain.get_obs)(states))
    tail = np.asarray(obs[..., -1])
    assert set(np.unique(tail)) == {0.0, 1.0} and (tail.sum((1, 2)) == 1).all()  # one cell
    if observation == "planes":
        np.testing.assert_array_equal(tail, np.asarray(states.body) == 1)
    else:  # the marked window cell shows the body channel's tail value, 1 / length
        body = np.asarray(obs[..., 0])[tail == 1]
        np.testing.assert_allclose(body, 1.0 / np.asarray(states.length), rtol=1e-6)
    assert n == 150
    # The constant start's precomputed channel equals the computed one.
    start_obs, start = env.reset(jax.random.key(1), env.default_params)
    np.testing.assert_array_equal(start_obs, env.get_obs(start))
    assert float(start_obs[..., -1].sum()) == 1.0


# ----------------------------------------------------------------------------- tail reach


def test_tail_region_is_the_tails_side_of_a_wall_of_body():
    # Row 1 is all snake and the head at (0, 4) sits above it: the tail at (1, 0) joins row 2
    # and the left of row 0, not the head's cell or the body.
    env = Snake(5, 3)
    cells = [(0, 4), (1, 4), (1, 3), (1, 2), (1, 1), (1, 0)]
    state = build_state(env, cells, food=(2, 2), direction=0)
    got = np.asarray(tail_region(state.body))
    assert got[1, 0] and got[2].all() and got[0, :4].all()
    assert not got[0, 4] and not got[1, 1:].any()
    # A pocket closed by the body is cut off from the tail at (2, 0).
    env = Snake(6, 6)
    ring = [(1, 1), (1, 2), (1, 3), (2, 3), (3, 3), (3, 2), (3, 1), (2, 1)]
    state = build_state(env, [(1, 0), *ring, (2, 0)], food=(5, 5), direction=3)
    got = np.asarray(tail_region(state.body))
    expected = np.asarray(state.body) <= 1
    expected[2, 2] = False
    assert got[2, 0] and not got[2, 2]
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("board", [(10, 10), (7, 12), (40, 34)])
def test_tail_region_agrees_with_breadth_first_search(board):
    width, height = board
    env = Snake(width, height, curriculum_start=0.7, curriculum_min_fill=0.3)
    bodies = np.asarray(random_safe_states(env, seed=4, games=6, steps=20).body)[::2]
    fast = np.asarray(jax.jit(jax.vmap(tail_region))(bodies))
    np.testing.assert_array_equal(fast, np.stack([tail_region_host(b) for b in bodies]))
    # Some boards split the free cells: the tail's side is not every free cell.
    assert (fast.sum((1, 2)) < (bodies <= 1).sum((1, 2))).any()


@pytest.mark.parametrize("observation", ["planes", "egocentric"])
@pytest.mark.parametrize("reachability", [False, True])
def test_tail_reach_channel_shape_values_and_start(observation, reachability):
    plain = Snake(8, 6, observation=observation, reachability=reachability, tail_channel=True)
    env = Snake(8, 6, observation=observation, reachability=reachability, tail_channel=True,
                tail_reach=True)
    k = len(plain.channels)
    assert env.channels == plain.channels[:-1] + ("tail_reach", "tail")
    assert env.observation_space().shape == env.obs_shape == plain.obs_shape[:-1] + (k + 1,)
    params = env.default_params.replace(random_start=True)
    keys = jax.random.split(jax.random.key(5), 16)
    obs, state = jax.vmap(env.reset, (0, None))(keys, params)
    obs_plain, _ = jax.vmap(plain.reset, (0, None))(keys, params)
    np.testing.assert_array_equal(np.delete(obs, k - 1, axis=-1), obs_plain)  # others unchanged
    board = np.asarray(jax.vmap(tail_region)(state.body))
    # The window shows each board cell once: the channel holds the tail region's size.
    np.testing.assert_array_equal(obs[..., k - 1].sum((1, 2)), board.sum((1, 2)))
    if observation == "planes":
        np.testing.assert_array_equal(obs[..., k - 1], board.astype(np.float32))
    # The constant start's precomputed channel equals the computed one.
    start_obs, start = env.reset(jax.random.key(1), env.default_params)
    np.testing.assert_array_equal(start_obs, env.get_obs(start))
    assert float(start_obs[..., k - 1].sum()) == 6 * 8 - 3 + 1  # free cells and the tail


# ----------------------------------------------------------------------------- hunger channel


@pytest.mark.parametrize("observation", ["planes", "egocentric"])
@pytest.mark.parametrize("reachability", [False, True])
def test_hunger_channel_is_the_starvation_clock(observation, reachability):
    options = dict(actions="relative", observation=observation, reachability=reachability,
                   tail_channel=True)
    plain, env = Snake(8, 6, **options), Snake(8, 6, **options, hunger_channel=True)
    assert env.channels == plain.channels + ("hunger",)
    assert env.observation_space().shape == env.obs_shape == plain.obs_shape[:-1] + (
        plain.obs_shape[-1] + 1,)
    params = env.default_params.replace(max_steps_without_food=40)

    def play(env, key):
        obs, state = env.reset(key, params)

        def body(state, k):
            obs, state, *_ = env.step(k, state, jnp.int32(2), params)  # circling a 2x2 square
            return state, (obs, state.steps_without_food)

        return obs, jax.lax.scan(body, state, jax.random.split(key, 12))[1]

    key = jax.random.key(6)
    start, (obs, hunger) = jax.jit(partial(play, env))(key)
    start_plain, (obs_plain, _) = jax.jit(partial(play, plain))(key)
    np.testing.assert_array_equal(obs[..., :-1], obs_plain)  # the other channels unchanged
    np.testing.assert_array_equal(start[..., :-1], start_plain)
    assert (np.asarray(start[..., -1]) == 0).all()  # the (precomputed) start has not waited
    expected = np.asarray(hunger, np.float32)[:, None, None] / 40
    np.testing.assert_allclose(obs[..., -1], np.broadcast_to(expected, obs.shape[:-1]), rtol=1e-6)
    assert len(set(np.asarray(hunger).tolist())) > 3  # the clock moved
