"""Pure-``jnp`` drawing of one Snake board as an RGB image.

This module knows nothing of the environment class: it draws from the raw board (the body's
remaining-lifetime counters, the length and the food cell), so ``env.py`` can use it for
``Snake.render_frame`` while ``render.py`` (GIF files, episode recording) sits above both.  The
import arrows point one way: ``render -> env -> frame``.

Colours: dark background with faint grid lines, bright yellow head, body fading from green
(neck) to dark green (tail) by age, red food.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

BACKGROUND = (24, 24, 32)
GRID = (40, 40, 52)
HEAD = (255, 220, 60)
BODY_NEW = (80, 220, 100)  # the neck
BODY_OLD = (20, 90, 40)  # the tail
FOOD = (230, 50, 50)


def draw_board(body: jax.Array, length: jax.Array, food: jax.Array, cell_px: int = 16) -> jax.Array:
    """RGB ``uint8`` image ``(height * cell_px, width * cell_px, 3)`` of one board.

    ``body`` is the ``(height, width)`` grid of remaining-lifetime counters (head = ``length``,
    tail = 1, free = 0) and ``food`` the flat food index (``height * width`` when there is none).
    Jittable and vmappable; ``cell_px`` is static.
    """
    height, width = body.shape
    body = body.astype(jnp.float32)
    length = jnp.asarray(length).astype(jnp.float32)
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
