"""Snake as a gymnax environment, built to be stepped under ``vmap`` by the thousand.

The board is ``height`` rows by ``width`` columns (constructor arguments, since they fix array
shapes).  The snake starts with length 3 in the centre, heading right; food appears uniformly
on a free cell.  Actions are absolute directions: 0 up, 1 right, 2 down, 3 left.  An action
that points straight back into the neck is ignored and the snake keeps its direction.

Dynamics, per step:

* the head moves one cell; leaving the board or entering the body ends the episode
  (``terminated``, reward ``death_penalty``).  The cell the tail is leaving is free, unless the
  snake eats on this step (then the tail stays and that cell is deadly);
* entering the food cell grows the snake by one (reward ``apple_reward``) and new food is drawn
  uniformly from the free cells; filling the whole board is a win (``terminated`` with
  ``info["win"]``);
* any other step gives ``step_penalty``;
* two truncations, never terminations: ``max_steps_in_episode`` (time limit) and
  ``max_steps_without_food`` (starvation limit, so looping policies cannot stall an episode).

Observation: float32 ``(height, width, 3)`` planes, so a policy sees what a human sees.

======= ========= ===========================================================================
channel name      value
======= ========= ===========================================================================
0       head      1 on the head cell, 0 elsewhere
1       body      remaining lifetime / length on every snake cell (head included): 1 at the
                  head, ``(L-1)/L`` at the neck ... ``1/L`` at the tail, 0 on free cells.
                  ``> 0`` is the occupancy mask; the ordering tells the head from the tail,
                  shows the direction of travel and which cell frees up next
2       food      1 on the food cell, 0 elsewhere (no food once the board is full)
======= ========= ===========================================================================

Representation (chosen for speed under ``vmap``): the body is an int grid of remaining-lifetime
counters.  The head cell holds ``length``, the tail holds 1, free cells hold 0.  Each step every
counter is decremented (skipped on an eating step, which is exactly growth by one) and the new
head cell is set to ``length``.  No Python loops, no dynamic shapes, no scatter: every update is
a handful of elementwise ops on the board.  New food is the ``u``-th free cell, ``u`` uniform in
``[0, free)``, found in two levels (free cells per row, then within one row), so one random number
is drawn per step instead of one per cell.  Reset is a constant board plus one table lookup for
the food, because auto-reset computes a reset on every step; ``Snake.step`` draws the
transition's and the reset's random numbers in one call.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

NUM_CHANNELS = 3
CHANNELS = ("head", "body", "food")
INITIAL_LENGTH = 3

# Row/column offsets of the four absolute actions: up, right, down, left.
_DROW = np.array([-1, 0, 1, 0], dtype=np.int32)
_DCOL = np.array([0, 1, 0, -1], dtype=np.int32)


@struct.dataclass
class EnvState(environment.EnvState):
    """Snake state; ``body`` holds remaining-lifetime counters (0 = free, ``length`` = head)."""

    body: jax.Array  # (height, width) small int
    head_row: jax.Array  # int32
    head_col: jax.Array  # int32
    direction: jax.Array  # int32, last direction moved (0 up, 1 right, 2 down, 3 left)
    food: jax.Array  # int32 flat index row * width + col; height * width when the board is full
    length: jax.Array  # int32
    steps_without_food: jax.Array  # int32
    time: jax.Array  # int32


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Everything that does not change an array shape, so it can be vmapped.

    The class defaults match a 10 x 10 board; ``Snake.default_params`` scales both limits with
    the board area.
    """

    apple_reward: float = 1.0
    death_penalty: float = -1.0
    step_penalty: float = 0.0
    max_steps_in_episode: int = 5000  # time limit (truncation): 50 * area
    max_steps_without_food: int = 200  # starvation limit (truncation): 2 * area


def _body_dtype(num_cells: int) -> Any:
    # Small counters halve or quarter the memory traffic of every board op.
    if num_cells <= np.iinfo(np.uint8).max:
        return jnp.uint8
    if num_cells <= np.iinfo(np.int16).max:
        return jnp.int16
    return jnp.int32


