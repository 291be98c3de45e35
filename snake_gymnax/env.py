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
reversal: it never kills the snake by itself.  These action rules live here, next to the action
space (``Snake.next_direction``); the step rules (eating, dying, rewards, shaping, truncations)
are spelled out in ``snake_gymnax.rules``, which implements them.

Observations (constructor argument ``observation``): ``"planes"`` (default, the board as
head/body/food planes) or ``"egocentric"`` (a head-centred window rotated to the heading);
channels and values in ``snake_gymnax.observations``.

Representation (chosen for speed under ``vmap``): the body is an int grid of remaining-lifetime
counters.  The head cell holds ``length``, the tail holds 1, free cells hold 0.  Each step every
counter is decremented (skipped on an eating step, which is exactly growth by one) and the new
head cell is set to ``length``.  No Python loops, no dynamic shapes, no scatter: every update is
a handful of elementwise ops on the board.  New food is the ``u``-th free cell, ``u`` uniform in
``[0, free)``, found in two levels (free cells per row, then within one row), so one random number
is drawn per step instead of one per cell.  Reset is a constant board plus one table lookup for
the food, because auto-reset computes a reset on every step; ``Snake.step`` draws all of a
step's random numbers (transition food, reset food, random start) from one call.

This module holds the ``Snake`` class (options, params, step/reset wiring, action rules, hooks,
spaces); what it builds on lives below it: ``state`` (``EnvState``, ``EnvParams``, board
constants, params helpers), ``rules`` (one step), ``observations``, ``placement`` (starts, new
food, the step's draw), ``symmetries`` and ``frame`` (drawing).  Where a hook is a sibling's
function as it stands (``uniforms``, ``render_frame``) the class names it instead of wrapping
it; everything gymnax's ``Environment`` already does right (``reset``, ``observe``) is
inherited.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import environment, spaces

from snake_gymnax import frame, observations, placement, reach, rules
from snake_gymnax.observations import (
    CHANNELS,
    EGOCENTRIC_CHANNELS,
    HUNGER_CHANNEL,
    OBSERVATIONS,
    REACH_CHANNEL,
    TAIL_CHANNEL,
    TAIL_REACH_CHANNEL,
)
from snake_gymnax.state import (
    INITIAL_LENGTH,
    EnvParams,
    EnvState,
    RetryState,
    body_dtype,
    is_off,
    resolve_limit,
    select_tree,
    with_saved,
    with_start_length,
)
from snake_gymnax.symmetries import Symmetry, action_permutation, board_symmetry

ACTION_MODES = ("absolute", "relative")


def _check_options(width: int, height: int, actions: str, observation: str,
                   curriculum_start: float, low: float, high: float, retry_death: float) -> None:
    """One ``ValueError`` naming the first constructor option out of range."""
    if width < INITIAL_LENGTH or height < 1 or width * height <= INITIAL_LENGTH:
        raise ValueError(
            f"board {width}x{height} too small: need width >= {INITIAL_LENGTH} and at least "
            f"{INITIAL_LENGTH + 1} cells"
        )
    if actions not in ACTION_MODES:
        raise ValueError(f"actions must be one of {ACTION_MODES}, got {actions!r}")
    if observation not in OBSERVATIONS:
        raise ValueError(f"observation must be one of {OBSERVATIONS}, got {observation!r}")
    if not 0.0 <= curriculum_start <= 1.0:
        raise ValueError(f"curriculum_start must be in [0, 1], got {curriculum_start}")
    if not 0.0 <= retry_death <= 1.0:
        raise ValueError(f"retry_death must be in [0, 1], got {retry_death}")
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(
            f"need 0 <= curriculum_min_fill <= curriculum_max_fill <= 1, got {low}, {high}"
        )


class Snake(environment.Environment[EnvState, EnvParams]):
    """Snake on a ``height`` x ``width`` board.

    ``actions``: ``"absolute"`` (0 up, 1 right, 2 down, 3 left) or ``"relative"`` (0 left,
    1 straight, 2 right).  ``observation``: ``"planes"`` (head, body, food on the board) or
    ``"egocentric"`` (body, food, wall in a head-centred window rotated to the heading).
    ``reachability``: a fourth channel marking the cells the head can still reach.
    ``tail_reach``: a channel marking the tail's cell and the free cells joined to it (a move
    into one keeps a path to the tail to follow: the "follow your tail" rule against cornering).
    ``curriculum_start``: the fraction of episodes that start with a long snake, its length
    ``round(fill * area)`` with ``fill`` uniform in ``[curriculum_min_fill,
    curriculum_max_fill]``.  ``tail_channel``: a channel marking the tail's cell (the one body
    cell a move may enter).  ``hunger_channel``: a last channel holding the steps since the last
    apple over the starvation limit in every cell (a clock, so that a greedy policy circling the
    board does not see the same observation again).  Option channels come in this order:
    ``reach``, ``tail_reach``, ``tail``, ``hunger``.  ``mask_fatal_moves``: ``valid_actions``
    also rules out the moves that die at once (wall or body) unless every move does, so that a
    trainer's action mask (``--action-mask``) is a one-step safety shield; the dynamics never
    change.  ``retry_death``: the chance that a game that dies (a crash, or starvation with
    ``starvation_is_death``) restarts from the state right after its last apple (at most once
    per apple, its clock going on) instead of from a new start, so the late-game states where
    a policy starves or crashes come back for training.  All are off by default and then cost
    nothing.
    """

    def __init__(
        self,
        width: int = 10,
        height: int = 10,
        actions: str = "absolute",
        observation: str = "planes",
        reachability: bool = False,
        curriculum_start: float = 0.0,
        curriculum_min_fill: float = 0.5,
        curriculum_max_fill: float = 0.85,
        mask_fatal_moves: bool = False,
        tail_channel: bool = False,
        tail_reach: bool = False,
        hunger_channel: bool = False,
        retry_death: float = 0.0,
    ):
        super().__init__()
        width, height = int(width), int(height)
        curriculum_start = float(curriculum_start)
        low, high = float(curriculum_min_fill), float(curriculum_max_fill)
        retry_death = float(retry_death)
        _check_options(width, height, actions, observation, curriculum_start, low, high,
                       retry_death)
        self.width = width
        self.height = height
        self.actions = actions
        self.observation = observation
        self.reachability = bool(reachability)
        self.mask_fatal_moves = bool(mask_fatal_moves)
        self.tail_channel = bool(tail_channel)
        self.tail_reach = bool(tail_reach)
        self.hunger_channel = bool(hunger_channel)
        self.curriculum_start = curriculum_start
        self.retry_death = retry_death
        # the state carries start_length (a CurriculumState) with either option on
        self.tracks_start_length = bool(curriculum_start or retry_death)
        self.curriculum_min_fill, self.curriculum_max_fill = low, high
        self.num_cells = width * height
        self.body_dtype = body_dtype(self.num_cells)
        # Limits used when the EnvParams field is 0: a Hamiltonian-cycle player needs at most
        # `area` steps per apple and about area**2 / 4 steps per won game.
        self.auto_max_steps_in_episode = max(50 * self.num_cells, self.num_cells**2 // 2)
        self.auto_max_steps_without_food = 2 * self.num_cells

        channels = CHANNELS if observation == "planes" else EGOCENTRIC_CHANNELS
        self.channels = (channels + (REACH_CHANNEL,) * self.reachability
                         + (TAIL_REACH_CHANNEL,) * self.tail_reach
                         + (TAIL_CHANNEL,) * self.tail_channel
                         + (HUNGER_CHANNEL,) * self.hunger_channel)
        if observation == "planes":
            self.obs_shape = (height, width, len(self.channels))
        else:
            self.ego_size = observations.egocentric_size(height, width)
            self.obs_shape = (self.ego_size, self.ego_size, len(self.channels))

        # Constant start (centre, heading right) and its free cells, for a one-lookup reset.
        start = placement.constant_start(height, width, self.body_dtype)
        self._start_body, self._start_row, self._start_col, self._start_free = start
        self._random_starts = placement.start_table(height, width)
        # The constant start's reachable cells (no flood fill in a reset).
        self._start_reach = reach.reachable_host(
            np.asarray(self._start_body), self._start_row, self._start_col
        )
        if observation == "egocentric":
            self._ego_code_dtype = observations.egocentric_code_dtype(self.num_cells)
            self._ego_start_obs, self._ego_start_cells = observations.egocentric_start(
                self._start_body, self._start_row, self._start_col, self.ego_size
            )
            boards = [self._start_reach] * self.reachability
            boards += [reach.tail_region_host(np.asarray(self._start_body))] * self.tail_reach
            boards += [np.asarray(self._start_body) == 1] * self.tail_channel
            boards += [np.zeros((height, width), bool)] * self.hunger_channel  # no step yet
            cells = self._ego_start_cells
            for board in boards:  # the option planes of the start, through the window's cells
                plane = np.where(cells >= 0, board.reshape(-1)[cells], False)
                self._ego_start_obs = np.concatenate(
                    [self._ego_start_obs, plane[..., None].astype(np.float32)], axis=-1
                )

    # ------------------------------------------------------------------ gymnax API

    @property
    def evaluation_kwargs(self) -> dict[str, float]:
        """Constructor kwargs that shape training only, undone for greedy evaluation: a policy
        trained with a curriculum start or retries is evaluated on the game itself (the centre
        start, one life)."""
        undo = {"curriculum_start": self.curriculum_start, "retry_death": self.retry_death}
        return {name: 0.0 for name, value in undo.items() if value > 0}

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
            max_steps_in_episode=resolve_limit(
                params.max_steps_in_episode, self.auto_max_steps_in_episode
            ),
            max_steps_without_food=resolve_limit(
                params.max_steps_without_food, self.auto_max_steps_without_food
            ),
        )

    # A step's random numbers from one draw: ``(food_u, reset_u, start_u)``; see the function.
    uniforms = staticmethod(placement.uniforms)

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
        obs_re, state_re = self.initial(reset_u, params, start_u, self.curriculum_uniforms(key))
        if self.retry_death:
            obs_re, state_re = self._retry(key, state_st, obs_re, state_re)
        obs, state = select_tree(done, (obs_re, state_re), (obs_st, state_st))
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
        if not is_off(params.random_start):
            start_u = jax.random.uniform(jax.random.fold_in(key, 1))
        return self.initial(
            jax.random.uniform(key), params, start_u, self.curriculum_uniforms(key)
        )

    def _retry(
        self, key: jax.Array, state: RetryState, obs_re: jax.Array, state_re: RetryState
    ) -> tuple[jax.Array, RetryState]:
        """The reset after ``state``: its retry point where it died, had not restarted from
        it yet and the ``retry_death`` draw (from a folded key) says so, else ``(obs_re,
        state_re)``.  Once per point: a position where every move dies is not replayed until
        the time limit."""
        again = jax.random.uniform(jax.random.fold_in(key, 3)) < self.retry_death
        flag = jnp.asarray(state.dead, jnp.bool_) & ~state.retried & again
        point = with_saved(state.saved.replace(time=state.time), state.saved, state.saved_obs,
                           retried=True)
        return select_tree(flag, (state.saved_obs, point), (obs_re, state_re))

    def curriculum_uniforms(self, key: jax.Array) -> jax.Array | None:
        """The curriculum start's five uniforms (long start or not, length, offset, symmetry,
        food), from a folded key; ``None`` without the option (no extra draw)."""
        if not self.curriculum_start:
            return None
        return jax.random.uniform(jax.random.fold_in(key, 2), (5,))

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
        moved = rules.move(state, direction, params, food_u)
        new_state, reward, terminated, info = rules.starve(*moved, self.resolve_params(params))
        obs = self.get_obs(new_state, params)
        if self.retry_death:  # an apple eaten: this is the new retry point
            point = with_saved(new_state, new_state, obs)
            ate = new_state.steps_without_food == 0
            new_state = select_tree(ate, point, new_state)
        return obs, new_state, reward, terminated, info

    def initial(
        self,
        food_u: jax.Array,
        params: EnvParams | None = None,
        start_u: jax.Array | float = 0.0,
        curriculum_u: jax.Array | None = None,
    ) -> tuple[jax.Array, EnvState]:
        """``reset_env`` given its random numbers: ``food_u`` picks the food, ``start_u`` the
        random start (only with ``params.random_start``), ``curriculum_u`` (five uniforms,
        ``curriculum_uniforms``) the curriculum start (only with the option; ``None``: the
        usual start)."""
        num_free = self._start_free.shape[0]
        u = jnp.floor(food_u * num_free).astype(jnp.int32)
        food = jnp.asarray(self._start_free)[jnp.minimum(u, num_free - 1)]
        start = (self._start_body, self._start_row, self._start_col)
        state = placement.constant_start_state(*start, food)
        if self.observation == "egocentric":  # constant but for the food: no gather
            obs = observations.egocentric_start_obs(
                self._ego_start_obs, self._ego_start_cells, food
            )
        elif self.reachability:  # the start's reachable cells are a constant
            obs = observations.with_planes(
                self._planes_obs(state), self._extra_planes(state, jnp.asarray(self._start_reach))
            )
            obs = self._with_hunger(obs, state, params)
        else:
            obs = self.get_obs(state, params)
        if self.tracks_start_length:
            state = with_start_length(state, INITIAL_LENGTH)
        if params is not None and not is_off(params.random_start):
            random = placement.random_start_state(
                self._random_starts, food_u, start_u, self.height, self.width, self.body_dtype
            )
            if self.tracks_start_length:
                random = with_start_length(random, INITIAL_LENGTH)
            flag = jnp.asarray(params.random_start, jnp.bool_)
            obs, state = select_tree(flag, (self.get_obs(random, params), random), (obs, state))
        if self.curriculum_start and curriculum_u is not None:
            long, length = placement.long_start_state(
                curriculum_u[1:],
                self.curriculum_min_fill,
                self.curriculum_max_fill,
                self.height,
                self.width,
                self.body_dtype,
            )
            long = with_start_length(long, length)
            flag = curriculum_u[0] < self.curriculum_start
            obs, state = select_tree(flag, (self.get_obs(long, params), long), (obs, state))
        if self.retry_death:  # a new game is its own first retry point
            state = with_saved(state, state, obs)
        return obs, state

    def get_obs(
        self, state: EnvState, params: EnvParams | None = None, key: Any = None
    ) -> jax.Array:
        """Keyless observation (planes or egocentric, plus the options' channels), also used
        by rendering and tests."""
        if self.observation == "egocentric":  # its tail plane comes from the window itself
            obs = observations.egocentric_obs(
                state, self.height, self.width, self.ego_size, self._ego_code_dtype,
                self._extra_planes(state, with_tail=False), self.tail_channel,
            )
        else:
            extra = self._extra_planes(state)
            obs = self._planes_obs(state)
            obs = obs if extra is None else observations.with_planes(obs, extra)
        return self._with_hunger(obs, state, params)

    def _with_hunger(
        self, obs: jax.Array, state: EnvState, params: EnvParams | None
    ) -> jax.Array:
        """``obs`` with the hunger channel (steps since the last apple / starvation limit) when
        the option is on."""
        if not self.hunger_channel:
            return obs
        limit = self.resolve_params(params if params is not None else EnvParams())
        return observations.with_hunger(
            obs, state.steps_without_food / limit.max_steps_without_food
        )

    def _extra_planes(
        self, state: EnvState, reach_cells: jax.Array | None = None, with_tail: bool = True
    ) -> jax.Array | None:
        """The options' bool boards ``(height, width, k)`` in channel order, or None (no option
        on); ``reach_cells``: the reachable set when it is already known; ``with_tail=False``
        leaves the tail board out (the egocentric view reads it off its window)."""
        boards = []
        if self.reachability:
            boards.append(reach.reachable(state.body, state.head_row, state.head_col)
                          if reach_cells is None else reach_cells)
        if self.tail_reach:
            boards.append(reach.tail_region(state.body))
        if self.tail_channel and with_tail:
            boards.append(observations.tail_plane(state.body))
        return jnp.stack(boards, axis=-1) if boards else None

    def _planes_obs(self, state: EnvState) -> jax.Array:
        return observations.planes_obs(state, self.height, self.width, self.body_dtype)

    def is_truncated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Time limit or starvation limit (0 = derived from the board); starvation is a
        termination instead with ``params.starvation_is_death``."""
        limits = self.resolve_params(params)
        hungry = rules.starved(state, limits)
        if not is_off(params.starvation_is_death):
            hungry = hungry & ~jnp.asarray(params.starvation_is_death, jnp.bool_)
        return (state.time >= limits.max_steps_in_episode) | hungry

    def is_terminated(self, state: EnvState, params: EnvParams | None = None) -> jax.Array:
        """Dead (recorded by the fatal step) or the board is full."""
        return jnp.asarray(state.dead, jnp.bool_) | (state.length >= self.num_cells)

    # gymnax's legacy name (truncations are not terminal); an alias keeps ``params`` optional.
    is_terminal = is_terminated

    def discount(self, state: EnvState, params: EnvParams | None = None) -> jax.Array:
        """float32 0.0 on a terminal state (death or win), else 1.0, like ``info["discount"]``."""
        return rules.discount(self.is_terminated(state, params))

    def valid_actions(self, state: EnvState, params: EnvParams | None = None) -> jax.Array:
        """Bool ``(num_actions,)``: False only for the absolute move back into the neck.

        That move does nothing (the snake goes straight), so masking it removes a duplicate of
        "straight" from the policy; relative actions have no such move, all are True.  With
        ``mask_fatal_moves`` these are ``shielded_actions``.
        """
        return self.shielded_actions(state) if self.mask_fatal_moves else self._moves(state)

    def safe_actions(self, state: EnvState, params: EnvParams | None = None) -> jax.Array:
        """Bool ``(num_actions,)``: valid actions that do not die at once (wall or body).

        Same collision rule as the step (the leaving tail is free unless the move eats).  May be
        all False when the snake is trapped: fall back to ``valid_actions`` then.
        """
        return self._moves(state) & ~self._fatal(state)

    def shielded_actions(self, state: EnvState, params: EnvParams | None = None) -> jax.Array:
        """Bool ``(num_actions,)``: ``safe_actions``, or every valid action when none is safe
        (a trapped snake keeps its moves, so a mask never empties): a one-step safety shield."""
        moves = self._moves(state)
        safe = moves & ~self._fatal(state)
        return jnp.where(safe.any(), safe, moves)

    def _moves(self, state: EnvState) -> jax.Array:
        """Every action but the absolute reversal (``valid_actions`` without the shield)."""
        if self.actions == "relative":
            return jnp.ones((3,), jnp.bool_)
        return jnp.arange(4, dtype=jnp.int32) != (jnp.asarray(state.direction) ^ 2)

    def _fatal(self, state: EnvState) -> jax.Array:
        """Bool ``(num_actions,)``: which actions' moves hit a wall or the body."""
        candidates = jnp.arange(self.num_actions, dtype=jnp.int32)
        direction = self.next_direction(jnp.asarray(state.direction), candidates)
        return rules.head_move(state, direction)[-1]

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
        if self.observation == "egocentric":  # the heading is not observed
            elements = [(0, False), (0, True)] if self.actions == "relative" else [(0, False)]
        else:
            rotations = range(4) if self.width == self.height else (0, 2)
            elements = [(k, flip) for flip in (False, True) for k in rotations]
        return tuple(
            (board_symmetry(k, flip), action_permutation(self.actions, k, flip))
            for k, flip in elements
        )

    # The GIF hook ``render_frame(state, params=None, cell_px=16)``: RGB uint8 image of the
    # whole board, jittable and vmappable; see ``snake_gymnax.frame.render_frame``.
    render_frame = staticmethod(frame.render_frame)

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
                **(
                    {"start_length": spaces.Box(INITIAL_LENGTH, n, (), jnp.int32)}
                    if self.tracks_start_length
                    else {}
                ),
            }
        )
