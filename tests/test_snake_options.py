"""Snake-v0 options: relative actions, egocentric observation, action masks, food shaping,
random start, and the symmetry declaration for data augmentation."""

from __future__ import annotations

import functools

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import build_state

from snake_gymnax import EGOCENTRIC_CHANNELS, EnvParams, EnvState, Snake
from snake_gymnax.rules import holes

DROW = np.array([-1, 0, 1, 0])
DCOL = np.array([0, 1, 0, -1])
UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3


@functools.cache
def random_states(width: int, height: int, episodes: int = 12, steps: int = 80) -> EnvState:
    """Live states from mostly-greedy play (long snakes, walls and bodies nearby), on the host.

    The state layout does not depend on the action or observation option, so one set serves
    every configuration of a board.
    """
    env = Snake(width, height)
    params = env.default_params

    def run(key):
        key, reset_key = jax.random.split(key)
        _, state = env.reset(reset_key, params.replace(random_start=True))

        def body(state, step_key):
            k_greedy, k_action, k_env = jax.random.split(step_key, 3)
            food_row, food_col = state.food // width, state.food % width
            greedy = jnp.where(
                food_row < state.head_row,
                UP,
                jnp.where(
                    food_row > state.head_row,
                    DOWN,
                    jnp.where(food_col > state.head_col, RIGHT, LEFT),
                ),
            )
            # Greedy unless that dies; random otherwise, so some states face walls and bodies.
            safe = env.safe_actions(state, params)
            greedy = jnp.where(safe[greedy], greedy, jnp.argmax(safe))
            random = jax.random.randint(k_action, (), 0, 4)
            action = jnp.where(jax.random.uniform(k_greedy) < 0.8, greedy, random)
            _, state, *_ = env.step(k_env, state, action, params.replace(random_start=True))
            return state, state

        return jax.lax.scan(body, state, jax.random.split(key, steps))[1]

    states = jax.jit(jax.vmap(run))(
        jax.random.split(jax.random.key(width * 100 + height), episodes)
    )
    flat = jax.tree.map(lambda x: np.asarray(x).reshape(-1, *x.shape[2:])[::7], states)
    return flat


def index(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


def stack(states):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *states)


# ----------------------------------------------------------------------------- construction


def test_make_forwards_the_constructor_options():
    env, params = gymnax.make(
        "Snake-v0", width=7, height=5, actions="relative", observation="egocentric"
    )
    assert (env.actions, env.observation) == ("relative", "egocentric")
    assert env.num_actions == env.action_space(params).n == 3
    assert env.obs_shape == (13, 13, len(EGOCENTRIC_CHANNELS))
    default, _ = gymnax.make("Snake-v0")
    assert (default.actions, default.observation, default.num_actions) == ("absolute", "planes", 4)
    with pytest.raises(ValueError, match="actions"):
        Snake(actions="diagonal")
    with pytest.raises(ValueError, match="observation"):
        Snake(observation="pixels")


# ----------------------------------------------------------------------------- relative actions


def test_relative_turns_from_the_start():
    env = Snake(8, 8, actions="relative")
    params = env.default_params
    _, state = env.reset(jax.random.key(0), params)
    assert int(state.direction) == RIGHT
    for action, direction in [(0, UP), (1, RIGHT), (2, DOWN), (-1, RIGHT), (3, RIGHT), (9, RIGHT)]:
        _, new, _, terminated, _ = env.step_env(jax.random.key(1), state, action, params)
        assert int(new.direction) == direction and not bool(terminated), action
        assert int(new.head_row) == int(state.head_row) + DROW[direction]
        assert int(new.head_col) == int(state.head_col) + DCOL[direction]


