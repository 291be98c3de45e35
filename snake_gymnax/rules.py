"""The game rules as pure functions of one board: turning, moving, eating, dying, rewards, limits.

Kept apart from ``env.py`` so the rules read on their own, with the board's shape passed in;
``Snake.next_direction``, ``transition``, ``valid_actions``, ``safe_actions`` and
``is_truncated`` are thin wrappers.  The food cell comes from ``placement.nth_free_cell``.

Actions (constructor argument ``actions``):

* ``"absolute"`` (default, 4 actions): 0 up, 1 right, 2 down, 3 left.  An action that points
  straight back into the neck is ignored and the snake keeps its direction.
* ``"relative"`` (3 actions): 0 turn left, 1 straight, 2 turn right.

An out-of-range action (negative, or ``>= num_actions``) means "keep going straight", like the
reversal: it never kills the snake by itself.

Dynamics, per step:

* the head moves one cell; leaving the board or entering the body ends the episode
  (``terminated``, reward ``death_penalty``).  The cell the tail is leaving is free, unless the
  snake eats on this step (then the tail stays and that cell is deadly);
* entering the food cell grows the snake by one (reward ``apple_reward``) and new food is drawn
  uniformly from the free cells; filling the whole board is a win (``terminated`` with
  ``info["win"]``);
* any other step gives ``step_penalty``, plus the optional food-distance shaping term
  ``coef * (d_before - d_after) / (height + width)`` (Manhattan distances from the head to the
  food; ``coef = food_shaping * max(0, 1 - food_shaping_decay * length / area)``).  Eating and
  fatal steps are never shaped: their rewards are exactly ``apple_reward`` / ``death_penalty``;
* two truncations: ``max_steps_in_episode`` (time limit) and ``max_steps_without_food``
  (starvation limit, so looping policies cannot stall an episode).  ``0`` means "derived from
  the board": ``max(50 * area, area**2 // 2)`` and ``2 * area``.  With
  ``starvation_is_death`` the starvation limit is a death instead (``terminated``, reward
  ``death_penalty``); ``info["starved"]`` marks the step either way.  A snake that circles
  until it starves then loses as much as one that hits a wall, where a truncation is
  bootstrapped by PPO from the critic's value as if the game went on.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from snake_gymnax.placement import nth_free_cell
from snake_gymnax.state import _DCOL, _DROW, INITIAL_LENGTH, EnvParams, EnvState, flat_index

ACTION_MODES = ("absolute", "relative")


def _is_off(value: Any) -> bool:
    """True for a concrete Python/NumPy zero or False (an untraced ``EnvParams`` field).

    Lets an option that is off cost nothing when the params are closed over (the usual case);
    traced or vmapped params take the ``jnp.where`` path, which is correct for any value.
    """
    return isinstance(value, (bool, int, float, np.bool_, np.number)) and not value


def _resolve_limit(value: Any, auto: int) -> Any:
    """``value`` if positive, else the board-derived ``auto``; static when ``value`` is."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value) if value > 0 else auto
    value = jnp.asarray(value)
    return jnp.where(value > 0, value, auto)


def next_direction(actions: str, direction: jax.Array, action: jax.Array) -> jax.Array:
    """``Snake.next_direction`` for action mode ``actions`` (``"absolute"`` or ``"relative"``)."""
    action = jnp.asarray(action, jnp.int32)
    if actions == "absolute":
        keep = (action < 0) | (action > 3) | (action == (direction ^ 2))
        return jnp.where(keep, direction, action)
    turn = jnp.where((action >= 0) & (action <= 2), action - 1, 0)
    return (direction + turn) & 3


def valid_actions(actions: str, direction: jax.Array) -> jax.Array:
    """``Snake.valid_actions``: all but the absolute move back into the neck."""
    if actions == "relative":
        return jnp.ones((3,), jnp.bool_)
    return jnp.arange(4, dtype=jnp.int32) != (jnp.asarray(direction) ^ 2)


def safe_actions(actions: str, state: EnvState, height: int, width: int) -> jax.Array:
    """``Snake.safe_actions``: ``valid_actions`` whose move neither leaves the board nor enters
    the body (the leaving tail is free unless the move eats)."""
    num_actions = 4 if actions == "absolute" else 3
    candidates = jnp.arange(num_actions, dtype=jnp.int32)
    direction = next_direction(actions, jnp.asarray(state.direction), candidates)
    row = state.head_row + jnp.asarray(_DROW)[direction]
    col = state.head_col + jnp.asarray(_DCOL)[direction]
    inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
    flat = jnp.where(inside, row * width + col, 0)
    cell = state.body.reshape(-1)[flat].astype(jnp.int32)
    eats = inside & (flat == state.food)
    dies = ~inside | (cell > jnp.where(eats, 0, 1))
    return valid_actions(actions, state.direction) & ~dies


