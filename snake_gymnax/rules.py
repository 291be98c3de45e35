"""The game rules as pure functions of one board: moving, eating, dying, rewards, limits.

Kept apart from ``env.py`` so the rules read on their own, with the board's shape passed in;
``Snake.transition`` calls ``move`` then ``starve``, ``Snake.safe_actions`` asks ``head_move``
what a move would meet, and ``Snake.is_truncated`` uses ``starved``.  The action rules
(turning, reversals, out-of-range actions) live with the action space in ``env.py``.  The food
cell comes from ``placement.nth_free_cell``.

Dynamics, per step:

* the head moves one cell; leaving the board or entering the body ends the episode
  (``terminated``, reward ``death_penalty``).  The cell the tail is leaving is free, unless the
  snake eats on this step (then the tail stays and that cell is deadly);
* entering the food cell grows the snake by one (reward ``apple_reward``) and new food is drawn
  uniformly from the free cells; filling the whole board is a win (``terminated`` with
  ``info["win"]``; its step earns ``win_reward`` on top of the apple);
* any other step gives ``step_penalty``, plus the optional food-distance shaping term
  ``coef * (d_before - d_after) / (height + width)`` (Manhattan distances from the head to the
  food; ``coef = food_shaping * max(0, 1 - food_shaping_decay * length / area)``).  Eating and
  fatal steps get no distance shaping: their rewards are ``apple_reward`` / ``death_penalty``;
  with ``food_reach_shaping = c`` a step after which the head cannot reach the food (the
  reachability flood fill of ``reach.py``) where it could before costs ``c`` more, the reverse
  earns ``c`` (eating steps too, with the new food; not the game's last step); with
  ``hole_shaping = c`` each free cell that a step walls in on all four sides costs ``c``, each
  it opens earns ``c`` (not the game's last step);
* two truncations: ``max_steps_in_episode`` (time limit) and ``max_steps_without_food``
  (starvation limit, so looping policies cannot stall an episode).  ``0`` means "derived from
  the board": ``max(50 * area, area**2 // 2)`` and ``2 * area`` (``Snake.resolve_params``; the
  functions here take params with their limits resolved).  With ``starvation_is_death`` the
  starvation limit is a death instead (``terminated``, reward ``death_penalty``);
  ``info["starved"]`` marks the step either way.  A snake that circles until it starves then
  loses as much as one that hits a wall, where a truncation is bootstrapped by PPO from the
  critic's value as if the game went on.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from snake_gymnax.placement import nth_free_cell
from snake_gymnax.reach import reachable
from snake_gymnax.state import DCOL, DROW, INITIAL_LENGTH, EnvParams, EnvState, flat_index, is_off


def head_move(
    state: EnvState, direction: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
    """Where a move in ``direction`` takes the head and what it meets there:
    ``(row, col, flat, eats, dies)`` (``flat`` is 0 off the board).

    Dies off the board or on the body; the tail (counter 1) frees its cell this step unless the
    snake eats (then the tail stays).  Vectorises over candidate ``direction`` values.
    """
    height, width = state.body.shape
    row = state.head_row + jnp.asarray(DROW)[direction]
    col = state.head_col + jnp.asarray(DCOL)[direction]
    inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
    flat = jnp.where(inside, row * width + col, 0)
    cell = state.body.reshape(-1)[flat].astype(jnp.int32)
    eats = inside & (flat == state.food)
    dies = ~inside | (cell > jnp.where(eats, 0, 1))
    return row, col, flat, eats & ~dies, dies


def discount(terminated: jax.Array) -> jax.Array:
    """``info["discount"]``: float32 0.0 where the step terminated, else 1.0."""
    return jnp.where(terminated, 0.0, 1.0).astype(jnp.float32)


def food_shaping(
    state: EnvState,
    row: jax.Array,
    col: jax.Array,
    unshaped: jax.Array,
    params: EnvParams,
) -> jax.Array:
    """``coef * (d_before - d_after) / (height + width)``; 0 on eating or fatal steps."""
    height, width = state.body.shape
    food_row, food_col = state.food // width, state.food % width
    before = jnp.abs(state.head_row - food_row) + jnp.abs(state.head_col - food_col)
    after = jnp.abs(row - food_row) + jnp.abs(col - food_col)
    fill = state.length.astype(jnp.float32) / (height * width)
    coef = params.food_shaping * jnp.maximum(0.0, 1.0 - params.food_shaping_decay * fill)
    shaping = coef * (before - after).astype(jnp.float32) / (height + width)
    return jnp.where(unshaped, 0.0, shaping).astype(jnp.float32)


def food_reach_shaping(
    state: EnvState, new_state: EnvState, unshaped: jax.Array, params: EnvParams
) -> jax.Array:
    """``c * (reachable_after - reachable_before)``: whether the head can reach the food
    (``reach.reachable`` on the board before and after the move, each with its own food) as a
    potential, so the step that walls the food off costs ``c`` at once, not a starvation many
    steps later.  An eating step is shaped too (the new food may land walled off), or freeing
    such food later would pay without the matching cost; the game's last step is not."""
    width = state.body.shape[1]
    bodies = jnp.stack([state.body, new_state.body])
    rows = jnp.stack([state.head_row, new_state.head_row])
    cols = jnp.stack([state.head_col, new_state.head_col])
    foods = jnp.stack([state.food, new_state.food])
    reach = jax.vmap(reachable)(bodies, rows, cols)  # both boards in one fill loop
    fed = reach[jnp.arange(2), foods // width, foods % width].astype(jnp.float32)
    shaping = params.food_reach_shaping * (fed[1] - fed[0])
    return jnp.where(unshaped, 0.0, shaping).astype(jnp.float32)


def hole_cells(body: jax.Array) -> jax.Array:
    """Bool board of the free cells whose four neighbours are all body or wall: cells the head
    can only enter as a dead end, where food, once drawn there, is out of the snake's way."""
    blocked = jnp.pad(body > 0, 1, constant_values=True)
    walled = blocked[:-2, 1:-1] & blocked[2:, 1:-1] & blocked[1:-1, :-2] & blocked[1:-1, 2:]
    return walled & (body == 0)


def holes(body: jax.Array) -> jax.Array:
    """How many ``hole_cells`` the board has (int32)."""
    return hole_cells(body).sum(dtype=jnp.int32)


def hole_shaping(
    state: EnvState, new_state: EnvState, unshaped: jax.Array, params: EnvParams
) -> jax.Array:
    """``-c * (holes_after - holes_before)``, a potential like ``food_reach_shaping``'s: the step
    that walls a free cell in costs ``c`` at once, the one that opens it pays ``c`` back.  A
    looping policy loses most of its late games to two such cells its circuit leaves out, the
    food drawn into one of them (``benchmarks/snake_circuits.py``).  Not the game's last step."""
    shaping = -params.hole_shaping * (holes(new_state.body) - holes(state.body)).astype(
        jnp.float32)
    return jnp.where(unshaped, 0.0, shaping).astype(jnp.float32)


# The potential terms ``move`` adds, each under its own ``EnvParams`` coefficient.
POTENTIALS = (("food_reach_shaping", food_reach_shaping), ("hole_shaping", hole_shaping))


def add_potentials(
    reward: jax.Array, state: EnvState, new_state: EnvState, unshaped: jax.Array,
    params: EnvParams,
) -> jax.Array:
    """``reward`` plus each ``POTENTIALS`` term whose coefficient is on.  A static 0 skips the
    term's work; a traced coefficient selects, so the reward stays bit for bit where it is 0."""
    for field, term in POTENTIALS:
        coef = getattr(params, field)
        if not is_off(coef):
            reward = jnp.where(coef != 0, reward + term(state, new_state, unshaped, params), reward)
    return reward


def advance_body(
    body: jax.Array, flat: jax.Array, length: jax.Array, eats: jax.Array, dies: jax.Array
) -> jax.Array:
    """Age every counter by one and put the head (``length``) on ``flat``.

    No ageing when eating (that is the growth) nor when dying, and no head on death: the
    terminal observation shows the board just before the fatal move.
    """
    height, width = body.shape
    age = (~eats & ~dies).astype(body.dtype)
    body = jnp.maximum(body, age) - age
    target = jnp.where(dies, -1, flat)  # -1 matches no cell
    return jnp.where(flat_index(height, width) == target, length.astype(body.dtype), body)


def step_reward(
    state: EnvState,
    row: jax.Array,
    col: jax.Array,
    eats: jax.Array,
    dies: jax.Array,
    params: EnvParams,
) -> jax.Array:
    """``death_penalty``, ``apple_reward`` or ``step_penalty`` plus the optional shaping."""
    reward = jnp.where(
        dies, params.death_penalty, jnp.where(eats, params.apple_reward, params.step_penalty)
    ).astype(jnp.float32)
    if is_off(params.food_shaping):
        return reward
    return reward + food_shaping(state, row, col, dies | eats, params)


def move(
    state: EnvState, direction: jax.Array, params: EnvParams, food_u: jax.Array
) -> tuple[EnvState, jax.Array, jax.Array, dict[str, Any]]:
    """One step in ``direction``: ``(new_state, reward, terminated, info)``; ``food_u`` in
    [0, 1) picks the new food cell (the ``u``-th free one) when the snake eats."""
    height, width = state.body.shape
    row, col, flat, eats, dies = head_move(state, direction)
    length = state.length + eats.astype(jnp.int32)
    win = length >= height * width
    body = advance_body(state.body, flat, length, eats, dies)
    u = jnp.floor(food_u * (height * width - length)).astype(jnp.int32)  # u-th free cell
    # ``replace`` keeps any extra field of a subclass (``CurriculumState.start_length``).
    new_state = state.replace(
        body=body,
        head_row=jnp.where(dies, state.head_row, row),
        head_col=jnp.where(dies, state.head_col, col),
        direction=direction,
        food=jnp.where(eats, nth_free_cell(body, u, height, width), state.food),
        length=length,
        steps_without_food=jnp.where(eats, 0, state.steps_without_food + 1),
        time=state.time + 1,
        dead=dies,
    )
    reward = step_reward(state, row, col, eats, dies, params)
    reward = add_potentials(reward, state, new_state, dies | win, params)
    if not is_off(params.win_reward):  # traced: exactly ``reward`` where it is 0 (-0.0 kept)
        paid = win & (params.win_reward != 0)
        reward = jnp.where(paid, reward + params.win_reward, reward).astype(jnp.float32)
    start_length = getattr(state, "start_length", INITIAL_LENGTH)
    info = {"apples": length - start_length, "length": length, "win": win}
    return new_state, reward, dies | win, {**info, "discount": discount(dies | win)}


def starved(state: EnvState, params: EnvParams) -> jax.Array:
    """The starvation limit (``params`` resolved) is reached in ``state``."""
    return state.steps_without_food >= params.max_steps_without_food


def starve(
    state: EnvState,
    reward: jax.Array,
    terminated: jax.Array,
    info: dict[str, Any],
    params: EnvParams,
) -> tuple[EnvState, jax.Array, jax.Array, dict[str, Any]]:
    """``move``'s result plus ``info["starved"]`` (this step reached the starvation limit and
    did not end the game otherwise); with ``starvation_is_death`` that step dies, with
    ``death_penalty``.  ``params`` with its limits resolved."""
    starves = starved(state, params) & ~terminated
    if not is_off(params.starvation_is_death):
        dies = jnp.asarray(params.starvation_is_death, jnp.bool_) & starves
        state = state.replace(dead=state.dead | dies)
        reward = jnp.where(dies, params.death_penalty, reward).astype(jnp.float32)
        terminated = terminated | dies
        info = {**info, "discount": discount(terminated)}
    return state, reward, terminated, {**info, "starved": starves}
