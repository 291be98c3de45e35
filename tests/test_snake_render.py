"""Rendering: jittable frames, GIF writing, one-call episode recording."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from snake_gymnax import Snake
from snake_gymnax.render import FOOD, HEAD, record_episode, render_frame, write_gif


def test_render_frame_colours_and_jit_vmap():
    env = Snake(7, 5)
    params = env.default_params
    keys = jax.random.split(jax.random.key(0), 3)
    _, states = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    frames = jax.jit(jax.vmap(lambda s: render_frame(env, s, 8)))(states)
    assert frames.shape == (3, 5 * 8, 7 * 8, 3) and frames.dtype == jnp.uint8

    state = jax.tree.map(lambda x: x[0], states)
    frame = np.asarray(frames[0])

    def centre(flat):
        r, c = divmod(int(flat), env.width)
        return tuple(frame[r * 8 + 4, c * 8 + 4])

    r, c = int(state.head_row), int(state.head_col)
    assert centre(r * env.width + c) == HEAD
    assert centre(state.food) == FOOD
    neck, tail = centre(r * env.width + c - 1), centre(r * env.width + c - 2)
    assert len({neck, tail, HEAD, FOOD}) == 4  # body gradient by age, distinct from head/food


def test_write_gif(tmp_path):
    frames = np.zeros((4, 16, 24, 3), np.uint8)
    for t in range(4):
        frames[t, :, : 6 * (t + 1)] = (255, 0, 0)
    path = write_gif(frames, tmp_path / "sub" / "anim.gif", fps=5)
    with Image.open(path) as image:
        assert image.n_frames == 4 and image.size == (24, 16)
    with pytest.raises(ValueError):
        write_gif(np.zeros((0, 4, 4, 3), np.uint8), tmp_path / "empty.gif")


def test_record_episode_stops_at_first_done(tmp_path):
    env = Snake(6, 6)
    params = env.default_params

    def policy(key, obs):
        return jax.random.randint(key, (), 0, 4)

    stats = record_episode(env, params, policy, jax.random.key(3), tmp_path / "ep.gif", 200)
    assert stats["steps"] <= 200 and stats["frames"] == stats["steps"] + 1
    assert stats["terminated"] or stats["truncated"]
    assert stats["length"] == 3 + stats["apples"]
    assert {"return", "apples", "length", "steps"} <= set(stats)
    with Image.open(tmp_path / "ep.gif") as image:
        # Pillow merges identical consecutive frames (the death frame repeats the last board).
        assert 1 <= image.n_frames <= stats["frames"]
        assert image.size == (6 * 16, 6 * 16)


def test_record_episode_time_limit_and_max_steps(tmp_path):
    env = Snake(12, 12)  # heading right from the centre: six free cells to the wall

    def right(key, obs):
        return jnp.int32(1)

    params = env.default_params.replace(max_steps_in_episode=3)
    stats = record_episode(env, params, right, jax.random.key(0), tmp_path / "a.gif", 50)
    assert stats["steps"] == 3 and stats["truncated"] and not stats["terminated"]
    # No done within max_steps: the recording just stops there.
    stats = record_episode(env, env.default_params, right, jax.random.key(0), tmp_path / "b.gif", 4)
    assert stats["steps"] == 4 and not stats["truncated"] and not stats["terminated"]
