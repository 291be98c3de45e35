"""Snake-v0 dynamics: property tests over random play, hand-built scenarios, jit/vmap, wrappers."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import build_state
from gymnax.wrappers import FlattenObservationWrapper, GymnaxToGymWrapper, LogWrapper
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from snake_gymnax import EnvParams, EnvState, Snake
from snake_gymnax.placement import nth_free_cell

DROW = np.array([-1, 0, 1, 0])
DCOL = np.array([0, 1, 0, -1])
UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3

# A handful of shapes (each one compiles once): square, wide, tall, tiny, the benchmark size.
BOARDS = [(4, 4), (6, 4), (4, 7), (9, 9), (12, 12)]
STEPS = 96


def greedy_action(state: EnvState, width: int) -> jax.Array:
    """Head for the food (row first): makes random play eat often enough to test growth."""
    food_row, food_col = state.food // width, state.food % width
    return jnp.where(
        food_row < state.head_row,
        UP,
        jnp.where(
            food_row > state.head_row, DOWN, jnp.where(food_col > state.head_col, RIGHT, LEFT)
        ),
    )


@functools.cache
def rollout_fn(width: int, height: int):
    """Jitted rollout of ``env.step`` that also records the un-reset ``step_env`` outcome."""
    env = Snake(width, height)

    def run(key, choices, params):
        key, reset_key = jax.random.split(key)
        _, state = env.reset(reset_key, params)

        def body(state, inputs):
            step_key, choice = inputs
            # choice 0-3: that action; 4-7: greedy towards the food; 8-9: out of range.
            action = jnp.where(choice < 4, choice, greedy_action(state, width))
            action = jnp.where(choice == 8, -1, jnp.where(choice == 9, 4 + state.time % 4, action))
            action = action.astype(jnp.int32)
            obs, new_state, reward, terminated, truncated, info = env.step(
                step_key, state, action, params
            )
            # Snake.step feeds the first of its uniforms to the transition: replay it un-reset.
            food_u = env.uniforms(step_key)[0]
            raw_obs, raw_state, raw_reward, raw_term, _ = env.transition(
                state, action, params, food_u
            )
            out = dict(
                pre=state,
                action=action,
                obs=obs,
                post=new_state,
                reward=reward,
                terminated=terminated,
                truncated=truncated,
                info=info,
                raw_obs=raw_obs,
                raw_state=raw_state,
                raw_reward=raw_reward,
                raw_term=raw_term,
                post_obs=env.get_obs(new_state),
            )
            return new_state, out

        _, out = jax.lax.scan(body, state, (jax.random.split(key, STEPS), choices))
        return out

    return env, jax.jit(run)


def check_invariants(env: Snake, state, where: str) -> None:
    """Body is a path of counters 1..L, head holds L, food is free (or off-board when full)."""
    body = np.asarray(state["body"]).astype(np.int64)
    length = int(state["length"])
    counters = np.sort(body[body > 0])
    assert counters.size == length, where
    np.testing.assert_array_equal(counters, np.arange(1, length + 1), err_msg=where)
    hr, hc = int(state["head_row"]), int(state["head_col"])
    assert 0 <= hr < env.height and 0 <= hc < env.width, where
    assert body[hr, hc] == length, where
    food = int(state["food"])
    if length == env.num_cells:
        assert food == env.num_cells, where
    else:
        assert 0 <= food < env.num_cells, where
        assert body.reshape(-1)[food] == 0, f"food on the body: {where}"


# No subnormals: XLA on CPU flushes them to zero.
reward_values = st.floats(-10, 10, allow_nan=False, allow_subnormal=False, width=32).filter(
    lambda x: x != 0.0
)


@settings(max_examples=25, deadline=None)
@given(
    board=st.sampled_from(BOARDS),
    seed=st.integers(0, 2**31 - 1),
    choices=st.lists(st.integers(0, 9), min_size=STEPS, max_size=STEPS),
    apple=reward_values,
    death=reward_values,
    step_penalty=reward_values,
    max_steps=st.integers(5, 200),
    max_hungry=st.integers(3, 60),
)
def test_random_play_properties(
    board, seed, choices, apple, death, step_penalty, max_steps, max_hungry
):
    # Distinct rewards, or the reward check below cannot tell the outcomes apart.
    assume(len({apple, death, step_penalty}) == 3)
    width, height = board
    env, run = rollout_fn(width, height)
    params = EnvParams(
        apple_reward=apple,
        death_penalty=death,
        step_penalty=step_penalty,
        max_steps_in_episode=max_steps,
        max_steps_without_food=max_hungry,
    )
    out = jax.device_get(run(jax.random.key(seed), jnp.asarray(choices, jnp.int32), params))
    as_dict = {k: out[k].__dict__ if hasattr(out[k], "__dict__") else out[k] for k in out}
    pre, post, raw = as_dict["pre"], as_dict["post"], as_dict["raw_state"]
    info = out["info"]

    for t in range(STEPS):
        at = lambda tree, t=t: {k: v[t] for k, v in tree.items()}  # noqa: E731
        p, q, r = at(pre), at(post), at(raw)
        where = f"board {board}, step {t}"
        check_invariants(env, p, where)
        check_invariants(env, q, where)
        check_invariants(env, r, where)

        action = int(out["action"][t])
        old_dir = int(p["direction"])
        # Reversal into the neck and out-of-range actions are ignored: keep going straight.
        ignored = action not in range(4) or action == (old_dir + 2) % 4
        expected_dir = old_dir if ignored else action
        assert int(r["direction"]) == expected_dir, where
        row = int(p["head_row"]) + DROW[expected_dir]
        col = int(p["head_col"]) + DCOL[expected_dir]
        inside = 0 <= row < height and 0 <= col < width
        ate_cell = inside and row * width + col == int(p["food"])
        cell = int(np.asarray(p["body"])[row, col]) if inside else 0
        dies = (not inside) or cell > (0 if ate_cell else 1)
        eats = ate_cell and not dies

        # Growth and bookkeeping.
        assert int(r["length"]) == int(p["length"]) + int(eats), where
        assert int(info["length"][t]) == int(r["length"]), where
        assert int(info["length"][t]) == 3 + int(info["apples"][t]), where
        win = int(r["length"]) == env.num_cells
        assert bool(info["win"][t]) == win, where
        if not dies:  # the head moved exactly one cell in the chosen direction
            assert (int(r["head_row"]), int(r["head_col"])) == (row, col), where

        # Rewards are exactly the configured values.
        expected = death if dies else (apple if eats else step_penalty)
        assert out["reward"][t] == np.float32(expected), where

        # Termination is death or a win; truncations are never terminations.
        assert bool(out["terminated"][t]) == (dies or win), where
        assert bool(r["dead"]) == dies, where
        assert float(info["discount"][t]) == (0.0 if dies or win else 1.0), where
        hungry = int(p["steps_without_food"]) + 1 if not eats else 0
        timeout = int(p["time"]) + 1 >= max_steps
        assert bool(out["truncated"][t]) == (timeout or hungry >= max_hungry), where

        # Auto-reset: a fresh episode after done; final_observation is the terminal one.
        done = bool(out["terminated"][t]) or bool(out["truncated"][t])
        np.testing.assert_array_equal(info["final_observation"][t], out["raw_obs"][t])
        np.testing.assert_array_equal(out["obs"][t], out["post_obs"][t])
        if done:
            assert int(q["time"]) == 0 and int(q["length"]) == 3, where
            assert int(q["steps_without_food"]) == 0, where
            np.testing.assert_array_equal(np.asarray(q["body"]), np.asarray(env._start_body))
        else:
            np.testing.assert_array_equal(out["obs"][t], out["raw_obs"][t])
            assert int(q["time"]) == int(p["time"]) + 1, where


def test_random_play_hits_every_outcome():
    """The property test above is only meaningful if play eats, dies and truncates."""
    env, run = rollout_fn(6, 4)
    params = env.default_params.replace(max_steps_in_episode=40, max_steps_without_food=12)
    counts = dict(eats=0, deaths=0, truncations=0)
    for seed in range(6):
        choices = jax.random.randint(jax.random.key(100 + seed), (STEPS,), 0, 8)
        out = jax.device_get(run(jax.random.key(seed), choices, params))
        counts["eats"] += int(np.sum(np.asarray(out["reward"]) == 1.0))
        counts["deaths"] += int(np.sum(out["terminated"]))
        counts["truncations"] += int(np.sum(out["truncated"] & ~out["terminated"]))
    assert all(v > 0 for v in counts.values()), counts


# ----------------------------------------------------------------------------- scenarios


def test_eating_grows_and_rewards():
    env = Snake(8, 8)
    params = env.default_params.replace(apple_reward=2.5, step_penalty=-0.01)
    state = build_state(env, [(4, 4), (4, 3), (4, 2)], food=(4, 5), direction=RIGHT)
    state = state.replace(steps_without_food=jnp.int32(7))
    obs, new, reward, terminated, info = env.step_env(jax.random.key(0), state, RIGHT, params)
    assert float(reward) == 2.5 and not bool(terminated)
    assert int(new.length) == 4 and int(info["apples"]) == 1 and int(info["length"]) == 4
    body = np.asarray(new.body)
    # The tail stayed: the old tail cell is still occupied, the new head holds the length.
    assert body[4, 2] == 1 and body[4, 5] == 4 and (body > 0).sum() == 4
    assert int(new.steps_without_food) == 0
    assert body.reshape(-1)[int(new.food)] == 0 and int(new.food) != 4 * 8 + 5
    # Next step without food: the tail moves on.
    _, newer, reward, _, _ = env.step_env(jax.random.key(1), new, RIGHT, params)
    assert float(reward) == pytest.approx(-0.01)
    assert np.asarray(newer.body)[4, 2] == 0 and int(newer.length) == 4


def test_moving_into_the_leaving_tail_is_allowed():
    env = Snake(6, 6)
    # A 2x2 loop: head (1,1) came up from (2,1); the tail (1,2) leaves as the head enters it.
    state = build_state(env, [(1, 1), (2, 1), (2, 2), (1, 2)], food=(5, 5), direction=UP)
    _, new, reward, terminated, info = env.step_env(
        jax.random.key(0), state, RIGHT, env.default_params
    )
    assert not bool(terminated) and float(reward) == 0.0
    assert (int(new.head_row), int(new.head_col)) == (1, 2)
    body = np.asarray(new.body)
    assert body[1, 2] == 4 and (body > 0).sum() == 4 and body[1, 1] == 3


def test_moving_into_the_tail_while_eating_dies():
    # Unreachable in play (food never spawns on the body), hand-built to pin the rule down:
    # when the snake eats, its tail stays, so entering the tail cell is a collision.
    env = Snake(6, 6)
    state = build_state(env, [(1, 1), (2, 1), (2, 2), (1, 2)], food=(1, 2), direction=UP)
    _, new, reward, terminated, info = env.step_env(
        jax.random.key(0), state, RIGHT, env.default_params
    )
    assert bool(terminated) and float(reward) == -1.0 and not bool(info["win"])
    assert int(info["length"]) == 4


def test_body_and_wall_collisions_terminate():
    env = Snake(6, 6)
    params = env.default_params.replace(death_penalty=-3.0)
    # Wall.
    state = build_state(env, [(0, 2), (1, 2), (2, 2)], food=(5, 5), direction=UP)
    obs, new, reward, terminated, _ = env.step_env(jax.random.key(0), state, UP, params)
    assert bool(terminated) and float(reward) == -3.0
    # The terminal observation is the board just before the fatal move.
    np.testing.assert_array_equal(np.asarray(new.body), np.asarray(state.body))
    # Body: a U-turn into the second body segment.
    cells = [(2, 2), (2, 3), (3, 3), (3, 2), (3, 1)]
    state = build_state(env, cells, food=(5, 5), direction=LEFT)
    _, _, reward, terminated, _ = env.step_env(jax.random.key(0), state, DOWN, params)
    assert bool(terminated) and float(reward) == -3.0


def test_reversal_is_ignored():
    env = Snake(8, 8)
    _, state = env.reset(jax.random.key(0), env.default_params)
    assert int(state.direction) == RIGHT
    _, new, _, terminated, _ = env.step_env(jax.random.key(1), state, LEFT, env.default_params)
    assert not bool(terminated) and int(new.direction) == RIGHT
    assert int(new.head_col) == int(state.head_col) + 1


def test_filling_the_board_is_a_win():
    env = Snake(3, 3)
    # Eight cells in a boustrophedon path; the last free cell (0,0) holds the food.
    cells = [(0, 1), (0, 2), (1, 2), (1, 1), (1, 0), (2, 0), (2, 1), (2, 2)]
    state = build_state(env, cells, food=(0, 0), direction=LEFT)
    params = env.default_params
    obs, new, reward, terminated, info = env.step_env(jax.random.key(0), state, LEFT, params)
    assert bool(terminated) and bool(info["win"])
    assert float(reward) == params.apple_reward
    assert int(info["apples"]) == 6 and int(info["length"]) == 9
    assert int(new.food) == env.num_cells  # no food left
    assert float(obs[..., 2].sum()) == 0.0 and bool((obs[..., 1] > 0).all())
    # Through the auto-resetting step: terminated, fresh episode, final obs is the full board.
    obs2, reset_state, _, term2, trunc2, info2 = env.step(jax.random.key(0), state, LEFT, params)
    assert bool(term2) and bool(info2["win"]) and not bool(trunc2)
    assert int(reset_state.length) == 3 and int(reset_state.time) == 0
    assert bool((info2["final_observation"][..., 1] > 0).all())


def test_tiny_board_win_from_reset():
    # 4 x 1: the start snake fills three cells; the only free cell is straight ahead.
    env = Snake(4, 1)
    obs, state = env.reset(jax.random.key(3), env.default_params)
    assert int(state.food) == 3
    _, _, reward, terminated, truncated, info = env.step(
        jax.random.key(0), state, RIGHT, env.default_params
    )
    assert bool(terminated) and bool(info["win"]) and not bool(truncated)
    assert float(reward) == 1.0


def loop_policy_rollout(env, params, steps):
    """Circle a 3x3 ring far from the food: never dies, never eats."""
    state = build_state(env, [(1, 3), (1, 2), (1, 1)], food=(8, 8), direction=RIGHT)
    actions = jnp.asarray([DOWN, DOWN, LEFT, LEFT, UP, UP, RIGHT, RIGHT] * (steps // 8 + 1))

    def body(state, inputs):
        key, action = inputs
        _, state, reward, terminated, truncated, info = env.step(key, state, action, params)
        return state, (reward, terminated, truncated, info)

    keys = jax.random.split(jax.random.key(0), steps)
    return jax.lax.scan(body, state, (keys, actions[:steps]))[1]


def test_starvation_limit_truncates():
    env = Snake(10, 10)
    params = env.default_params.replace(max_steps_without_food=13, max_steps_in_episode=1000)
    _, terminated, truncated, _ = loop_policy_rollout(env, params, 13)
    assert not bool(terminated.any())
    assert np.flatnonzero(np.asarray(truncated)).tolist() == [12]


@pytest.mark.parametrize("traced", [False, True])
def test_starvation_is_death_terminates_with_the_death_penalty(traced):
    """With the option, the starvation step is a death (terminated, ``death_penalty``, zero
    discount), never a truncation; without it the same step truncates with no reward.  Both
    mark it in ``info["starved"]``; traced params take the same path as concrete ones."""
    env = Snake(10, 10)
    base = env.default_params.replace(max_steps_without_food=13, max_steps_in_episode=1000,
                                      death_penalty=-2.5)
    for on in (False, True):
        params = base.replace(starvation_is_death=jnp.bool_(on) if traced else on)
        reward, terminated, truncated, info = loop_policy_rollout(env, params, 14)
        assert np.flatnonzero(np.asarray(info["starved"])).tolist() == [12]
        assert np.flatnonzero(np.asarray(terminated)).tolist() == ([12] if on else [])
        assert np.flatnonzero(np.asarray(truncated)).tolist() == ([] if on else [12])
        assert np.asarray(reward).tolist() == [0.0] * 12 + [-2.5 if on else 0.0, 0.0]
        assert np.asarray(info["discount"]).tolist() == [1.0] * 12 + [0.0 if on else 1.0, 1.0]
    # The starved state itself is terminal (is_terminal / discount, as for a crash).
    state = build_state(env, [(1, 3), (1, 2), (1, 1)], food=(8, 8), direction=RIGHT)
    state = state.replace(steps_without_food=jnp.int32(12))
    params = base.replace(starvation_is_death=True)
    _, starved, reward, terminated, info = env.step_env(jax.random.key(0), state, DOWN, params)
    assert bool(terminated) and bool(starved.dead) and float(reward) == -2.5
    assert bool(env.is_terminal(starved, params)) and float(env.discount(starved, params)) == 0.0
    assert not bool(env.is_truncated(starved, params))
    # Eating on the limit's step resets the hunger: no starvation.
    hungry = build_state(env, [(1, 3), (1, 2), (1, 1)], food=(2, 3), direction=RIGHT)
    hungry = hungry.replace(steps_without_food=jnp.int32(12))
    _, fed, reward, terminated, info = env.step_env(jax.random.key(0), hungry, DOWN, params)
    assert not bool(terminated) and not bool(info["starved"]) and float(reward) == 1.0


def test_time_limit_truncates():
    env = Snake(10, 10)
    params = env.default_params.replace(max_steps_without_food=1000, max_steps_in_episode=7)
    _, terminated, truncated, _ = loop_policy_rollout(env, params, 7)
    assert not bool(terminated.any())
    assert np.flatnonzero(np.asarray(truncated)).tolist() == [6]


def test_default_params_scale_with_the_board():
    small, large = Snake(5, 5).default_params, Snake(20, 10).default_params
    assert large.max_steps_without_food == 8 * small.max_steps_without_food
    assert large.max_steps_in_episode > large.max_steps_without_food
    # 10 x 10 keeps its original limits; past 100 cells the time limit grows as area**2 / 2,
    # what a board-filling snake needs (50 * area is too short there).
    ten = Snake().default_params
    assert (ten.max_steps_in_episode, ten.max_steps_without_food) == (5000, 200)
    sixteen = Snake(16, 16).default_params
    assert (sixteen.max_steps_in_episode, sixteen.max_steps_without_food) == (256**2 // 2, 512)
    with pytest.raises(ValueError):
        Snake(2, 5)


@pytest.mark.parametrize("traced", [False, True])
def test_zero_limits_are_derived_from_the_board(traced):
    """``EnvParams()`` (limits 0 = auto) truncates at the board's limits, not 10 x 10's."""
    env = Snake(16, 16)
    params = EnvParams()
    assert (params.max_steps_in_episode, params.max_steps_without_food) == (0, 0)
    truncated = jax.jit(env.is_truncated) if traced else env.is_truncated
    state = build_state(env, [(4, 4), (4, 3), (4, 2)], food=(9, 9), direction=RIGHT)

    def at(time, hungry):
        s = state.replace(time=jnp.int32(time), steps_without_food=jnp.int32(hungry))
        return bool(truncated(s, params))

    assert not at(32767, 511)
    assert at(32768, 0) and at(0, 512)
    # Explicit values still win over the board's.
    assert bool(truncated(state.replace(time=jnp.int32(7)), params.replace(max_steps_in_episode=7)))
    resolved = env.resolve_params(params)
    assert (resolved.max_steps_in_episode, resolved.max_steps_without_food) == (32768, 512)
    assert resolved == env.default_params


# ----------------------------------------------------------------------------- hardening


def hamiltonian_actions(width: int, height: int) -> np.ndarray:
    """Absolute action per cell of a fixed Hamiltonian cycle (``height`` even).

    Row 0 runs right, then rows 1..H-1 snake left/right over columns 1..W-1, and column 0 leads
    back up.  The centre start (row H/2, heading right, body to the left) lies on the cycle.
    """
    assert height % 2 == 0
    table = np.zeros((height, width), np.int32)
    for r in range(height):
        for c in range(width):
            if c == 0:
                table[r, c] = RIGHT if r == 0 else UP
            elif r == 0:
                table[r, c] = RIGHT if c < width - 1 else DOWN
            elif r % 2 == 1:  # odd rows run left
                table[r, c] = LEFT if c > 1 or r == height - 1 else DOWN
            else:  # even rows (>= 2) run right
                table[r, c] = RIGHT if c < width - 1 else DOWN
    return table


@functools.cache
def hamiltonian_player(width: int, height: int):
    """Jitted ``(key, params) -> (steps, win, terminated, truncated, apples)`` of one episode."""
    env = Snake(width, height)
    table = jnp.asarray(hamiltonian_actions(width, height))

    def play(key, params):
        _, state = env.reset(key, params)

        def cond(carry):
            return ~carry[1]

        def body(carry):
            state, _, steps, key, _ = carry
            key, step_key = jax.random.split(key)
            action = table[state.head_row, state.head_col]
            _, state, _, terminated, truncated, info = env.step(step_key, state, action, params)
            outcome = jnp.stack([info["win"], terminated, truncated])
            return state, terminated | truncated, steps + 1, key, (outcome, info["apples"])

        init = (state, jnp.bool_(False), jnp.int32(0), key, (jnp.zeros(3, bool), jnp.int32(0)))
        _, _, steps, _, (outcome, apples) = jax.lax.while_loop(cond, body, init)
        return steps, outcome[0], outcome[1], outcome[2], apples

    return env, jax.jit(play)


def test_hamiltonian_cycle_player_wins_16x16_with_default_limits():
    """A board-filling snake needs ~area**2 / 4 steps: the default limits must allow a win."""
    env, play = hamiltonian_player(16, 16)
    key = jax.random.key(0)
    for params in (env.default_params, EnvParams()):
        steps, win, terminated, truncated, apples = play(key, params)
        assert bool(win) and bool(terminated) and not bool(truncated), (params, int(steps))
        assert int(apples) == 256 - 3
        assert 50 * 256 < int(steps) <= env.auto_max_steps_in_episode
    # The old limit (50 * area) truncates this very game before the win.
    steps, win, _, truncated, _ = play(key, env.default_params.replace(max_steps_in_episode=12800))
    assert bool(truncated) and not bool(win) and int(steps) == 12800


@pytest.mark.parametrize("bad", [-1, 4, 5, 7, 100, -(2**31)])
def test_out_of_range_absolute_actions_keep_going_straight(bad):
    env = Snake(8, 8)
    params = env.default_params
    for direction, cells in [
        (RIGHT, [(4, 4), (4, 3), (4, 2)]),
        (UP, [(3, 2), (4, 2), (5, 2)]),
        (LEFT, [(2, 2), (2, 3), (2, 4)]),
        (DOWN, [(5, 6), (4, 6), (3, 6)]),
    ]:
        state = build_state(env, cells, food=(7, 0), direction=direction)
        _, new, reward, terminated, info = env.step_env(jax.random.key(0), state, bad, params)
        assert not bool(terminated) and float(reward) == 0.0, (bad, direction)
        assert int(new.direction) == direction
        assert (int(new.head_row), int(new.head_col)) == (
            cells[0][0] + DROW[direction],
            cells[0][1] + DCOL[direction],
        )


def test_death_is_recorded_for_is_terminal_and_discount():
    env = Snake(6, 6)
    params = env.default_params
    state = build_state(env, [(0, 2), (1, 2), (2, 2)], food=(5, 5), direction=UP)
    assert not bool(env.is_terminal(state, params)) and float(env.discount(state, params)) == 1.0
    # Into the wall.
    _, dead, _, terminated, info = env.step_env(jax.random.key(0), state, UP, params)
    assert bool(terminated) and bool(dead.dead)
    assert bool(env.is_terminal(dead, params)) and bool(env.is_terminated(dead))
    assert float(env.discount(dead, params)) == 0.0 and float(env.discount(dead)) == 0.0
    assert float(info["discount"]) == 0.0
    # A safe step: discount 1, not terminal.
    _, alive, _, terminated, info = env.step_env(jax.random.key(0), state, RIGHT, params)
    assert not bool(terminated) and not bool(alive.dead)
    assert float(info["discount"]) == 1.0 and float(env.discount(alive, params)) == 1.0
    # Through the auto-resetting step: info carries the discount of the transition.
    *_, terminated, truncated, info = env.step(jax.random.key(0), state, UP, params)
    assert bool(terminated) and float(info["discount"]) == 0.0
    assert info["discount"].dtype == jnp.float32


def test_win_is_terminal_with_zero_discount():
    env = Snake(4, 1)
    _, state = env.reset(jax.random.key(3), env.default_params)
    _, full, reward, terminated, info = env.step_env(
        jax.random.key(0), state, RIGHT, env.default_params
    )
    assert bool(info["win"]) and bool(terminated) and not bool(full.dead)
    assert bool(env.is_terminal(full)) and float(env.discount(full)) == 0.0
    assert float(info["discount"]) == 0.0


def test_reset_draws_food_as_it_always_did():
    """A key gives the same start as before the options: food from ``uniform(key)``."""
    env = Snake(7, 6)
    keys = jax.random.split(jax.random.key(4), 64)
    _, states = jax.vmap(env.reset, in_axes=(0, None))(keys, env.default_params)
    u = np.asarray(jax.vmap(jax.random.uniform)(keys))
    free = env._start_free
    np.testing.assert_array_equal(states.food, free[np.floor(u * free.size).astype(int)])


def test_uniforms_are_one_draw_matching_jax_random_uniform():
    """``Snake.step`` draws once; its first two numbers are exactly ``uniform(key, (2,))``."""
    env = Snake(6, 6)
    keys = jax.random.split(jax.random.key(0), 512)
    food_u, reset_u, start_u = jax.vmap(env.uniforms)(keys)
    expected = jax.vmap(lambda k: jax.random.uniform(k, (2,)))(keys)
    np.testing.assert_array_equal(food_u, expected[:, 0])
    np.testing.assert_array_equal(reset_u, expected[:, 1])
    start_u = np.asarray(start_u)
    assert ((start_u >= 0) & (start_u < 1)).all()
    # Spare bits: independent of the other two, and roughly uniform.
    assert abs(np.corrcoef(start_u, np.asarray(food_u))[0, 1]) < 0.15
    assert np.histogram(start_u, bins=4, range=(0, 1))[0].min() > 80


# ----------------------------------------------------------------------------- observation


def test_observation_channels():
    env = Snake(7, 5)
    obs, state = env.reset(jax.random.key(0), env.default_params)
    assert obs.shape == (5, 7, 3) and obs.dtype == jnp.float32
    assert env.observation_space(env.default_params).contains(obs)
    head, body, food = (np.asarray(obs[..., i]) for i in range(3))
    assert head.sum() == 1 and head[int(state.head_row), int(state.head_col)] == 1
    # Body by age: 1 at the head, 2/3 at the neck, 1/3 at the tail (heading right).
    r, c = int(state.head_row), int(state.head_col)
    np.testing.assert_allclose(body[r, c - 2 : c + 1], [1 / 3, 2 / 3, 1.0], rtol=1e-6)
    assert (body > 0).sum() == 3
    assert food.sum() == 1 and food.reshape(-1)[int(state.food)] == 1


# ----------------------------------------------------------------------------- jit / vmap


def test_vmap_over_keys_and_determinism():
    env = Snake(10, 10)
    params = env.default_params
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))

    def play(seed):
        keys = jax.random.split(jax.random.key(seed), 16)
        obs, state = reset(keys, params)
        total = jnp.zeros(16)
        for t in range(20):
            actions = jax.random.randint(jax.random.key(1000 + t), (16,), 0, 4)
            obs, state, reward, *_ = step(
                jax.random.split(keys[t % 16], 16), state, actions, params
            )
            total = total + reward
        return obs, state, total

    a, b = play(0), play(0)
    assert a[0].shape == (16, 10, 10, 3)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    foods = np.asarray(a[1].food)
    assert len(set(foods.tolist())) > 1  # different keys, different boards


def test_vmap_over_env_params():
    env = Snake(8, 8)
    n = 5
    apple = jnp.linspace(0.5, 4.5, n)
    # Every field gets the batch axis (the ones not varied here are broadcast).
    params = jax.tree.map(lambda x: jnp.full(n, x), EnvParams()).replace(
        apple_reward=apple,
        death_penalty=-jnp.arange(n, dtype=jnp.float32),
        step_penalty=jnp.full(n, -0.1),
        max_steps_in_episode=jnp.full(n, 100),
        max_steps_without_food=jnp.arange(1, n + 1),
    )
    state = build_state(env, [(4, 4), (4, 3), (4, 2)], food=(4, 5), direction=RIGHT)
    states = jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *x.shape)), state)
    keys = jax.random.split(jax.random.key(0), n)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, None, 0)))
    _, states, reward, terminated, truncated, _ = step(keys, states, RIGHT, params)
    np.testing.assert_allclose(reward, apple)
    assert not bool(terminated.any()) and not bool(truncated.any())
    states = states.replace(food=jnp.full(n, 0, jnp.int32))  # new food out of the way
    _, _, reward, _, truncated, _ = step(keys, states, RIGHT, params)
    np.testing.assert_allclose(reward, -0.1)
    # Starvation limit 1 fires for the first env only (one step without food).
    np.testing.assert_array_equal(truncated, [True, False, False, False, False])


# ----------------------------------------------------------------------------- wrappers


def test_log_and_flatten_wrappers():
    env = Snake(6, 6)
    params = env.default_params
    wrapped = LogWrapper(FlattenObservationWrapper(env))
    obs, state = wrapped.reset(jax.random.key(0), params)
    assert obs.shape == (6 * 6 * 3,)
    assert wrapped.observation_space(params).shape == (6 * 6 * 3,)
    done_seen = False
    for t in range(60):
        obs, state, reward, terminated, truncated, info = wrapped.step(
            jax.random.key(t), state, UP, params
        )
        done_seen |= bool(info["returned_episode"])
    assert obs.shape == (108,) and done_seen
    assert {"apples", "length", "win", "returned_episode_returns"} <= set(info)


def test_gymnax_to_gym_wrapper():
    env = Snake(5, 5)
    gym_env = GymnaxToGymWrapper(env, env.default_params, seed=0)
    obs, _ = gym_env.reset(seed=1)
    assert gym_env.observation_space.shape == (5, 5, 3)
    assert gym_env.action_space.n == 4
    obs, reward, terminated, truncated, info = gym_env.step(1)
    assert np.asarray(obs).shape == (5, 5, 3) and "apples" in info
    frame = gym_env.render()
    assert frame.shape == (5 * 16, 5 * 16, 3) and frame.dtype == np.uint8


@settings(max_examples=30, deadline=None)
@given(
    board=st.sampled_from([(4, 4), (7, 5), (12, 12)]),
    seed=st.integers(0, 2**31 - 1),
    density=st.floats(0.0, 1.0),
)
def test_food_sampler_picks_exactly_the_nth_free_cell(board, seed, density):
    """With ``u`` uniform, the n-th-free-cell map makes food uniform over exactly the free cells."""
    width, height = board
    env = Snake(width, height)
    rng = np.random.default_rng(seed)
    body = (rng.random((height, width)) < density).astype(np.uint8)
    free = np.flatnonzero(body.reshape(-1) == 0)
    nth = functools.partial(nth_free_cell, height=height, width=width)
    picks = jax.jit(jax.vmap(nth, in_axes=(None, 0)))(
        jnp.asarray(body, env.body_dtype), jnp.arange(free.size + 1, dtype=jnp.int32)
    )
    np.testing.assert_array_equal(np.asarray(picks[: free.size]), free)
    assert int(picks[free.size]) == env.num_cells  # out of range: no free cell left


def test_state_space_describes_the_state():
    env = Snake(6, 5)
    _, state = env.reset(jax.random.key(0), env.default_params)
    space = env.state_space(env.default_params)
    assert set(space.spaces) == set(state.__dataclass_fields__)
    assert env.action_space(env.default_params).n == env.num_actions == 4
    assert env.name == "Snake-v0"