def test_relative_actions_are_absolute_turns_on_random_states():
    """Relative ``a`` from heading ``d`` == absolute ``(d + a - 1) mod 4``; out of range: straight."""
    states = random_states(6, 5)
    relative, absolute = Snake(6, 5, actions="relative"), Snake(6, 5)
    params = relative.default_params
    n = states.length.shape[0]
    food_u = jnp.linspace(0.0, 0.99, n)
    for action in (0, 1, 2, -1, 3, 7):
        turn = action - 1 if action in (0, 1, 2) else 0
        absolute_action = (jnp.asarray(states.direction) + turn) % 4
        got = jax.vmap(relative.transition, in_axes=(0, None, None, 0))(
            states, action, params, food_u
        )
        want = jax.vmap(absolute.transition, in_axes=(0, 0, None, 0))(
            states, absolute_action, params, food_u
        )
        for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_array_equal(x, y, err_msg=f"relative action {action}")


# ----------------------------------------------------------------------------- egocentric


def egocentric_reference(env: Snake, state) -> np.ndarray:
    """Independent construction: paste the board into a big canvas centred on the head, then
    ``np.rot90`` it so the heading points up (right -> 1 counter-clockwise turn, etc.)."""
    size = 2 * max(env.height, env.width) - 1
    c = size // 2
    canvas = np.zeros((size, size, 3), np.float32)
    canvas[..., 2] = 1.0  # wall everywhere ...
    hr, hc = int(state.head_row), int(state.head_col)
    body = np.asarray(state.body).astype(np.float32) / int(state.length)
    food = np.zeros((env.height, env.width), np.float32)
    if int(state.food) < env.num_cells:
        food.reshape(-1)[int(state.food)] = 1.0
    top, left = c - hr, c - hc
    window = canvas[top : top + env.height, left : left + env.width]
    window[..., 0], window[..., 1], window[..., 2] = body, food, 0.0  # ... but on the board
    return np.rot90(canvas, int(state.direction), axes=(0, 1))


@pytest.mark.parametrize("board", [(6, 6), (7, 4), (4, 7)])
def test_egocentric_observation_matches_the_reference(board):
    width, height = board
    env = Snake(width, height, actions="relative", observation="egocentric")
    states = random_states(width, height)
    obs = np.asarray(jax.jit(jax.vmap(env.get_obs))(states))
    size = 2 * max(width, height) - 1
    assert obs.shape[1:] == env.obs_shape == (size, size, 3) and obs.dtype == np.float32
    directions = np.asarray(states.direction)
    assert set(directions.tolist()) == {0, 1, 2, 3}
    c = size // 2
    for i in range(obs.shape[0]):
        state = index(states, i)
        # XLA may divide by the length as a multiply by its reciprocal: 1 ulp apart.
        want = egocentric_reference(env, state)
        np.testing.assert_allclose(obs[i], want, rtol=1e-6, atol=0, err_msg=str(i))
        # The head is the centre; the whole board is visible; the cell ahead is the next cell.
        assert obs[i, c, c, 0] == 1.0
        assert (obs[i, ..., 2] == 0).sum() == width * height
        assert (obs[i, ..., 0] > 0).sum() == int(state.length)
        d = int(state.direction)
        r, col = int(state.head_row) + DROW[d], int(state.head_col) + DCOL[d]
        ahead_is_wall = not (0 <= r < height and 0 <= col < width)
        assert obs[i, c - 1, c, 2] == float(ahead_is_wall)
        if not ahead_is_wall:
            ahead = np.asarray(state.body)[r, col] / int(state.length)
            assert obs[i, c - 1, c, 0] == pytest.approx(ahead, rel=1e-6)


def test_egocentric_rollout_under_vmap():
    env = Snake(5, 5, actions="relative", observation="egocentric")
    params = env.default_params
    keys = jax.random.split(jax.random.key(0), 8)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    space = env.observation_space(params)
    for t in range(30):
        actions = jax.random.randint(jax.random.key(t), (8,), 0, 3)
        obs, state, _, _, _, info = step(jax.random.split(keys[t % 8], 8), state, actions, params)
        assert obs.shape == (8, 9, 9, 3) and info["final_observation"].shape == (8, 9, 9, 3)
        assert all(space.contains(o) for o in obs)
        np.testing.assert_array_equal(obs[:, 4, 4, 0], 1.0)  # the head, always at the centre


