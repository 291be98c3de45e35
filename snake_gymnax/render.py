"""Pictures of Snake: RGB frames (jittable), GIF files, and a one-call episode recorder.

``render_frame`` is pure ``jnp`` so a whole rollout can be rendered with one ``vmap``;
``write_gif`` and ``record_episode`` are the thin host-side part the trainer uses to show an
agent.  Colours: dark background with faint grid lines, bright yellow head, body fading from
green (neck) to dark green (tail) by age, red food.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from snake_gymnax.env import EnvParams, EnvState, Snake

BACKGROUND = (24, 24, 32)
GRID = (40, 40, 52)
HEAD = (255, 220, 60)
BODY_NEW = (80, 220, 100)  # the neck
BODY_OLD = (20, 90, 40)  # the tail
FOOD = (230, 50, 50)


def render_frame(env: Snake, state: EnvState, cell_px: int = 16) -> jax.Array:
    """RGB ``uint8`` image ``(height * cell_px, width * cell_px, 3)`` of one state.

    Jittable and vmappable (``env`` and ``cell_px`` are static).
    """
    body = state.body.astype(jnp.float32)
    length = state.length.astype(jnp.float32)
    occupied = body > 0
    head = body >= length
    # 1 at the neck, 0 at the tail; a length-1 tail cannot happen (length >= 3).
    age = jnp.clip((body - 1.0) / jnp.maximum(length - 2.0, 1.0), 0.0, 1.0)[..., None]
    body_rgb = age * jnp.asarray(BODY_NEW, jnp.float32) + (1.0 - age) * jnp.asarray(
        BODY_OLD, jnp.float32
    )
    food = (jnp.arange(env.num_cells).reshape(env.height, env.width) == state.food)[..., None]
    cells = jnp.where(occupied[..., None], body_rgb, jnp.asarray(BACKGROUND, jnp.float32))
    cells = jnp.where(head[..., None], jnp.asarray(HEAD, jnp.float32), cells)
    cells = jnp.where(food, jnp.asarray(FOOD, jnp.float32), cells)

    image = jnp.repeat(jnp.repeat(cells, cell_px, axis=0), cell_px, axis=1)
    if cell_px >= 4:  # one-pixel grid lines on the top/left edge of every free cell
        edge = (jnp.arange(env.height * cell_px) % cell_px == 0)[:, None] | (
            jnp.arange(env.width * cell_px) % cell_px == 0
        )[None, :]
        free = jnp.repeat(jnp.repeat(~occupied & ~food[..., 0], cell_px, 0), cell_px, 1)
        image = jnp.where((edge & free)[..., None], jnp.asarray(GRID, jnp.float32), image)
    return jnp.round(image).astype(jnp.uint8)


def write_gif(frames: Any, path: str | Path, fps: int = 10) -> Path:
    """Write ``(T, h, w, 3)`` uint8 frames as a looping GIF (Pillow); returns the path."""
    from PIL import Image

    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"expected frames of shape (T, h, w, 3) with T >= 1, got {frames.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(
        path,
        save_all=True,
        append_images=images[1:],
        duration=max(1, round(1000 / fps)),
        loop=0,
        optimize=False,
    )
    return path


def record_episode(
    env: Snake,
    env_params: EnvParams,
    policy: Callable[[jax.Array, jax.Array], jax.Array],
    key: jax.Array,
    path: str | Path,
    max_steps: int = 1000,
    cell_px: int = 16,
    fps: int = 10,
) -> dict[str, Any]:
    """Play one episode with ``policy(key, obs) -> action``, write it as a GIF, return stats.

    The rollout is one jitted ``lax.scan`` of ``max_steps`` un-reset steps (``step_env`` plus the
    truncation check), cut on the host at the first done, so the last frame is the terminal
    board rather than gymnax's auto-reset.  Stats: ``return``, ``apples``, ``length``, ``steps``,
    ``terminated``, ``truncated``, ``win``, ``frames``, ``path``.
    """
    states, rewards, terminated, truncated, infos = _rollout(env, policy, max_steps)(
        key, env_params
    )
    done = np.asarray(terminated | truncated)
    steps = int(np.argmax(done)) + 1 if done.any() else max_steps
    # states[0] is the reset state, states[t] the state after step t.
    kept = jax.tree.map(lambda x: x[: steps + 1], states)
    frames = jax.jit(jax.vmap(lambda s: render_frame(env, s, cell_px)))(kept)
    write_gif(frames, path, fps=fps)
    last = steps - 1
    return {
        "return": float(np.sum(np.asarray(rewards)[:steps])),
        "apples": int(infos["apples"][last]),
        "length": int(infos["length"][last]),
        "steps": steps,
        "terminated": bool(terminated[last]),
        "truncated": bool(truncated[last]),
        "win": bool(infos["win"][last]),
        "frames": steps + 1,
        "path": str(path),
    }


def _rollout(env: Snake, policy: Callable, max_steps: int) -> Callable:
    def run(key: jax.Array, params: EnvParams):
        reset_key, key = jax.random.split(key)
        obs, state = env.reset_env(reset_key, params)

        def body(carry, step_key):
            obs, state = carry
            policy_key, env_key = jax.random.split(step_key)
            action = policy(policy_key, obs)
            obs, state, reward, terminated, info = env.step_env(env_key, state, action, params)
            truncated = env.is_truncated(state, params)
            return (obs, state), (state, reward, terminated, truncated, info)

        _, (states, rewards, terminated, truncated, infos) = jax.lax.scan(
            body, (obs, state), jax.random.split(key, max_steps)
        )
        states = jax.tree.map(lambda s0, s: jnp.concatenate([s0[None], s]), state, states)
        return states, rewards, terminated, truncated, infos

    return jax.jit(run)
