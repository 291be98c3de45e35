"""Pictures of Snake on the host: GIF files and a one-call episode recorder.

The jittable part lives below this module: ``Snake.render_frame`` (drawing in
``snake_gymnax.frame``) gives one RGB frame per state, so a whole rollout renders with one
``vmap``.  ``write_gif`` and ``record_episode`` are the thin host-side part the trainer uses to
show an agent.  Imports point one way: ``render -> env -> frame``, never back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from snake_gymnax.env import EnvParams, EnvState, Snake
from snake_gymnax.frame import BACKGROUND, BODY_NEW, BODY_OLD, FOOD, GRID, HEAD

__all__ = [
    "BACKGROUND",
    "BODY_NEW",
    "BODY_OLD",
    "FOOD",
    "GRID",
    "HEAD",
    "record_episode",
    "render_frame",
    "write_gif",
]


def render_frame(env: Snake, state: EnvState, cell_px: int = 16) -> jax.Array:
    """RGB ``uint8`` image ``(height * cell_px, width * cell_px, 3)`` of one state.

    Same as ``env.render_frame(state, cell_px=cell_px)``; jittable and vmappable (``env`` and
    ``cell_px`` are static).
    """
    return env.render_frame(state, cell_px=cell_px)


def write_gif(frames: Any, path: str | Path, fps: int = 10) -> Path:
    """Write ``(T, h, w, 3)`` uint8 frames as a looping GIF (Pillow); returns the path."""
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