# ----------------------------------------------------------------------------- action masks


def test_valid_actions_mask_only_the_reversal():
    env = Snake(6, 6)
    rel = Snake(6, 6, actions="relative")
    for direction in range(4):
        state = build_state(env, [(3, 3), (3, 2), (3, 1)], food=(0, 0), direction=direction)
        mask = np.asarray(env.valid_actions(state, env.default_params))
        assert mask.tolist() == [a != (direction + 2) % 4 for a in range(4)]
        assert np.asarray(rel.valid_actions(state)).tolist() == [True, True, True]
    states = random_states(6, 6)
    masks = np.asarray(jax.vmap(env.valid_actions)(states))
    assert masks.shape == (states.length.shape[0], 4) and (masks.sum(axis=1) == 3).all()
    assert jax.vmap(rel.valid_actions)(states).shape == (states.length.shape[0], 3)


@pytest.mark.parametrize("actions", ["absolute", "relative"])
def test_safe_actions_are_exactly_the_valid_moves_that_do_not_die(actions):
    env = Snake(6, 5, actions=actions)
    params = env.default_params
    states = random_states(6, 5)
    n = states.length.shape[0]
    safe = np.asarray(jax.vmap(env.safe_actions, in_axes=(0, None))(states, params))
    valid = np.asarray(jax.vmap(env.valid_actions, in_axes=(0, None))(states, params))
    step = jax.vmap(env.step_env, in_axes=(None, 0, None, None))
    for a in range(env.num_actions):
        _, _, _, terminated, info = step(jax.random.key(0), states, a, params)
        dies = np.asarray(terminated) & ~np.asarray(info["win"])
        np.testing.assert_array_equal(safe[:, a], valid[:, a] & ~dies, err_msg=f"action {a}")
    # Not vacuous: both safe and deadly valid moves occur in the sample.
    assert safe.sum() > 0 and (valid & ~safe).sum() > n // 10


def test_safe_actions_hand_built():
    env = Snake(6, 6)
    # Head in the top-left corner heading up: up and left are walls, down is the neck.
    state = build_state(env, [(0, 0), (1, 0), (2, 0)], food=(5, 5), direction=UP)
    assert np.asarray(env.safe_actions(state)).tolist() == [False, True, False, False]
    # The leaving tail is free; the same cell while eating is not.
    loop = [(1, 1), (2, 1), (2, 2), (1, 2)]
    state = build_state(env, loop, food=(5, 5), direction=UP)
    assert bool(env.safe_actions(state)[RIGHT])
    state = build_state(env, loop, food=(1, 2), direction=UP)
    assert not bool(env.safe_actions(state)[RIGHT])
    # Trapped at the top wall between two body cells that are not the tail: nothing is safe.
    trapped = [(0, 2), (1, 2), (1, 1), (0, 1), (0, 0), (1, 0), (2, 0), (2, 1), (2, 2), (2, 3)]
    trapped += [(1, 3), (0, 3), (0, 4), (1, 4)]
    state = build_state(env, trapped, food=(5, 5), direction=UP)
    assert not np.asarray(env.safe_actions(state)).any()
    assert np.asarray(env.valid_actions(state)).sum() == 3


# ----------------------------------------------------------------------------- food shaping


def shaped_rewards(env: Snake, params: EnvParams, traced: bool) -> dict[str, float]:
    """Rewards of four moves from a fixed state: closer, away, eat, die."""
    state = build_state(env, [(0, 4), (0, 3), (0, 2)], food=(0, 7), direction=RIGHT)
    near_food = build_state(env, [(0, 6), (0, 5), (0, 4)], food=(0, 7), direction=RIGHT)
    moves = {"closer": (state, RIGHT), "away": (state, DOWN), "eat": (near_food, RIGHT)}
    moves["die"] = (state, UP)
    step = jax.jit(env.step_env) if traced else env.step_env
    out = {}
    for name, (s, action) in moves.items():
        out[name] = float(step(jax.random.key(0), s, action, params)[2])
    return out