def food_shaping(
    state: EnvState,
    row: jax.Array,
    col: jax.Array,
    unshaped: jax.Array,
    params: EnvParams,
    height: int,
    width: int,
) -> jax.Array:
    """``coef * (d_before - d_after) / (height + width)``; 0 on eating or fatal steps."""
    food_row, food_col = state.food // width, state.food % width
    before = jnp.abs(state.head_row - food_row) + jnp.abs(state.head_col - food_col)
    after = jnp.abs(row - food_row) + jnp.abs(col - food_col)
    fill = state.length.astype(jnp.float32) / (height * width)
    coef = params.food_shaping * jnp.maximum(0.0, 1.0 - params.food_shaping_decay * fill)
    shaping = coef * (before - after).astype(jnp.float32) / (height + width)
    return jnp.where(unshaped, 0.0, shaping).astype(jnp.float32)


def move(
    state: EnvState,
    direction: jax.Array,
    params: EnvParams,
    food_u: jax.Array,
    height: int,
    width: int,
    body_dtype: Any,
) -> tuple[EnvState, jax.Array, jax.Array, dict[str, Any]]:
    """One step in ``direction``: ``(new_state, reward, terminated, info)``; ``food_u`` in
    [0, 1) picks the new food cell when the snake eats."""
    num_cells = height * width
    row = state.head_row + jnp.asarray(_DROW)[direction]
    col = state.head_col + jnp.asarray(_DCOL)[direction]
    inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
    flat = jnp.where(inside, row * width + col, 0)

    body = state.body
    cell = body.reshape(-1)[flat].astype(jnp.int32)
    eats = inside & (flat == state.food)
    # The tail (counter 1) frees its cell this step unless the snake eats (tail stays).
    dies = ~inside | (cell > jnp.where(eats, 0, 1))
    eats = eats & ~dies
    length = state.length + eats.astype(jnp.int32)
    win = length >= num_cells

    # Decrement every counter (not when eating: that is the growth; not when dying: the
    # terminal observation shows the board just before the fatal move).
    dec = (~eats & ~dies).astype(body_dtype)
    body = jnp.maximum(body, dec) - dec
    target = jnp.where(dies, -1, flat)  # -1 matches no cell: no head write on death
    body = jnp.where(flat_index(height, width) == target, length.astype(body_dtype), body)

    # New food: the u-th free cell, u uniform in [0, free); only used when eating.
    u = jnp.floor(food_u * (num_cells - length)).astype(jnp.int32)
    new_food = nth_free_cell(body, u, height, width)
    food = jnp.where(eats, new_food, state.food)

    new_state = EnvState(
        body=body,
        head_row=jnp.where(dies, state.head_row, row),
        head_col=jnp.where(dies, state.head_col, col),
        direction=direction,
        food=food,
        length=length,
        steps_without_food=jnp.where(eats, 0, state.steps_without_food + 1),
        time=state.time + 1,
        dead=dies,
    )
    terminated = dies | win
    reward = jnp.where(
        dies,
        params.death_penalty,
        jnp.where(eats, params.apple_reward, params.step_penalty),
    ).astype(jnp.float32)
    if not _is_off(params.food_shaping):
        reward = reward + food_shaping(state, row, col, dies | eats, params, height, width)
    info = {
        "apples": length - INITIAL_LENGTH,
        "length": length,
        "win": win,
        "discount": jnp.where(terminated, 0.0, 1.0).astype(jnp.float32),
    }
    return new_state, reward, terminated, info


def starved(state: EnvState, params: EnvParams, auto_steps_without_food: int) -> jax.Array:
    """The starvation limit is reached in ``state`` (0 = the board-derived number)."""
    food_limit = _resolve_limit(params.max_steps_without_food, auto_steps_without_food)
    return state.steps_without_food >= food_limit


def starve(
    state: EnvState,
    reward: jax.Array,
    terminated: jax.Array,
    info: dict[str, Any],
    params: EnvParams,
    auto_steps_without_food: int,
) -> tuple[EnvState, jax.Array, jax.Array, dict[str, Any]]:
    """``move``'s result plus ``info["starved"]`` (this step reached the starvation limit and
    did not end the game otherwise); with ``starvation_is_death`` that step dies, with
    ``death_penalty``."""
    starves = starved(state, params, auto_steps_without_food) & ~terminated
    if not _is_off(params.starvation_is_death):
        dies = jnp.asarray(params.starvation_is_death, jnp.bool_) & starves
        state = state.replace(dead=state.dead | dies)
        reward = jnp.where(dies, params.death_penalty, reward).astype(jnp.float32)
        terminated = terminated | dies
        info = {**info, "discount": jnp.where(terminated, 0.0, 1.0).astype(jnp.float32)}
    return state, reward, terminated, {**info, "starved": starves}


def is_truncated(
    state: EnvState, params: EnvParams, auto_steps_in_episode: int, auto_steps_without_food: int
) -> jax.Array:
    """Time limit or starvation limit (0 = the board-derived ``auto_*`` number); with
    ``starvation_is_death`` only the time limit (starving is then a termination)."""
    time_limit = _resolve_limit(params.max_steps_in_episode, auto_steps_in_episode)
    hungry = starved(state, params, auto_steps_without_food)
    if not _is_off(params.starvation_is_death):
        hungry = hungry & ~jnp.asarray(params.starvation_is_death, jnp.bool_)
    return (state.time >= time_limit) | hungry
