"""The Snake state and params types, their bounds, and the board constants all modules share.

It exists so the rules, observation, placement and environment modules can all use
``EnvState``, the direction tables, the counter dtype and the params helpers (``is_off``,
``resolve_limit``) without importing ``env.py`` (imports point down: everything here depends
only on JAX, NumPy, flax and gymnax).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment

INITIAL_LENGTH = 3

# Row/column offsets of the four directions: up, right, down, left (clockwise).
DROW = np.array([-1, 0, 1, 0], dtype=np.int32)
DCOL = np.array([0, 1, 0, -1], dtype=np.int32)


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
class CurriculumState(EnvState):
    """``EnvState`` plus the episode's start length, used only by a ``Snake`` built with
    ``curriculum_start > 0`` (so ``info["apples"]`` counts the apples eaten, not the long
    start; the default env's state keeps its fields)."""

    start_length: jax.Array = INITIAL_LENGTH  # int32


def with_start_length(state: EnvState, start_length: Any) -> CurriculumState:
    """``state`` as a ``CurriculumState`` that started at ``start_length``."""
    fields = {name: getattr(state, name) for name in EnvState.__dataclass_fields__}
    return CurriculumState(**fields, start_length=jnp.asarray(start_length, jnp.int32))


@struct.dataclass
class RetryState(CurriculumState):
    """``CurriculumState`` plus the game as it was right after its last apple (``saved``, a
    ``CurriculumState``), that state's observation, and whether the game already restarted
    from it (``retried``), used only by a ``Snake`` built with ``retry_death > 0``: a game that
    dies may restart from there once instead of from scratch."""

    saved: Any = None
    saved_obs: Any = None
    retried: Any = False  # bool


def with_saved(
    state: EnvState, saved: EnvState, saved_obs: jax.Array, retried: Any = False
) -> RetryState:
    """``state`` as a ``RetryState`` whose retry point is ``saved`` (seen as ``saved_obs``)."""
    fields = {name: getattr(state, name) for name in CurriculumState.__dataclass_fields__}
    kept = CurriculumState(**{name: getattr(saved, name) for name in fields})
    return RetryState(**fields, saved=kept, saved_obs=saved_obs,
                      retried=jnp.asarray(retried, jnp.bool_))


def select_tree(flag: jax.Array, on_true: Any, on_false: Any) -> Any:
    """``on_true`` where the scalar ``flag`` holds, else ``on_false``, leaf by leaf: the one
    way the env picks between two states of the same structure (a reset, a retry point, a
    start) without a branch."""
    return jax.tree.map(lambda a, b: jax.lax.select(flag, a, b), on_true, on_false)


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
    food_reach_shaping: float = 0.0  # -c on the step that walls the food off from the head, +c on the one that frees it; 0: off
    random_start: bool = False  # random start cell and heading instead of centre, heading right
    starvation_is_death: bool = False  # the starvation limit ends the game as a death (terminated)
    win_reward: float = 0.0  # added to the apple's reward on the step that fills the board; 0: off
    hole_shaping: float = 0.0  # -c per free cell the step walls in on all four sides, +c per one it opens; 0: off


def body_dtype(num_cells: int) -> Any:
    """Smallest int dtype that holds the body counters (0 .. ``num_cells``).

    Small counters halve or quarter the memory traffic of every board op.
    """
    if num_cells <= np.iinfo(np.uint8).max:
        return jnp.uint8
    if num_cells <= np.iinfo(np.int16).max:
        return jnp.int16
    return jnp.int32


def flat_index(height: int, width: int) -> jax.Array:
    """``(height, width)`` int32 board whose cells hold their flat index ``row * width + col``."""
    return jnp.arange(height * width, dtype=jnp.int32).reshape(height, width)


def is_off(value: Any) -> bool:
    """True for a concrete Python/NumPy zero or False (an untraced ``EnvParams`` field).

    Lets an option that is off cost nothing when the params are closed over (the usual case);
    traced or vmapped params take the ``jnp.where`` path, which is correct for any value.
    """
    return isinstance(value, (bool, int, float, np.bool_, np.number)) and not value


def resolve_limit(value: Any, auto: int) -> Any:
    """``value`` if positive, else the board-derived ``auto``; static when ``value`` is."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value) if value > 0 else auto
    value = jnp.asarray(value)
    return jnp.where(value > 0, value, auto)