@pytest.mark.parametrize("traced", [False, True])
def test_food_shaping_is_potential_based_and_leaves_eat_and_death_alone(traced):
    env = Snake(8, 8)  # height + width = 16
    base = env.default_params.replace(step_penalty=-0.25, apple_reward=2.0, death_penalty=-3.0)
    plain = shaped_rewards(env, base, traced)
    assert plain == dict(closer=-0.25, away=-0.25, eat=2.0, die=-3.0)  # exactly today's rewards
    shaped = shaped_rewards(env, base.replace(food_shaping=0.8), traced)
    assert shaped["closer"] == pytest.approx(-0.25 + 0.8 / 16)
    assert shaped["away"] == pytest.approx(-0.25 - 0.8 / 16)
    assert (shaped["eat"], shaped["die"]) == (2.0, -3.0)  # exact, not shaped
    # Decay with length: coef * max(0, 1 - decay * length / area), length 3 on 64 cells.
    decayed = shaped_rewards(env, base.replace(food_shaping=0.8, food_shaping_decay=8.0), traced)
    assert decayed["closer"] == pytest.approx(-0.25 + 0.8 * (1 - 8 * 3 / 64) / 16)
    gone = shaped_rewards(env, base.replace(food_shaping=0.8, food_shaping_decay=100.0), traced)
    assert gone["closer"] == gone["away"] == -0.25


def test_food_shaping_vmaps_over_params():
    env = Snake(8, 8)
    coefs = jnp.asarray([0.0, 0.5, 1.6])
    params = jax.tree.map(lambda x: jnp.full(3, x), env.default_params).replace(food_shaping=coefs)
    state = build_state(env, [(0, 4), (0, 3), (0, 2)], food=(0, 7), direction=RIGHT)
    step = jax.vmap(env.step_env, in_axes=(None, None, None, 0))
    reward = step(jax.random.key(0), state, RIGHT, params)[2]
    np.testing.assert_allclose(reward, coefs / 16, rtol=1e-6)
    assert float(reward[0]) == 0.0  # off: exactly the unshaped reward


# ------------------------------------------------------------------ food reachability shaping

# The food at (0, 0) in a two-cell pocket ((0, 0), (0, 1)) whose only way in is (0, 2), the head.
POCKET = [(0, 2), (1, 2), (1, 1), (1, 0), (2, 0), (3, 0)]


@pytest.mark.parametrize("traced", [False, True])
def test_food_reach_shaping_charges_walling_the_food_off_and_pays_freeing_it(traced):
    env = Snake(6, 6)
    base = env.default_params.replace(step_penalty=-0.25)
    state = build_state(env, POCKET, food=(0, 0), direction=UP)
    step = jax.jit(env.step_env) if traced else env.step_env

    def rewards(params):
        walled, r_wall = step(jax.random.key(0), state, RIGHT, params)[1:3]  # the neck closes it
        r_free = step(jax.random.key(0), walled, RIGHT, params)[2]  # (1, 0) becomes the tail
        r_in = step(jax.random.key(0), state, LEFT, params)[2]  # into the pocket: still reachable
        r_die = step(jax.random.key(0), state, UP, params)[2]
        return float(r_wall), float(r_free), float(r_in), float(r_die)

    assert rewards(base) == (-0.25, -0.25, -0.25, -1.0)  # off: exactly the unshaped rewards
    wall, free, inside, die = rewards(base.replace(food_reach_shaping=0.5))
    assert wall == pytest.approx(-0.75) and free == pytest.approx(0.25)
    assert (inside, die) == (-0.25, -1.0)  # reachability unchanged; a fatal step is not shaped
    eat = build_state(env, [(0, 1), (0, 2), (1, 2)], food=(0, 0), direction=LEFT)
    assert float(step(jax.random.key(0), eat, LEFT, base.replace(food_reach_shaping=0.5))[2]) == 1.0


