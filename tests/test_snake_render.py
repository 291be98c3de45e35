"""Rendering: jittable frames, GIF writing, one-call episode recording."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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


PACKAGE = Path(__file__).resolve().parents[1] / "snake_gymnax"


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at top level or inside functions (relative ones resolved)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "snake_gymnax." * (node.level > 0) + (node.module or "")
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_imports_point_one_way_render_env_frame():
    """``render -> env -> frame``: no module imports one above it, not even inside a function."""
    env_imports = imported_modules(PACKAGE / "env.py")
    frame_imports = imported_modules(PACKAGE / "frame.py")
    assert not {m for m in env_imports if m.startswith("snake_gymnax.render")}, env_imports
    assert not {m for m in frame_imports if m.startswith("snake_gymnax")}, frame_imports
    assert "snake_gymnax.env" in imported_modules(PACKAGE / "render.py")


def test_env_render_never_loads_the_render_module():
    code = (
        "import sys, jax\n"
        "from snake_gymnax import Snake\n"
        "env = Snake(5, 5)\n"
        "_, state = env.reset(jax.random.key(0), env.default_params)\n"
        "frame = env.render(state, env.default_params)\n"
        "print(type(frame).__module__, frame.shape, 'snake_gymnax.render' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["numpy", "(80,", "80,", "3)", "False"]


def test_render_frame_method_vmaps_over_stacked_states():
    """``env.render_frame`` is the generic GIF hook: jittable, vmappable, uint8 RGB."""
    env = Snake(6, 4, actions="relative", observation="egocentric")
    params = env.default_params.replace(random_start=True)
    keys = jax.random.split(jax.random.key(1), 5)
    _, states = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    frames = jax.jit(jax.vmap(env.render_frame))(states)
    assert frames.shape == (5, 4 * 16, 6 * 16, 3) and frames.dtype == jnp.uint8
    with_params = jax.vmap(env.render_frame, in_axes=(0, None))(states, params)
    np.testing.assert_array_equal(frames, with_params)
    # The module-level helper is the same drawing.
    np.testing.assert_array_equal(
        frames[2], render_frame(env, jax.tree.map(lambda x: x[2], states))
    )
    # Each frame shows its own head (random starts differ) in the head colour.
    for i in range(5):
        r, c = int(states.head_row[i]), int(states.head_col[i])
        assert tuple(np.asarray(frames[i, r * 16 + 8, c * 16 + 8])) == HEAD
    assert (
        len({(int(r), int(c)) for r, c in zip(states.head_row, states.head_col, strict=True)}) > 1
    )
