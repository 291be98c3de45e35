"""Which cells the head can still reach: a bounded, jittable flood fill over the board.

The rule: a cell is passable when it is free or is the tail (counter 1), the cell the tail
leaves on the next step (as in ``rules.head_move`` for a move that does not eat).  The
reachable set is every passable cell joined to the head by a 4-neighbour path of passable
cells; the head's own cell is not in it.  It is a snapshot of the board: body cells that
free up later (counters above 1) stay walls.

Hand-written because no JAX library offers a batched connected-component fill.  Each board
row is one ``uint32`` bit mask (the board's shorter side along the bits, so boards up to 32
cells on that side), and the fill is a ``lax.while_loop`` that stops at the fixpoint, bounded
by ``height * width`` rounds.  A round spreads the set along the rows to the end of each run
of passable cells (an "occluded fill": ``log2(width)`` shift-and-mask doublings each way, as
in chess bitboards), then one row up and down.  So the rounds needed are the vertical steps of
the longest shortest path, not its length.  Under ``vmap`` the loop runs until the slowest
board of the batch has converged.  Boards wider than 32 on both sides use
``reachable_dilate`` (bool planes, one 4-neighbour step per round), also the tests' reference.
"""

from __future__ import annotations

from collections import deque

import jax
import jax.numpy as jnp
import numpy as np

WORD_BITS = 32


def passable(body: jax.Array) -> jax.Array:
    """Bool board: free cells and the tail (the cell the tail leaves on the next step)."""
    return body <= 1


def head_seed(height: int, width: int, head_row: jax.Array, head_col: jax.Array) -> jax.Array:
    """Bool board with only the head's cell set."""
    rows = jnp.arange(height, dtype=jnp.int32)[:, None] == head_row
    cols = jnp.arange(width, dtype=jnp.int32)[None, :] == head_col
    return rows & cols


def _until_fixed(step, seed: jax.Array, limit: int) -> jax.Array:
    """``step`` applied to ``seed`` until nothing changes, at most ``limit`` times."""

    def cond(carry):
        _, changed, i = carry
        return changed & (i < limit)

    def body(carry):
        reach, _, i = carry
        new = step(reach)
        return new, jnp.any(new != reach), i + 1

    reach, _, _ = jax.lax.while_loop(cond, body, (seed, jnp.bool_(True), jnp.int32(0)))
    return reach


def _row_shift(x: jax.Array, k: int) -> jax.Array:
    """Rows moved by ``k`` (positive: down), zero-filled."""
    zeros = jnp.zeros((abs(k),) + x.shape[1:], x.dtype)
    if k > 0:
        return jnp.concatenate([zeros, x[:-k]])
    return jnp.concatenate([x[-k:], zeros])


def _reachable_bits(free: jax.Array, seed: jax.Array) -> jax.Array:
    """The fill on bit-packed rows: ``free`` and ``seed`` bool ``(rows, cols)``, cols <= 32."""
    rows, cols = free.shape
    weights = jnp.uint32(1) << jnp.arange(cols, dtype=jnp.uint32)
    zero = jnp.uint32(0)
    free_bits = jnp.sum(jnp.where(free, weights, zero), axis=1, dtype=jnp.uint32)
    seed_bits = jnp.sum(jnp.where(seed, weights, zero), axis=1, dtype=jnp.uint32)
    through = free_bits | seed_bits

    def step(reach):
        for shift in (lambda x, k: x << k, lambda x, k: x >> k):  # along the row, both ways
            grow, open_, k = reach, through, 1
            while k < cols:
                grow = grow | (shift(grow, k) & open_)
                open_ = open_ & shift(open_, k)
                k *= 2
            reach = reach | grow
        return reach | ((_row_shift(reach, 1) | _row_shift(reach, -1)) & free_bits)

    reach = _until_fixed(step, seed_bits, rows * cols) & free_bits
    return ((reach[:, None] >> jnp.arange(cols, dtype=jnp.uint32)) & 1).astype(jnp.bool_)


def _fill(free: jax.Array, seed: jax.Array) -> jax.Array:
    """The cells of ``free`` joined to ``seed`` (bool boards), by the bit-packed fill when one
    side fits a word (the shorter side along the bits: fewer rounds), else by dilation."""
    height, width = free.shape
    if width <= height and width <= WORD_BITS:
        return _reachable_bits(free, seed)
    if height <= WORD_BITS:
        return _reachable_bits(free.T, seed.T).T
    return _dilate_fill(free, seed)


def reachable(body: jax.Array, head_row: jax.Array, head_col: jax.Array) -> jax.Array:
    """Bool ``(height, width)``: the passable cells the head can reach (head excluded)."""
    height, width = body.shape
    return _fill(passable(body), head_seed(height, width, head_row, head_col))


def tail_region(body: jax.Array) -> jax.Array:
    """Bool ``(height, width)``: the tail's cell and the free cells joined to it by free
    cells.  A move into one of these cells leaves the snake a path to its tail, which it can
    then follow forever (the "follow your tail" rule): the ``tail_reach`` channel.  The same
    fill as ``reachable``, seeded at the tail instead of the head."""
    return _fill(passable(body), body == 1)


def _dilate_fill(free: jax.Array, seed: jax.Array) -> jax.Array:
    """The cells of ``free`` joined to ``seed`` by plain dilation (any board size)."""
    return _until_fixed(_dilate_step(free), seed, free.size) & free


def _dilate_step(free: jax.Array):
    """One round of plain 4-neighbour dilation inside ``free`` (bool planes)."""

    def step(reach):
        near = _row_shift(reach, 1) | _row_shift(reach, -1)
        near = near | _row_shift(reach.T, 1).T | _row_shift(reach.T, -1).T
        return reach | (near & free)

    return step


def reachable_dilate(body: jax.Array, head_row: jax.Array, head_col: jax.Array) -> jax.Array:
    """``reachable`` by plain 4-neighbour dilation of bool planes, one cell per round."""
    height, width = body.shape
    return _dilate_fill(passable(body), head_seed(height, width, head_row, head_col))


def reachable_host(body: np.ndarray, head_row: int, head_col: int) -> np.ndarray:
    """``reachable`` by breadth-first search in NumPy, for constant boards built once (the
    constant start's observation) and as an independent check of the JAX fills."""
    height, width = body.shape
    free = np.asarray(body) <= 1
    seen = np.zeros((height, width), bool)
    queue = deque([(head_row, head_col)])
    while queue:
        r, c = queue.popleft()
        for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= nr < height and 0 <= nc < width and free[nr, nc] and not seen[nr, nc]:
                seen[nr, nc] = True
                queue.append((nr, nc))
    return seen


def tail_region_host(body: np.ndarray) -> np.ndarray:
    """``tail_region`` by breadth-first search in NumPy (constant boards, tests)."""
    (row,), (col,) = np.nonzero(np.asarray(body) == 1)
    region = reachable_host(body, int(row), int(col))
    region[row, col] = True
    return region
