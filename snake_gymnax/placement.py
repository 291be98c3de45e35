"""Where things go on the board: the snake's start, the cell of new food, and the one random
draw per step that picks them.

Kept apart from ``env.py`` because placement is table-building and index arithmetic, not the
step rules; ``Snake.__init__`` and ``Snake.initial`` call these functions, ``rules.move``
picks new food with ``nth_free_cell``, and ``Snake.uniforms`` is ``uniforms``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from snake_gymnax.state import DCOL, DROW, INITIAL_LENGTH, EnvState, flat_index


def _unit_float(mantissa: jax.Array) -> jax.Array:
    """Uniform float32 in [0, 1) from 23 random bits, exactly as ``jax.random.uniform`` does."""
    bits = mantissa | jnp.uint32(0x3F800000)
    return jax.lax.bitcast_convert_type(bits, jnp.float32) - jnp.float32(1.0)


def uniforms(key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``Snake.uniforms``: ``(food_u, reset_u, start_u)`` from one ``jax.random.bits`` draw."""
    bits = jax.random.bits(key, (2,), jnp.uint32)
    food_u = _unit_float(bits[0] >> 9)
    reset_u = _unit_float(bits[1] >> 9)
    spare = ((bits[0] & 0x1FF) << 9) | (bits[1] & 0x1FF)
    return food_u, reset_u, _unit_float(spare << 5)


def constant_start(
    height: int, width: int, body_dtype: Any
) -> tuple[np.ndarray, int, int, np.ndarray]:
    """``(body, head_row, head_col, free)`` of the constant start: a horizontal snake in the
    centre, head right of centre, heading right; ``free`` lists the free cells of that board,
    so reset draws food with a single lookup."""
    row, col = height // 2, width // 2
    col = max(col, INITIAL_LENGTH - 1)
    body = np.zeros((height, width), dtype=np.int32)
    for k in range(INITIAL_LENGTH):
        body[row, col - k] = INITIAL_LENGTH - k
    free = np.flatnonzero(body.ravel() == 0).astype(np.int32)
    return body.astype(body_dtype), row, col, free


def constant_start_state(body: np.ndarray, row: int, col: int, food: jax.Array) -> EnvState:
    """The ``EnvState`` of the constant start (``constant_start``) with food on ``food``."""
    return EnvState(
        body=jnp.asarray(body),
        head_row=jnp.int32(row),
        head_col=jnp.int32(col),
        direction=jnp.int32(1),
        food=food,
        length=jnp.int32(INITIAL_LENGTH),
        steps_without_food=jnp.int32(0),
        time=jnp.int32(0),
        dead=jnp.bool_(False),
    )


def start_table(height: int, width: int) -> np.ndarray:
    """``(row, col, direction)`` of every straight length-3 start with a free cell ahead.

    Falls back to every start that fits when no start has room ahead (e.g. 3 x 3).
    """

    def starts(room_ahead: int) -> list[tuple[int, int, int]]:
        out = []
        for d in range(4):
            for r in range(height):
                for c in range(width):
                    cells = [
                        (r - k * DROW[d], c - k * DCOL[d])
                        for k in range(-room_ahead, INITIAL_LENGTH)
                    ]
                    if all(0 <= y < height and 0 <= x < width for y, x in cells):
                        out.append((r, c, d))
        return out

    table = starts(1) or starts(0)
    return np.asarray(table, dtype=np.int32)


def random_start_state(
    starts: np.ndarray,
    food_u: jax.Array,
    start_u: jax.Array | float,
    height: int,
    width: int,
    body_dtype: Any,
) -> EnvState:
    """Uniformly drawn start from ``starts`` (a ``start_table``); food uniform on the free
    cells."""
    num_cells = height * width
    count = starts.shape[0]
    pick = jnp.minimum(jnp.floor(start_u * count).astype(jnp.int32), count - 1)
    row, col, direction = jnp.asarray(starts)[pick]
    head = row * width + col
    stride = jnp.asarray(DROW)[direction] * width + jnp.asarray(DCOL)[direction]
    flat = flat_index(height, width)
    body = jnp.where(
        flat == head,
        3,
        jnp.where(flat == head - stride, 2, jnp.where(flat == head - 2 * stride, 1, 0)),
    ).astype(body_dtype)
    # The u-th free cell: step u over the three body cells in ascending order.
    low, high = jnp.minimum(head, head - 2 * stride), jnp.maximum(head, head - 2 * stride)
    food = jnp.floor(food_u * (num_cells - INITIAL_LENGTH)).astype(jnp.int32)
    food = jnp.minimum(food, num_cells - INITIAL_LENGTH - 1)
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


