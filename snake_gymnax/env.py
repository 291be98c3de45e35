"""Snake as a gymnax environment, built to be stepped under ``vmap`` by the thousand.

The board is ``height`` rows by ``width`` columns (constructor arguments, since they fix array
shapes).  The snake starts with length 3 in the centre, heading right (or, with
``EnvParams.random_start``, anywhere on the board with any heading); food appears uniformly on a
free cell.

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
* two truncations, never terminations: ``max_steps_in_episode`` (time limit) and
  ``max_steps_without_food`` (starvation limit, so looping policies cannot stall an episode).
  ``0`` means "derived from the board": ``max(50 * area, area**2 // 2)`` and ``2 * area``.

Observations (constructor argument ``observation``):

``"planes"`` (default): float32 ``(height, width, 3)``, so a policy sees what a human sees.

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

``"egocentric"``: float32 ``(S, S, 3)`` with ``S = 2 * max(height, width) - 1``: the board
re-centred on the head (which sits at ``(S // 2, S // 2)``) and rotated so that the heading
points up (row 0).  Wherever the head is, the whole board fits in the window.

======= ========= ===========================================================================
channel name      value
======= ========= ===========================================================================
0       body      as ``planes`` channel 1 (the head is the centre cell, value 1)
1       food      1 on the food cell
2       wall      1 on every cell outside the board, 0 inside
======= ========= ===========================================================================

Representation (chosen for speed under ``vmap``): the body is an int grid of remaining-lifetime
counters.  The head cell holds ``length``, the tail holds 1, free cells hold 0.  Each step every
counter is decremented (skipped on an eating step, which is exactly growth by one) and the new
head cell is set to ``length``.  No Python loops, no dynamic shapes, no scatter: every update is
a handful of elementwise ops on the board.  New food is the ``u``-th free cell, ``u`` uniform in
``[0, free)``, found in two levels (free cells per row, then within one row), so one random number
is drawn per step instead of one per cell.  Reset is a constant board plus one table lookup for
the food, because auto-reset computes a reset on every step; ``Snake.step`` draws all of a
step's random numbers (transition food, reset food, random start) from one call.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from snake_gymnax.frame import draw_board

NUM_CHANNELS = 3
CHANNELS = ("head", "body", "food")
EGOCENTRIC_CHANNELS = ("body", "food", "wall")
INITIAL_LENGTH = 3
ACTION_MODES = ("absolute", "relative")
OBSERVATIONS = ("planes", "egocentric")

# Row/column offsets of the four directions: up, right, down, left (clockwise).
_DROW = np.array([-1, 0, 1, 0], dtype=np.int32)
_DCOL = np.array([0, 1, 0, -1], dtype=np.int32)
# Where a left-right mirror of the board sends each direction (up, left, down, right).
_MIRROR_DIRECTION = np.array([0, 3, 2, 1], dtype=np.int32)

Observation = jax.Array
Symmetry = tuple[Callable[[Observation], Observation], np.ndarray]


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
    # True after a fatal step, so ``is_terminal``/``discount`` see deaths (the board is unchanged).
    dead: jax.Array = False  # bool


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Everything that does not change an array shape, so it can be vmapped.

    The limits default to ``0``, "derived from the board" (resolved in ``Snake.is_truncated``),
    so ``EnvParams()`` suits any board size; ``Snake.default_params`` fills in the numbers.
    Every other default reproduces the original Snake-v0 exactly.
    """

    apple_reward: float = 1.0
    death_penalty: float = -1.0
    step_penalty: float = 0.0
    max_steps_in_episode: int = 0  # time limit (truncation); 0: max(50 * area, area**2 // 2)
    max_steps_without_food: int = 0  # starvation limit (truncation); 0: 2 * area
    food_shaping: float = 0.0  # coefficient of the food-distance shaping term; 0: off
    food_shaping_decay: float = 0.0  # shaping coef scaled by max(0, 1 - decay * length / area)
    random_start: bool = False  # random start cell and heading instead of centre, heading right


def _body_dtype(num_cells: int) -> Any:
    # Small counters halve or quarter the memory traffic of every board op.
    if num_cells <= np.iinfo(np.uint8).max:
        return jnp.uint8
    if num_cells <= np.iinfo(np.int16).max:
        return jnp.int16
    return jnp.int32


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