# ----------------------------------------------------------------------------- hole shaping


@pytest.mark.parametrize("traced", [False, True])
def test_hole_shaping_charges_walling_a_cell_in_and_pays_opening_it(traced):
    """The head at (1, 1) turning up walls the corner (0, 0) in (its neighbours: the new head and
    the body at (1, 0)); the next step frees (1, 0) and opens it again."""
    env = Snake(6, 6)
    base = env.default_params.replace(step_penalty=-0.25)
    state = build_state(env, [(1, 1), (1, 0), (2, 0)], food=(5, 5), direction=RIGHT)
    step = jax.jit(env.step_env) if traced else env.step_env

    def rewards(params):
        walled, r_wall = step(jax.random.key(0), state, UP, params)[1:3]
        r_open = step(jax.random.key(0), walled, RIGHT, params)[2]
        r_plain = step(jax.random.key(0), state, RIGHT, params)[2]  # walls nothing in
        r_die = step(jax.random.key(0), walled, UP, params)[2]  # off the board
        return float(r_wall), float(r_open), float(r_plain), float(r_die)

    assert int(holes(state.body)) == 0
    assert rewards(base) == (-0.25, -0.25, -0.25, -1.0)  # off: exactly the unshaped rewards
    wall, opened, plain, die = rewards(base.replace(hole_shaping=0.5))
    assert wall == pytest.approx(-0.75) and opened == pytest.approx(0.25)
    assert (plain, die) == (-0.25, -1.0)  # no hole made; a fatal step is not shaped


# ------------------------------------------------------------------------------- win reward


@pytest.mark.parametrize("traced", [False, True])
def test_win_reward_pays_only_the_step_that_fills_the_board(traced):
    env = Snake(3, 3)
    base = env.default_params
    # Eight cells of a 3x3 board; the head at (0, 1) moves left onto the last free cell, the food.
    full = build_state(
        env, [(0, 1), (0, 2), (1, 2), (1, 1), (1, 0), (2, 0), (2, 1), (2, 2)], food=(0, 0),
        direction=LEFT,
    )
    short = build_state(env, [(0, 1), (0, 2), (1, 2)], food=(0, 0), direction=LEFT)
    step = jax.jit(env.step_env) if traced else env.step_env

    def eat(state, params):
        _, _, reward, done, info = step(jax.random.key(0), state, LEFT, params)
        return float(reward), bool(done), bool(info["win"])

    assert eat(full, base) == (1.0, True, True)  # off: exactly the apple's reward
    assert eat(full, base.replace(win_reward=5.0)) == (6.0, True, True)
    assert eat(short, base.replace(win_reward=5.0)) == (1.0, False, False)  # not a win
    die = step(jax.random.key(0), full, UP, base.replace(win_reward=5.0))[2]
    assert float(die) == -1.0


# ----------------------------------------------------------------------------- random start


def valid_starts(width: int, height: int, room_ahead: int) -> set[tuple[int, int, int]]:
    out = set()
    for d in range(4):
        for r in range(height):
            for c in range(width):
                cells = [(r - k * DROW[d], c - k * DCOL[d]) for k in range(-room_ahead, 3)]
                if all(0 <= y < height and 0 <= x < width for y, x in cells):
                    out.add((r, c, d))
    return out