def nth_free_cell(body: jax.Array, n: jax.Array, height: int, width: int) -> jax.Array:
    """Flat index of the ``n``-th free cell in row-major order (``height * width`` if none).

    Two levels (row counts, then one row) instead of a cumulative sum over the whole board:
    XLA's CPU cumsum over 100+ cells costs more than the rest of the step.
    """
    free = body == 0
    row_free = jnp.sum(free, axis=1, dtype=jnp.int32)
    rows_cum = jnp.cumsum(row_free)
    row = jnp.sum(rows_cum <= n, dtype=jnp.int32)  # == height when n >= free cells
    safe_row = jnp.minimum(row, height - 1)
    before = rows_cum[safe_row] - row_free[safe_row]
    in_row = jnp.cumsum(free[safe_row].astype(jnp.int32))
    col = jnp.sum(in_row <= n - before, dtype=jnp.int32)
    return jnp.where(row < height, row * width + col, height * width)


def _serpentine(variant: jax.Array, height: int, width: int) -> tuple[jax.Array, Callable]:
    """The boustrophedon path under transform ``variant`` (bit 0: transpose, bit 1: flip path
    rows, bit 2: flip cells within a path row): ``(index, cell)``, each board cell's position
    along the path and the inverse, position -> ``(row, col)``."""
    transpose, flip_a, flip_b = (variant & 1) == 1, (variant & 2) == 2, (variant & 4) == 4
    span_a = jnp.where(transpose, width, height)  # path rows, and cells per path row
    span_b = jnp.where(transpose, height, width)
    rows = jnp.arange(height, dtype=jnp.int32)[:, None]
    cols = jnp.arange(width, dtype=jnp.int32)[None, :]
    a = jnp.where(transpose, cols, rows)
    b = jnp.where(transpose, rows, cols)
    a = jnp.where(flip_a, span_a - 1 - a, a)
    b = jnp.where(flip_b, span_b - 1 - b, b)
    index = a * span_b + jnp.where(a % 2 == 0, b, span_b - 1 - b)

    def cell(p: jax.Array) -> tuple[jax.Array, jax.Array]:
        pa, pb = p // span_b, p % span_b
        pb = jnp.where(pa % 2 == 0, pb, span_b - 1 - pb)
        pa = jnp.where(flip_a, span_a - 1 - pa, pa)
        pb = jnp.where(flip_b, span_b - 1 - pb, pb)
        return jnp.where(transpose, pb, pa), jnp.where(transpose, pa, pb)

    return index, cell


def long_start_state(
    u: jax.Array,
    min_fill: float,
    max_fill: float,
    height: int,
    width: int,
    body_dtype: Any,
) -> tuple[EnvState, jax.Array]:
    """A long snake along a serpentine path, for the curriculum start: ``(state, length)``.

    ``u``: four uniforms in [0, 1): length, offset, symmetry, food.  The path is the
    boustrophedon of the board (row 0 left to right, row 1 right to left, ...), under one of
    the 8 transforms "transpose or not, flip rows or not, flip columns or not" (on a
    non-square board the transposed path runs along the columns); the snake is ``length``
    consecutive path cells, ``length = round(fill * area)`` with ``fill`` uniform in
    ``[min_fill, max_fill]`` (clipped to ``[3, area - 1]``), its tail at a uniform offset
    that leaves at least the next path cell free ahead of the head, heading along the path.
    Food is uniform on the free cells.  Closed-form cell indices: a few elementwise ops on
    the board, no loop, so auto-reset can afford it on every step.
    """
    num_cells = height * width
    fill = min_fill + u[0] * (max_fill - min_fill)
    length = jnp.clip(jnp.round(fill * num_cells).astype(jnp.int32), INITIAL_LENGTH, num_cells - 1)
    room = num_cells - length  # >= 1: offsets 0 .. room - 1 keep a free cell ahead
    offset = jnp.minimum(jnp.floor(u[1] * room).astype(jnp.int32), room - 1)
    variant = jnp.minimum(jnp.floor(u[2] * 8).astype(jnp.int32), 7)
    index, cell = _serpentine(variant, height, width)
    on_snake = (index >= offset) & (index < offset + length)
    body = jnp.where(on_snake, index - offset + 1, 0).astype(body_dtype)

    head_row, head_col = cell(offset + length - 1)
    neck_row, neck_col = cell(offset + length - 2)
    d_row, d_col = head_row - neck_row, head_col - neck_col
    direction = jnp.where(d_row < 0, 0, jnp.where(d_col > 0, 1, jnp.where(d_row > 0, 2, 3)))
    food_n = jnp.floor(u[3] * (num_cells - length)).astype(jnp.int32)
    state = EnvState(
        body=body,
        head_row=head_row.astype(jnp.int32),
        head_col=head_col.astype(jnp.int32),
        direction=direction.astype(jnp.int32),
        food=nth_free_cell(body, food_n, height, width),
        length=length,
        steps_without_food=jnp.int32(0),
        time=jnp.int32(0),
        dead=jnp.bool_(False),
    )
    return state, length
