"""What the policy sees: the ``"planes"`` and ``"egocentric"`` observations of a Snake state.

Kept apart from ``env.py`` so the dynamics and the views of the board change independently;
``Snake.get_obs`` and ``Snake.initial`` call these functions with the board's shapes.

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

With ``reachability=True`` both get a fourth channel, ``reach``: 1 on every free cell (and
the tail's cell) the head can reach through free cells, 0 elsewhere (``snake_gymnax.reach``).
With ``tail_channel=True`` a last channel, ``tail``: 1 on the tail's cell, the one body cell a
move may enter (it is left on the same step). The body channel's ``1/L`` at the tail against
``2/L`` next to it is a threshold that moves with the length ``L``; a trained policy's most
common fatal move is into the cell next to the tail, so the tail gets its own plane.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from snake_gymnax.state import INITIAL_LENGTH, EnvState, body_dtype, flat_index

NUM_CHANNELS = 3
CHANNELS = ("head", "body", "food")
EGOCENTRIC_CHANNELS = ("body", "food", "wall")
OBSERVATIONS = ("planes", "egocentric")
REACH_CHANNEL = "reach"  # appended by the ``reachability`` option
TAIL_REACH_CHANNEL = "tail_reach"  # appended by the ``tail_reach`` option, after ``reach``
TAIL_CHANNEL = "tail"  # appended by the ``tail_channel`` option
HUNGER_CHANNEL = "hunger"  # appended last by the ``hunger_channel`` option


def egocentric_size(height: int, width: int) -> int:
    """Side ``S`` of the egocentric window: the whole board fits wherever the head is."""
    return 2 * max(height, width) - 1


def egocentric_code_dtype(num_cells: int) -> Any:
    """Dtype of the code board: 0 free, 1..area body, ``area + 1`` food, ``area + 2`` wall."""
    codes = num_cells + 3
    return body_dtype(codes - 1)


def planes_obs(state: EnvState, height: int, width: int, body_dtype: Any) -> jax.Array:
    """The ``"planes"`` observation: head, body (lifetime / length) and food channels."""
    body = state.body
    head = body == state.length.astype(body_dtype)
    age = body.astype(jnp.float32) / state.length.astype(jnp.float32)
    food = flat_index(height, width) == state.food
    return jnp.stack([head.astype(jnp.float32), age, food.astype(jnp.float32)], axis=-1)


def egocentric_obs(
    state: EnvState,
    height: int,
    width: int,
    ego_size: int,
    code_dtype: Any,
    extra: jax.Array | None = None,
    tail: bool = False,
) -> jax.Array:
    """Window around the head, rotated so the heading points up; walls outside the board.

    One small-int "code" board (body counters, ``food_code``, ``wall_code`` in the
    padding), one ``dynamic_slice`` of the ``S x S`` window (contiguous rows: much cheaper
    under ``vmap`` than a per-cell gather), a select among its four ``rot90``s by heading
    (``rot90`` by ``k`` turns heading ``k`` up), then the three channels in one expression.
    ``extra`` (bool boards ``(height, width, k)``: the ``reach`` and ``tail_reach`` planes)
    rides along the same window and rotation as the next ``k`` channels (0 off the board).
    ``tail`` (the ``tail_channel`` option) appends the tail's cell, read off the window's own
    body counters (code 1), so it costs no second board through the window.
    """
    num_cells = height * width
    size, centre = ego_size, ego_size // 2
    food_code, wall_code = num_cells + 1, num_cells + 2
    body = state.body.astype(code_dtype)
    code = jnp.where(flat_index(height, width) == state.food, food_code, body).astype(body.dtype)
    padded = jnp.pad(code, centre, constant_values=wall_code)
    if extra is None:
        window = jax.lax.dynamic_slice(padded, (state.head_row, state.head_col), (size, size))
    else:  # all boards through one slice and one rotation
        pads = ((centre, centre), (centre, centre), (0, 0))
        padded = jnp.concatenate(
            [padded[..., None], jnp.pad(extra.astype(padded.dtype), pads)], axis=-1
        )
        window = jax.lax.dynamic_slice(
            padded, (state.head_row, state.head_col, 0), (size, size, padded.shape[-1])
        )
    d = state.direction
    view = jnp.where(
        d == 0,
        window,
        jnp.where(
            d == 1,
            jnp.rot90(window, 1),
            jnp.where(d == 2, jnp.rot90(window, 2), jnp.rot90(window, 3)),
        ),
    )
    view, extra_view = (view[..., None], None) if extra is None else (view[..., :1], view[..., 1:])
    body = jnp.where(view <= num_cells, view, 0).astype(jnp.float32)
    body = body / state.length.astype(jnp.float32)
    channel = jnp.arange(3)
    marks = jnp.where(channel == 1, view == food_code, view == wall_code)
    obs = jnp.where(channel == 0, body, marks.astype(jnp.float32))
    planes = [obs] + ([] if extra_view is None else [extra_view.astype(jnp.float32)])
    if tail:
        planes.append((view == 1).astype(jnp.float32))
    return planes[0] if len(planes) == 1 else jnp.concatenate(planes, axis=-1)


def with_planes(obs: jax.Array, extra: jax.Array) -> jax.Array:
    """A ``"planes"`` observation with the option planes ``(height, width, k)`` appended."""
    return jnp.concatenate([obs, extra.astype(jnp.float32)], axis=-1)


def with_hunger(obs: jax.Array, hunger: jax.Array) -> jax.Array:
    """``obs`` with a last channel holding the scalar ``hunger`` in every cell."""
    plane = jnp.broadcast_to(jnp.asarray(hunger, jnp.float32), obs.shape[:-1] + (1,))
    return jnp.concatenate([obs, plane], axis=-1)


def tail_plane(body: jax.Array) -> jax.Array:
    """Bool board: the tail's cell (the body counter 1), the ``tail_channel`` option."""
    return body == jnp.asarray(1, body.dtype)


def egocentric_start(
    start_body: np.ndarray, start_row: int, start_col: int, ego_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The constant start's window without food, and each window cell's board cell (-1 off
    the board), so the reset observation is one compare instead of a window and rotation.

    Window cell ``(i, j)`` is ``c - i`` cells ahead of the head and ``j - c`` to its right
    (``c`` the centre); the start heads right, so "ahead" is +column and "right" +row.
    """
    height, width = start_body.shape
    centre = ego_size // 2
    ahead = np.arange(centre, centre - ego_size, -1)[:, None]
    right = np.arange(-centre, ego_size - centre)[None, :]
    row = start_row + right + 0 * ahead
    col = start_col + ahead + 0 * right
    inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
    flat = np.where(inside, row * width + col, 0)
    obs = np.zeros((ego_size, ego_size, len(EGOCENTRIC_CHANNELS)), np.float32)
    body = np.where(inside, start_body.reshape(-1)[flat], 0).astype(np.float32)
    obs[..., 0] = body / np.float32(INITIAL_LENGTH)
    obs[..., 2] = ~inside
    return obs, np.where(inside, flat, -1).astype(np.int32)


def egocentric_start_obs(
    start_obs: np.ndarray, start_cells: np.ndarray, food: jax.Array
) -> jax.Array:
    """The constant start's egocentric observation with ``food`` added: no window, no gather."""
    food_plane = (jnp.asarray(start_cells) == food).astype(jnp.float32)
    food_channel = jnp.asarray(np.eye(start_obs.shape[-1], dtype=np.float32)[1])
    return jnp.asarray(start_obs) + food_plane[..., None] * food_channel