class Snake(environment.Environment[EnvState, EnvParams]):
    """Snake on a ``height`` x ``width`` board with absolute actions (0 up, 1 right, 2 down, 3 left)."""

    def __init__(self, width: int = 10, height: int = 10):
        super().__init__()
        width, height = int(width), int(height)
        if width < INITIAL_LENGTH or height < 1 or width * height <= INITIAL_LENGTH:
            raise ValueError(
                f"board {width}x{height} too small: need width >= {INITIAL_LENGTH} and at least "
                f"{INITIAL_LENGTH + 1} cells"
            )
        self.width = width
        self.height = height
        self.num_cells = width * height
        self.obs_shape = (height, width, NUM_CHANNELS)
        self.body_dtype = _body_dtype(self.num_cells)

        # Constant start: horizontal snake in the centre, head right of centre, heading right.
        row, col = height // 2, width // 2
        col = max(col, INITIAL_LENGTH - 1)
        body = np.zeros((height, width), dtype=np.int32)
        for k in range(INITIAL_LENGTH):
            body[row, col - k] = INITIAL_LENGTH - k
        self._start_body = body.astype(self.body_dtype)
        self._start_row = row
        self._start_col = col
        # Free cells of the start board, so reset draws food with a single lookup.
        self._start_free = np.flatnonzero(body.ravel() == 0).astype(np.int32)

    # ------------------------------------------------------------------ gymnax API

    @property
    def default_params(self) -> EnvParams:
        """Limits scale with the area: a board-filling snake needs ~area^2/2 steps at worst."""
        area = self.num_cells
        return EnvParams(max_steps_in_episode=50 * area, max_steps_without_food=2 * area)

    @partial(jax.jit, static_argnames=("self",))
    def step(
        self,
        key: jax.Array,
        state: EnvState,
        action: int | float | jax.Array,
        params: EnvParams | None = None,
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """``Environment.step`` (transition, truncation check, auto-reset, same info keys), but
        one random draw feeds both the transition and the reset.

        gymnax's version splits the key and draws twice per env per step; under ``vmap`` those
        threefry calls are a sizeable share of this cheap step (~15% of throughput on CPU).
        """
        if params is None:
            params = self.default_params
        food_u, reset_u = jax.random.uniform(key, (2,))
        obs_st, state_st, reward, terminated, info = self.transition(state, action, params, food_u)
        truncated = self.is_truncated(state_st, params)
        done = terminated | truncated
        obs_re, state_re = self.initial(reset_u)
        state = jax.tree.map(lambda r, s: jax.lax.select(done, r, s), state_re, state_st)
        obs = jax.lax.select(done, obs_re, obs_st)
        info = {
            **info,
            "terminated": terminated,
            "truncated": truncated,
            "final_observation": obs_st,
        }
        return obs, state, reward, terminated, truncated, info

    def step_env(
        self,
        key: jax.Array,
        state: EnvState,
        action: int | float | jax.Array,
        params: EnvParams,
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
        """Move the head, eat or die, grow, and draw new food if needed (no auto-reset)."""
        return self.transition(state, action, params, jax.random.uniform(key))

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """Constant start board; food is one uniform pick from the precomputed free cells."""
        return self.initial(jax.random.uniform(key))

    def transition(
        self,
        state: EnvState,
        action: int | float | jax.Array,
        params: EnvParams,
        food_u: jax.Array,
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
        """``step_env`` given its one random number: ``food_u`` in [0, 1) picks new food."""
        action = jnp.asarray(action, jnp.int32)
        # Reversal into the neck is ignored: keep going in the old direction.
        direction = jnp.where(action == (state.direction + 2) % 4, state.direction, action)
        row = state.head_row + jnp.asarray(_DROW)[direction]
        col = state.head_col + jnp.asarray(_DCOL)[direction]
        inside = (row >= 0) & (row < self.height) & (col >= 0) & (col < self.width)
        flat = jnp.where(inside, row * self.width + col, 0)

        body = state.body
        cell = body.reshape(-1)[flat].astype(jnp.int32)
        eats = inside & (flat == state.food)
        # The tail (counter 1) frees its cell this step unless the snake eats (tail stays).
        dies = ~inside | (cell > jnp.where(eats, 0, 1))
        eats = eats & ~dies
        length = state.length + eats.astype(jnp.int32)
        win = length >= self.num_cells

        # Decrement every counter (not when eating: that is the growth; not when dying: the
        # terminal observation shows the board just before the fatal move).
        dec = (~eats & ~dies).astype(self.body_dtype)
        body = jnp.maximum(body, dec) - dec
        target = jnp.where(dies, -1, flat)  # -1 matches no cell: no head write on death
        body = jnp.where(self._flat_index() == target, length.astype(self.body_dtype), body)

        # New food: the u-th free cell, u uniform in [0, free); only used when eating.
        u = jnp.floor(food_u * (self.num_cells - length)).astype(jnp.int32)
        new_food = self._nth_free_cell(body, u)
        food = jnp.where(eats, new_food, state.food)

        state = EnvState(
            body=body,
            head_row=jnp.where(dies, state.head_row, row),
            head_col=jnp.where(dies, state.head_col, col),
            direction=direction,
            food=food,
            length=length,
            steps_without_food=jnp.where(eats, 0, state.steps_without_food + 1),
            time=state.time + 1,
        )
        terminated = dies | win
        reward = jnp.where(
            dies,
            params.death_penalty,
            jnp.where(eats, params.apple_reward, params.step_penalty),
        ).astype(jnp.float32)
        info = {
            "apples": length - INITIAL_LENGTH,
            "length": length,
            "win": win,
        }
        return self.get_obs(state, params), state, reward, terminated, info

    def initial(self, food_u: jax.Array) -> tuple[jax.Array, EnvState]:
        """``reset_env`` given its one random number: ``food_u`` in [0, 1) picks the food."""
        num_free = self._start_free.shape[0]
        u = jnp.floor(food_u * num_free).astype(jnp.int32)
        food = jnp.asarray(self._start_free)[jnp.minimum(u, num_free - 1)]
        state = EnvState(
            body=jnp.asarray(self._start_body),
            head_row=jnp.int32(self._start_row),
            head_col=jnp.int32(self._start_col),
            direction=jnp.int32(1),
            food=food,
            length=jnp.int32(INITIAL_LENGTH),
            steps_without_food=jnp.int32(0),
            time=jnp.int32(0),
        )
        return self.get_obs(state), state

    def observe(
        self,
        key: jax.Array,
        state: EnvState,
        action: int | float | jax.Array | None,
        params: EnvParams,
    ) -> jax.Array:
        """Planes (head, body by age, food); see the module docstring."""
        return self.get_obs(state, params, key)

    def get_obs(
        self, state: EnvState, params: EnvParams | None = None, key: Any = None
    ) -> jax.Array:
        """Keyless observation, also used by rendering and tests."""
        body = state.body
        head = body == state.length.astype(self.body_dtype)
        age = body.astype(jnp.float32) / state.length.astype(jnp.float32)
        food = self._flat_index() == state.food
        return jnp.stack([head.astype(jnp.float32), age, food.astype(jnp.float32)], axis=-1)

    def is_truncated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Time limit or starvation limit: both are truncations, never terminations."""
        return (state.time >= params.max_steps_in_episode) | (
            state.steps_without_food >= params.max_steps_without_food
        )

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """A state is terminal once the board is full (deaths are only known in ``step_env``)."""
        return state.length >= self.num_cells

    @property
    def name(self) -> str:
        """Registered id."""
        return "Snake-v0"

    @property
    def num_actions(self) -> int:
        """Four absolute directions."""
        return 4

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        """0 up, 1 right, 2 down, 3 left."""
        return spaces.Discrete(4)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        """Float planes in [0, 1]."""
        return spaces.Box(0.0, 1.0, self.obs_shape, jnp.float32)

    def state_space(self, params: EnvParams | None = None) -> spaces.Dict:
        """Bounds of every state field."""
        params = self.default_params if params is None else params
        n = self.num_cells
        return spaces.Dict(
            {
                "body": spaces.Box(0, n, (self.height, self.width), self.body_dtype),
                "head_row": spaces.Discrete(self.height),
                "head_col": spaces.Discrete(self.width),
                "direction": spaces.Discrete(4),
                "food": spaces.Discrete(n + 1),
                "length": spaces.Box(INITIAL_LENGTH, n, (), jnp.int32),
                "steps_without_food": spaces.Discrete(params.max_steps_without_food + 1),
                "time": spaces.Discrete(params.max_steps_in_episode + 1),
            }
        )

    def render(self, state: EnvState, params: EnvParams | None = None) -> np.ndarray:
        """RGB frame as a NumPy array (used by ``GymnaxToGymWrapper.render``)."""
        from snake_gymnax.render import render_frame

        return np.asarray(render_frame(self, state))

    # ------------------------------------------------------------------ helpers

    def _nth_free_cell(self, body: jax.Array, n: jax.Array) -> jax.Array:
        """Flat index of the ``n``-th free cell in row-major order (``num_cells`` if none).

        Two levels (row counts, then one row) instead of a cumulative sum over the whole board:
        XLA's CPU cumsum over 100+ cells costs more than the rest of the step.
        """
        free = body == 0
        row_free = jnp.sum(free, axis=1, dtype=jnp.int32)
        rows_cum = jnp.cumsum(row_free)
        row = jnp.sum(rows_cum <= n, dtype=jnp.int32)  # == height when n >= free cells
        safe_row = jnp.minimum(row, self.height - 1)
        before = rows_cum[safe_row] - row_free[safe_row]
        in_row = jnp.cumsum(free[safe_row].astype(jnp.int32))
        col = jnp.sum(in_row <= n - before, dtype=jnp.int32)
        return jnp.where(row < self.height, row * self.width + col, self.num_cells)

    def _flat_index(self) -> jax.Array:
        return jnp.arange(self.num_cells, dtype=jnp.int32).reshape(self.height, self.width)