@pytest.mark.parametrize("board", [(5, 5), (7, 4), (4, 1), (3, 3)])
def test_random_start_is_a_valid_snake_and_covers_every_start(board):
    width, height = board
    env = Snake(width, height)
    params = EnvParams(random_start=True)
    keys = jax.random.split(jax.random.key(0), 3000)
    obs, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    expected = valid_starts(width, height, 1) or valid_starts(width, height, 0)
    seen, foods = set(), {}
    body = np.asarray(states.body)
    for i in range(len(keys)):
        r, c, d = int(states.head_row[i]), int(states.head_col[i]), int(states.direction[i])
        seen.add((r, c, d))
        want = np.zeros((height, width), np.int64)
        for k in range(3):  # straight, heading away from its body
            want[r - k * DROW[d], c - k * DCOL[d]] = 3 - k
        np.testing.assert_array_equal(body[i], want)
        food = int(states.food[i])
        assert 0 <= food < width * height and body[i].reshape(-1)[food] == 0
        foods.setdefault((r, c, d), set()).add(food)
        assert int(states.length[i]) == 3 and int(states.time[i]) == 0
    assert seen == expected  # every start with a free cell ahead, nothing else

    # Food is drawn from the free cells: every cell free at some start gets it, and on the
    # small boards (~40+ draws per start) every free cell of each start does.
    def free(r, c, d):
        body_cells = {(r - k * DROW[d]) * width + c - k * DCOL[d] for k in range(3)}
        return set(range(width * height)) - body_cells

    assert set().union(*foods.values()) == set().union(*(free(*s) for s in expected))
    if width * height <= 9:
        for start, cells in foods.items():
            assert cells == free(*start), start
    np.testing.assert_array_equal(obs, jax.vmap(env.get_obs)(states))


def test_random_start_off_is_the_constant_start_and_vmaps_over_params():
    env = Snake(6, 6)
    keys = jax.random.split(jax.random.key(0), 64)
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    _, fixed = reset(keys, EnvParams())
    assert (np.asarray(fixed.body) == env._start_body).all()
    assert set(np.asarray(fixed.direction).tolist()) == {RIGHT}
    # One params entry per env: the flag is data, not a Python branch.
    flags = jnp.arange(64) % 2 == 1
    params = jax.tree.map(lambda x: jnp.full(64, x), EnvParams()).replace(random_start=flags)
    _, mixed = jax.jit(jax.vmap(env.reset))(keys, params)
    is_constant = (np.asarray(mixed.body) == env._start_body).all(axis=(1, 2))
    assert is_constant[::2].all() and not is_constant[1::2].all()
    # Auto-reset after a death also uses it.
    dying = build_state(env, [(0, 2), (1, 2), (2, 2)], food=(5, 5), direction=UP)
    dying = jax.tree.map(lambda x: jnp.broadcast_to(x, (64, *jnp.shape(x))), dying)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, None, 0)))
    _, after, _, terminated, _, _ = step(keys, dying, UP, params)
    assert np.asarray(terminated).all()
    is_constant = (np.asarray(after.body) == env._start_body).all(axis=(1, 2))
    assert is_constant[::2].all() and not is_constant[1::2].all()


# ----------------------------------------------------------------------------- symmetries

D4 = [(k, flip) for flip in (False, True) for k in range(4)]


def board_map(k: int, flip: bool):
    """Test-side geometry: the element as a function on (H, W, ...) NumPy arrays."""

    def apply(a):
        a = np.flip(a, axis=1) if flip else a
        return np.rot90(a, k, axes=(0, 1))

    return apply


def transform_state(env: Snake, state, apply) -> EnvState:
    """Move every cell of ``state`` with the board map ``apply`` (direction from neck to head)."""
    h, w = env.height, env.width
    moved = apply(np.arange(h * w).reshape(h, w))
    nh, nw = moved.shape
    where = {int(old): divmod(i, nw) for i, old in enumerate(moved.reshape(-1))}
    hr, hc, d = int(state.head_row), int(state.head_col), int(state.direction)
    head = where[hr * w + hc]
    neck = where[(hr - DROW[d]) * w + (hc - DCOL[d])]
    delta = (head[0] - neck[0], head[1] - neck[1])
    direction = [(int(a), int(b)) for a, b in zip(DROW, DCOL, strict=True)].index(delta)
    food = int(state.food)
    food = nh * nw if food == h * w else where[food][0] * nw + where[food][1]
    return EnvState(
        body=jnp.asarray(apply(np.asarray(state.body)).copy()),
        head_row=jnp.int32(head[0]),
        head_col=jnp.int32(head[1]),
        direction=jnp.int32(direction),
        food=jnp.int32(food),
        length=jnp.asarray(state.length),
        steps_without_food=jnp.asarray(state.steps_without_food),
        time=jnp.asarray(state.time),
        dead=jnp.asarray(state.dead),
    )