def _unit_float(mantissa: jax.Array) -> jax.Array:
    """Uniform float32 in [0, 1) from 23 random bits, exactly as ``jax.random.uniform`` does."""
    bits = mantissa | jnp.uint32(0x3F800000)
    return jax.lax.bitcast_convert_type(bits, jnp.float32) - jnp.float32(1.0)


def _identity(obs: Observation) -> Observation:
    """The identity symmetry."""
    return obs


@cache
def _board_symmetry(rotations: int, flip: bool) -> Callable[[Observation], Observation]:
    """``rot90**rotations`` (counter-clockwise) after an optional left-right flip, on (H, W, C).

    Cached: every call hands out the same function object, so a trainer that passes the
    transforms to ``jax.jit`` as static arguments does not recompile.
    """

    def transform(obs: Observation) -> Observation:
        if flip:
            obs = jnp.flip(obs, axis=1)
        return jnp.rot90(obs, rotations, axes=(0, 1)) if rotations % 4 else obs

    name = "_".join(([f"rot{90 * (rotations % 4)}"] if rotations % 4 else []) + ["flip"] * flip)
    transform.__name__ = transform.__qualname__ = name
    return transform


class Snake(environment.Environment[EnvState, EnvParams]):
    """Snake on a ``height`` x ``width`` board.

    ``actions``: ``"absolute"`` (0 up, 1 right, 2 down, 3 left) or ``"relative"`` (0 left,
    1 straight, 2 right).  ``observation``: ``"planes"`` (head, body, food on the board) or
    ``"egocentric"`` (body, food, wall in a head-centred window rotated to the heading).
    """

    def __init__(
        self,
        width: int = 10,
        height: int = 10,
        actions: str = "absolute",
        observation: str = "planes",
    ):
        super().__init__()
        width, height = int(width), int(height)
        if width < INITIAL_LENGTH or height < 1 or width * height <= INITIAL_LENGTH:
            raise ValueError(
                f"board {width}x{height} too small: need width >= {INITIAL_LENGTH} and at least "
                f"{INITIAL_LENGTH + 1} cells"
            )
        if actions not in ACTION_MODES:
            raise ValueError(f"actions must be one of {ACTION_MODES}, got {actions!r}")
        if observation not in OBSERVATIONS:
            raise ValueError(f"observation must be one of {OBSERVATIONS}, got {observation!r}")
        self.width = width
        self.height = height
        self.actions = actions
        self.observation = observation
        self.num_cells = width * height
        self.body_dtype = _body_dtype(self.num_cells)
        # Limits used when the EnvParams field is 0: a Hamiltonian-cycle player needs at most
        # `area` steps per apple and about area**2 / 4 steps per won game.
        self.auto_max_steps_in_episode = max(50 * self.num_cells, self.num_cells**2 // 2)
        self.auto_max_steps_without_food = 2 * self.num_cells

        if observation == "planes":
            self.obs_shape = (height, width, NUM_CHANNELS)
        else:
            self.ego_size = 2 * max(height, width) - 1
            self.obs_shape = (self.ego_size, self.ego_size, len(EGOCENTRIC_CHANNELS))

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
        self._random_starts = self._start_table()
        if observation == "egocentric":
            codes = self.num_cells + 3  # 0 free, 1..area body, food, wall
            self._ego_code_dtype = _body_dtype(codes - 1)
            self._ego_start_obs, self._ego_start_cells = self._egocentric_start()

    # ------------------------------------------------------------------ gymnax API

    @property
    def default_params(self) -> EnvParams:
        """Explicit limits derived from the board (the same numbers ``0`` resolves to)."""
        return EnvParams(
            max_steps_in_episode=self.auto_max_steps_in_episode,
            max_steps_without_food=self.auto_max_steps_without_food,
        )

    def resolve_params(self, params: EnvParams) -> EnvParams:
        """``params`` with "auto" (0) limits replaced by this board's numbers."""
        return params.replace(
            max_steps_in_episode=_resolve_limit(
                params.max_steps_in_episode, self.auto_max_steps_in_episode
            ),
            max_steps_without_food=_resolve_limit(
                params.max_steps_without_food, self.auto_max_steps_without_food
            ),
        )

    def uniforms(self, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """A step's random numbers from one draw: ``(food_u, reset_u, start_u)``.

        Two 32-bit words: the top 23 bits of each make ``food_u`` (transition) and ``reset_u``
        (the reset's food), bit for bit what ``jax.random.uniform(key, (2,))`` returns; the
        18 low bits left over make ``start_u`` (the random start), so the option costs no draw.
        """
        bits = jax.random.bits(key, (2,), jnp.uint32)
        food_u = _unit_float(bits[0] >> 9)
        reset_u = _unit_float(bits[1] >> 9)
        spare = ((bits[0] & 0x1FF) << 9) | (bits[1] & 0x1FF)
        return food_u, reset_u, _unit_float(spare << 5)

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
        food_u, reset_u, start_u = self.uniforms(key)
        obs_st, state_st, reward, terminated, info = self.transition(state, action, params, food_u)
        truncated = self.is_truncated(state_st, params)
        done = terminated | truncated
        obs_re, state_re = self.initial(reset_u, params, start_u)
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
        """Start board (constant, or random with ``random_start``) and food on a free cell.

        The food draw is ``jax.random.uniform(key)``, as before the options existed, so a key
        gives the same start as it always did; the random start draws from a folded key.
        """
        start_u = 0.0
        if not _is_off(params.random_start):
            start_u = jax.random.uniform(jax.random.fold_in(key, 1))
        return self.initial(jax.random.uniform(key), params, start_u)

    def next_direction(self, direction: jax.Array, action: jax.Array) -> jax.Array:
        """Direction the head moves in after ``action``: the action rules in one place.

        Absolute: the action, except a reversal into the neck or an out-of-range action, which
        keep the current direction.  Relative: turn left/go straight/turn right; out of range
        goes straight.
        """
        action = jnp.asarray(action, jnp.int32)
        if self.actions == "absolute":
            keep = (action < 0) | (action > 3) | (action == (direction ^ 2))
            return jnp.where(keep, direction, action)
        turn = jnp.where((action >= 0) & (action <= 2), action - 1, 0)
        return (direction + turn) & 3

    def transition(
        self,
        state: EnvState,
        action: int | float | jax.Array,
        params: EnvParams,
        food_u: jax.Array,
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
        """``step_env`` given its one random number: ``food_u`` in [0, 1) picks new food."""
        direction = self.next_direction(state.direction, action)
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
            reward = reward + self._food_shaping(state, row, col, dies | eats, params)
        info = {
            "apples": length - INITIAL_LENGTH,
            "length": length,
            "win": win,
            "discount": jnp.where(terminated, 0.0, 1.0).astype(jnp.float32),
        }
        return self.get_obs(new_state, params), new_state, reward, terminated, info

    def initial(
        self,
        food_u: jax.Array,
        params: EnvParams | None = None,
        start_u: jax.Array | float = 0.0,
    ) -> tuple[jax.Array, EnvState]:
        """``reset_env`` given its random numbers: ``food_u`` picks the food, ``start_u`` the
        random start (only with ``params.random_start``)."""
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
            dead=jnp.bool_(False),
        )
        if self.observation == "egocentric":  # constant but for the food: no gather
            food_plane = (jnp.asarray(self._ego_start_cells) == food).astype(jnp.float32)
            food_channel = jnp.asarray([0.0, 1.0, 0.0], jnp.float32)
            obs = jnp.asarray(self._ego_start_obs) + food_plane[..., None] * food_channel
        else:
            obs = self.get_obs(state, params)
        if params is not None and not _is_off(params.random_start):
            random = self._random_start_state(food_u, start_u)
            flag = jnp.asarray(params.random_start, jnp.bool_)
            state = jax.tree.map(lambda r, s: jax.lax.select(flag, r, s), random, state)
            obs = jax.lax.select(flag, self.get_obs(random, params), obs)
        return obs, state

    def observe(
        self,
        key: jax.Array,
        state: EnvState,
        action: int | float | jax.Array | None,
        params: EnvParams,
    ) -> jax.Array:
        """The configured observation; see the module docstring."""
        return self.get_obs(state, params, key)

    def get_obs(
        self, state: EnvState, params: EnvParams | None = None, key: Any = None
    ) -> jax.Array:
        """Keyless observation (planes or egocentric), also used by rendering and tests."""
        if self.observation == "egocentric":
            return self._egocentric_obs(state)
        body = state.body
        head = body == state.length.astype(self.body_dtype)
        age = body.astype(jnp.float32) / state.length.astype(jnp.float32)
        food = self._flat_index() == state.food
        return jnp.stack([head.astype(jnp.float32), age, food.astype(jnp.float32)], axis=-1)

    def is_truncated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Time limit or starvation limit (0 = derived from the board): never terminations."""
        time_limit = _resolve_limit(params.max_steps_in_episode, self.auto_max_steps_in_episode)
        food_limit = _resolve_limit(params.max_steps_without_food, self.auto_max_steps_without_food)
        return (state.time >= time_limit) | (state.steps_without_food >= food_limit)

    def is_terminated(self, state: EnvState, params: EnvParams | None = None) -> jax.Array:
        """Dead (recorded by the fatal step) or the board is full."""
        return jnp.asarray(state.dead, jnp.bool_) | (state.length >= self.num_cells)

    def is_terminal(self, state: EnvState, params: EnvParams | None = None) -> jax.Array:
        """Same as ``is_terminated``: truncations are not terminal."""
        return self.is_terminated(state, params)

    def discount(self, state: EnvState, params: EnvParams | None = None) -> jax.Array:
        """0.0 on a terminal state (death or win), else 1.0; ``info["discount"]`` per step."""
        return jnp.where(self.is_terminated(state, params), 0.0, 1.0).astype(jnp.float32)

    def valid_actions(self, state: EnvState, params: EnvParams | None = None) -> jax.Array:
        """Bool ``(num_actions,)``: False only for the absolute move back into the neck.

        That move does nothing (the snake goes straight), so masking it removes a duplicate of
        "straight" from the policy; relative actions have no such move, all are True.
        """
        if self.actions == "relative":
            return jnp.ones((3,), jnp.bool_)
        return jnp.arange(4, dtype=jnp.int32) != (jnp.asarray(state.direction) ^ 2)

    def safe_actions(self, state: EnvState, params: EnvParams | None = None) -> jax.Array:
        """Bool ``(num_actions,)``: ``valid_actions`` that do not die at once (wall or body).

        Same collision rule as the step (the leaving tail is free unless the move eats).  May be
        all False when the snake is trapped: fall back to ``valid_actions`` then.
        """
        actions = jnp.arange(self.num_actions, dtype=jnp.int32)
        direction = self.next_direction(jnp.asarray(state.direction), actions)
        row = state.head_row + jnp.asarray(_DROW)[direction]
        col = state.head_col + jnp.asarray(_DCOL)[direction]
        inside = (row >= 0) & (row < self.height) & (col >= 0) & (col < self.width)
        flat = jnp.where(inside, row * self.width + col, 0)
        cell = state.body.reshape(-1)[flat].astype(jnp.int32)
        eats = inside & (flat == state.food)
        dies = ~inside | (cell > jnp.where(eats, 0, 1))
        return self.valid_actions(state, params) & ~dies

    def symmetries(self, params: EnvParams | None = None) -> tuple[Symmetry, ...]:
        """Symmetries for data augmentation: ``(obs_transform, action_permutation)`` pairs.

        ``obs_transform`` acts on one observation of shape ``obs_shape``; if action ``a`` is
        right in ``obs``, then ``perm[a]`` is right in ``obs_transform(obs)``.  The first
        element is the identity.  Planes: the board's rotations and reflections (all 8 of D4 on
        a square board, the 4 that keep the shape otherwise); rotations permute absolute
        actions and leave relative ones alone, reflections also swap left and right turns.
        Egocentric with relative actions: the left-right mirror (perm ``[2, 1, 0]``).
        Egocentric with absolute actions: identity only (the heading is not observed, so a
        mirrored view has no single matching absolute action).
        """
        n = self.num_actions
        identity: Symmetry = (_identity, np.arange(n, dtype=np.int32))
        if self.observation == "egocentric":
            if self.actions == "relative":
                return (identity, (_board_symmetry(0, True), np.array([2, 1, 0], np.int32)))
            return (identity,)
        rotations = range(4) if self.width == self.height else (0, 2)
        out: list[Symmetry] = []
        for flip in (False, True):
            for k in rotations:
                if self.actions == "absolute":
                    mirrored = _MIRROR_DIRECTION if flip else np.arange(4, dtype=np.int32)
                    # np.rot90 (counter-clockwise) turns up into left: direction d -> d - 1.
                    perm = ((mirrored - k) % 4).astype(np.int32)
                else:
                    perm = np.array([2, 1, 0] if flip else [0, 1, 2], np.int32)
                out.append(
                    (_identity if (k, flip) == (0, False) else _board_symmetry(k, flip), perm)
                )
        return tuple(out)

    def render_frame(
        self, state: EnvState, params: EnvParams | None = None, cell_px: int = 16
    ) -> jax.Array:
        """RGB ``uint8`` ``(height * cell_px, width * cell_px, 3)`` image; jittable, vmappable.

        The generic frame hook for GIFs: ``jax.vmap(env.render_frame)(states)`` renders a
        stacked rollout in one call.  Always shows the whole board, whatever the observation.
        """
        return draw_board(state.body, state.length, state.food, cell_px)

    def render(self, state: EnvState, params: EnvParams | None = None) -> np.ndarray:
        """RGB frame as a NumPy array (used by ``GymnaxToGymWrapper.render``)."""
        return np.asarray(self.render_frame(state, params))

    @property
    def name(self) -> str:
        """Registered id."""
        return "Snake-v0"

    @property
    def num_actions(self) -> int:
        """Four absolute directions or three relative turns."""
        return 4 if self.actions == "absolute" else 3

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        """Absolute: 0 up, 1 right, 2 down, 3 left.  Relative: 0 left, 1 straight, 2 right."""
        return spaces.Discrete(self.num_actions)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        """Float planes in [0, 1]."""
        return spaces.Box(0.0, 1.0, self.obs_shape, jnp.float32)

    def state_space(self, params: EnvParams | None = None) -> spaces.Dict:
        """Bounds of every state field."""
        params = self.resolve_params(self.default_params if params is None else params)
        n = self.num_cells
        return spaces.Dict(
            {
                "body": spaces.Box(0, n, (self.height, self.width), self.body_dtype),
                "head_row": spaces.Discrete(self.height),
                "head_col": spaces.Discrete(self.width),
                "direction": spaces.Discrete(4),
                "food": spaces.Discrete(n + 1),
                "length": spaces.Box(INITIAL_LENGTH, n, (), jnp.int32),
                "steps_without_food": spaces.Discrete(int(params.max_steps_without_food) + 1),
                "time": spaces.Discrete(int(params.max_steps_in_episode) + 1),
                "dead": spaces.Discrete(2),
            }
        )

    # ------------------------------------------------------------------ helpers

    def _food_shaping(
        self,
        state: EnvState,
        row: jax.Array,
        col: jax.Array,
        unshaped: jax.Array,
        params: EnvParams,
    ) -> jax.Array:
        """``coef * (d_before - d_after) / (height + width)``; 0 on eating or fatal steps."""
        food_row, food_col = state.food // self.width, state.food % self.width
        before = jnp.abs(state.head_row - food_row) + jnp.abs(state.head_col - food_col)
        after = jnp.abs(row - food_row) + jnp.abs(col - food_col)
        fill = state.length.astype(jnp.float32) / self.num_cells
        coef = params.food_shaping * jnp.maximum(0.0, 1.0 - params.food_shaping_decay * fill)
        shaping = coef * (before - after).astype(jnp.float32) / (self.height + self.width)
        return jnp.where(unshaped, 0.0, shaping).astype(jnp.float32)

    def _start_table(self) -> np.ndarray:
        """``(row, col, direction)`` of every straight length-3 start with a free cell ahead.

        Falls back to every start that fits when no start has room ahead (e.g. 3 x 3).
        """

        def starts(room_ahead: int) -> list[tuple[int, int, int]]:
            out = []
            for d in range(4):
                for r in range(self.height):
                    for c in range(self.width):
                        cells = [
                            (r - k * _DROW[d], c - k * _DCOL[d])
                            for k in range(-room_ahead, INITIAL_LENGTH)
                        ]
                        if all(0 <= y < self.height and 0 <= x < self.width for y, x in cells):
                            out.append((r, c, d))
            return out

        table = starts(1) or starts(0)
        return np.asarray(table, dtype=np.int32)

    def _random_start_state(self, food_u: jax.Array, start_u: jax.Array | float) -> EnvState:
        """Uniformly drawn start from ``_start_table``; food uniform on the free cells."""
        count = self._random_starts.shape[0]
        pick = jnp.minimum(jnp.floor(start_u * count).astype(jnp.int32), count - 1)
        row, col, direction = jnp.asarray(self._random_starts)[pick]
        head = row * self.width + col
        stride = jnp.asarray(_DROW)[direction] * self.width + jnp.asarray(_DCOL)[direction]
        flat = self._flat_index()
        body = jnp.where(
            flat == head,
            3,
            jnp.where(flat == head - stride, 2, jnp.where(flat == head - 2 * stride, 1, 0)),
        ).astype(self.body_dtype)
        # The u-th free cell: step u over the three body cells in ascending order.
        low, high = jnp.minimum(head, head - 2 * stride), jnp.maximum(head, head - 2 * stride)
        food = jnp.floor(food_u * (self.num_cells - INITIAL_LENGTH)).astype(jnp.int32)
        food = jnp.minimum(food, self.num_cells - INITIAL_LENGTH - 1)
        for occupied in (low, head - stride, high):
            food = food + (food >= occupied).astype(jnp.int32)
        return EnvState(
            body=body,
            head_row=row,
            head_col=col,
            direction=direction,
            food=food,
            length=jnp.int32(INITIAL_LENGTH),
            steps_without_food=jnp.int32(0),
            time=jnp.int32(0),
            dead=jnp.bool_(False),
        )

    def _egocentric_obs(self, state: EnvState) -> jax.Array:
        """Window around the head, rotated so the heading points up; walls outside the board.

        One small-int "code" board (body counters, ``food_code``, ``wall_code`` in the
        padding), one ``dynamic_slice`` of the ``S x S`` window (contiguous rows: much cheaper
        under ``vmap`` than a per-cell gather), a select among its four ``rot90``s by heading
        (``rot90`` by ``k`` turns heading ``k`` up), then the three channels in one expression.
        """
        size, centre = self.ego_size, self.ego_size // 2
        food_code, wall_code = self.num_cells + 1, self.num_cells + 2
        body = state.body.astype(self._ego_code_dtype)
        code = jnp.where(self._flat_index() == state.food, food_code, body).astype(body.dtype)
        padded = jnp.pad(code, centre, constant_values=wall_code)
        window = jax.lax.dynamic_slice(padded, (state.head_row, state.head_col), (size, size))
        d = state.direction
        view = jnp.where(
            d == 0,
            window,
            jnp.where(
                d == 1,
                jnp.rot90(window, 1),
                jnp.where(d == 2, jnp.rot90(window, 2), jnp.rot90(window, 3)),
            ),
        )[..., None]
        body = jnp.where(view <= self.num_cells, view, 0).astype(jnp.float32)
        body = body / state.length.astype(jnp.float32)
        channel = jnp.arange(3)
        marks = jnp.where(channel == 1, view == food_code, view == wall_code)
        return jnp.where(channel == 0, body, marks.astype(jnp.float32))

    def _egocentric_start(self) -> tuple[np.ndarray, np.ndarray]:
        """The constant start's window without food, and each window cell's board cell (-1 off
        the board), so the reset observation is one compare instead of a window and rotation.

        Window cell ``(i, j)`` is ``c - i`` cells ahead of the head and ``j - c`` to its right
        (``c`` the centre); the start heads right, so "ahead" is +column and "right" +row.
        """
        centre = self.ego_size // 2
        ahead = np.arange(centre, centre - self.ego_size, -1)[:, None]
        right = np.arange(-centre, self.ego_size - centre)[None, :]
        row = self._start_row + right + 0 * ahead
        col = self._start_col + ahead + 0 * right
        inside = (row >= 0) & (row < self.height) & (col >= 0) & (col < self.width)
        flat = np.where(inside, row * self.width + col, 0)
        obs = np.zeros(self.obs_shape, np.float32)
        body = np.where(inside, self._start_body.reshape(-1)[flat], 0).astype(np.float32)
        obs[..., 0] = body / np.float32(INITIAL_LENGTH)
        obs[..., 2] = ~inside
        return obs, np.where(inside, flat, -1).astype(np.int32)

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
