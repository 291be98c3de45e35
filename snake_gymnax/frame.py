"""Pure-``jnp`` drawing of one Snake board as an RGB image.

This module knows nothing of the environment class: it draws from the raw board (the body's
remaining-lifetime counters, the length and the food cell), so ``Snake.render_frame`` is this
module's ``render_frame`` while ``render.py`` (GIF files, episode recording) sits above both.
The import arrows point one way: ``render -> env -> frame``.

Colours: dark background with faint grid lines, bright yellow head, body fading from green
(neck) to dark green (tail) by age, red food.
"""

from __future__ import annotations

from typing import Any, Protocol

import jax
import jax.numpy as jnp

BACKGROUND = (24, 24, 32)
GRID = (40, 40, 52)
HEAD = (255, 220, 60)
BODY_NEW = (80, 220, 100)  # the neck
BODY_OLD = (20, 90, 40)  # the tail
FOOD = (230, 50, 50)


class Board(Protocol):
    """What a frame is drawn from: the fields of a Snake ``EnvState`` it reads."""

    body: jax.Array  # (height, width) remaining-lifetime counters: head = length, tail = 1
    length: jax.Array
    food: jax.Array  # flat index; height * width when there is none


def render_frame(state: Board, params: Any = None, cell_px: int = 16) -> jax.Array:
    """RGB ``uint8`` ``(height * cell_px, width * cell_px, 3)`` image; jittable, vmappable.

    The generic frame hook for GIFs (``Snake.render_frame`` is this function, so
    ``jax.vmap(env.render_frame)(states)`` renders a stacked rollout in one call).  Always
    shows the whole board, whatever the observation; ``params`` is unused, ``cell_px`` static.
    """
    height, width = state.body.shape
    body = state.body.astype(jnp.float32)
    length = jnp.asarray(state.length).astype(jnp.float32)
    food = state.food
    occupied = body > 0
    head = body >= length
    # 1 at the neck, 0 at the tail; a length-1 tail cannot happen (length >= 3).
    age = jnp.clip((body - 1.0) / jnp.maximum(length - 2.0, 1.0), 0.0, 1.0)[..., None]
    body_rgb = age * jnp.asarray(BODY_NEW, jnp.float32) + (1.0 - age) * jnp.asarray(
        BODY_OLD, jnp.float32
    )
    cell_index = jnp.arange(height * width, dtype=jnp.int32).reshape(height, width)
    food_mask = (cell_index == food)[..., None]
    cells = jnp.where(occupied[..., None], body_rgb, jnp.asarray(BACKGROUND, jnp.float32))
    cells = jnp.where(head[..., None], jnp.asarray(HEAD, jnp.float32), cells)
    cells = jnp.where(food_mask, jnp.asarray(FOOD, jnp.float32), cells)

    image = jnp.repeat(jnp.repeat(cells, cell_px, axis=0), cell_px, axis=1)
    if cell_px >= 4:  # one-pixel grid lines on the top/left edge of every free cell
        edge = (jnp.arange(height * cell_px) % cell_px == 0)[:, None] | (
            jnp.arange(width * cell_px) % cell_px == 0
        )[None, :]
        free = jnp.repeat(jnp.repeat(~occupied & ~food_mask[..., 0], cell_px, 0), cell_px, 1)
        image = jnp.where((edge & free)[..., None], jnp.asarray(GRID, jnp.float32), image)
    return jnp.round(image).astype(jnp.uint8)