def identify(env: Snake, transform) -> tuple[int, bool]:
    """Which D4 element ``transform`` is, from its action on an index plane."""
    h, w = env.height, env.width
    plane = np.zeros(env.obs_shape, np.float32)
    plane[..., 0] = np.arange(h * w).reshape(h, w)
    got = np.asarray(transform(jnp.asarray(plane)))[..., 0]
    idx = np.arange(h * w).reshape(h, w)
    matches = [g for g in D4 if board_map(*g)(idx).shape == got.shape]
    matches = [g for g in matches if (board_map(*g)(idx) == got).all()]
    assert len(matches) == 1, matches
    return matches[0]


def check_symmetry(env: Snake, transform, perm, apply, states) -> None:
    """obs(g s) == T(obs(s)), and stepping g s with perm[a] is g of stepping s with a."""
    params = env.default_params
    n = states.length.shape[0]
    moved = stack([transform_state(env, index(states, i), apply) for i in range(n)])
    vobs, vT = jax.vmap(env.get_obs), jax.vmap(transform)
    np.testing.assert_array_equal(vT(vobs(states)), vobs(moved))
    step = jax.vmap(env.transition, in_axes=(0, None, None, None))
    for a in range(env.num_actions):
        obs1, s1, r1, t1, i1 = step(states, a, params, 0.5)
        obs2, s2, r2, t2, i2 = step(moved, int(perm[a]), params, 0.5)
        np.testing.assert_array_equal(r1, r2, err_msg=f"action {a}")
        np.testing.assert_array_equal(t1, t2, err_msg=f"action {a}")
        np.testing.assert_array_equal(i1["apples"], i2["apples"])
        # Bodies agree cell for cell after the move; food agrees unless new food was drawn
        # (row-major sampling is not equivariant, and need not be).
        body1 = np.stack([apply(b) for b in np.asarray(s1.body)])
        np.testing.assert_array_equal(body1, np.asarray(s2.body), err_msg=f"action {a}")
        same_food = ~np.asarray(i1["apples"] > states.length - 3)
        got, want = np.asarray(vT(obs1)), np.asarray(obs2)
        np.testing.assert_array_equal(got[same_food], want[same_food], err_msg=f"action {a}")


@pytest.mark.parametrize(
    "board,actions", [((6, 6), "absolute"), ((7, 5), "absolute"), ((6, 6), "relative")]
)
def test_board_symmetries_commute_with_the_dynamics(board, actions):
    width, height = board
    env = Snake(width, height, actions=actions)
    symmetries = env.symmetries(env.default_params)
    elements = [identify(env, transform) for transform, _ in symmetries]
    square = width == height
    assert elements[0] == (0, False)  # identity first
    expected = set(D4) if square else {(0, False), (2, False), (0, True), (2, True)}
    assert len(elements) == len(set(elements)) and set(elements) == expected
    # The same function objects on every call (safe as static jit arguments).
    again = Snake(width, height, actions=actions).symmetries()
    assert all(a[0] is b[0] for a, b in zip(symmetries, again, strict=True))
    states = random_states(width, height)
    for (transform, perm), element in zip(symmetries, elements, strict=True):
        assert sorted(np.asarray(perm).tolist()) == list(range(env.num_actions))
        check_symmetry(env, transform, perm, board_map(*element), states)


@pytest.mark.parametrize("board", [(6, 6), (7, 4)])
def test_egocentric_relative_mirror_commutes_with_the_dynamics(board):
    width, height = board
    env = Snake(width, height, actions="relative", observation="egocentric")
    symmetries = env.symmetries()
    assert len(symmetries) == 2
    identity, perm0 = symmetries[0]
    assert np.asarray(perm0).tolist() == [0, 1, 2]
    mirror, perm = symmetries[1]
    assert np.asarray(perm).tolist() == [2, 1, 0]
    states = random_states(width, height)
    obs = jax.vmap(env.get_obs)(states)
    np.testing.assert_array_equal(jax.vmap(identity)(obs), obs)
    # Any reflection of the world mirrors the egocentric view: try both.
    for world in (board_map(0, True), board_map(2, True)):
        check_symmetry(env, mirror, perm, world, states)


def test_egocentric_absolute_has_only_the_identity():
    env = Snake(6, 6, observation="egocentric")
    (symmetry,) = env.symmetries()
    transform, perm = symmetry
    assert np.asarray(perm).tolist() == [0, 1, 2, 3]
    obs = jnp.arange(np.prod(env.obs_shape), dtype=jnp.float32).reshape(env.obs_shape)
    np.testing.assert_array_equal(transform(obs), obs)


@pytest.mark.parametrize("actions", ["absolute", "relative"])
def test_mask_fatal_moves_makes_valid_actions_the_safe_ones_unless_trapped(actions):
    env = Snake(6, 5, actions=actions)
    shielded = Snake(6, 5, actions=actions, mask_fatal_moves=True)
    states = random_states(6, 5)
    safe = np.asarray(jax.vmap(env.safe_actions)(states))
    valid = np.asarray(jax.vmap(env.valid_actions)(states))
    got = np.asarray(jax.vmap(shielded.valid_actions)(states))
    trapped = ~safe.any(axis=1)
    np.testing.assert_array_equal(got[~trapped], safe[~trapped])
    np.testing.assert_array_equal(got[trapped], valid[trapped])  # never an empty mask
    assert (valid & ~safe).any()  # not vacuous: some valid moves die and are masked
    # safe_actions itself is the same with or without the option, and shielded_actions is the
    # option's mask on either env.
    np.testing.assert_array_equal(np.asarray(jax.vmap(shielded.safe_actions)(states)), safe)
    np.testing.assert_array_equal(np.asarray(jax.vmap(env.shielded_actions)(states)), got)


def test_mask_fatal_moves_leaves_the_dynamics_and_the_observation_alone():
    env = Snake(6, 6, observation="egocentric")
    shielded = Snake(6, 6, observation="egocentric", mask_fatal_moves=True)
    params = env.default_params
    key = jax.random.key(3)
    obs_a, state_a = env.reset(key, params)
    obs_b, state_b = shielded.reset(key, params)
    for t in range(40):
        key, k_step = jax.random.split(key)
        action = t % 4
        obs_a, state_a, r_a, d_a, *_ = env.step(k_step, state_a, action, params)
        obs_b, state_b, r_b, d_b, *_ = shielded.step(k_step, state_b, action, params)
        np.testing.assert_array_equal(np.asarray(obs_a), np.asarray(obs_b))
        assert float(r_a) == float(r_b) and bool(d_a) == bool(d_b)
    # Trapped (the hand-built state of test_safe_actions_hand_built): the mask keeps the moves.
    trapped = [(0, 2), (1, 2), (1, 1), (0, 1), (0, 0), (1, 0), (2, 0), (2, 1), (2, 2), (2, 3)]
    trapped += [(1, 3), (0, 3), (0, 4), (1, 4)]
    state = build_state(shielded, trapped, food=(5, 5), direction=UP)
    assert np.asarray(shielded.valid_actions(state)).tolist() == [True, True, False, True]
    state = build_state(shielded, [(0, 0), (1, 0), (2, 0)], food=(5, 5), direction=UP)
    assert np.asarray(shielded.valid_actions(state)).tolist() == [False, True, False, False]
