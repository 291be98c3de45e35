"""Brax (``brax/ID``, e.g. ``brax/inverted_pendulum``, ``brax/ant``, ``brax/halfcheetah``) as a
gymnax 1.0 env.

- **Steps**: the env of ``brax.envs.get_environment(id, backend=...)`` inside Brax's own
  ``EpisodeWrapper`` (``--env-kwargs episode_length=N``, default 1000 as in
  ``brax.envs.create``). Brax's ``done`` ends the episode; the wrapper's ``info["truncation"]``
  (its time limit) is our ``truncated``, ``done`` without it our ``terminated``.
  ``max_steps_in_episode`` defaults to ``episode_length``.
- **Resets**: an ended episode restarts from the env's first reset state, as in Brax's
  ``AutoResetWrapper`` (``reset_on_done = "cached"``, see
  :class:`~ppo_trainer.adapters.base.AdaptedEnv`).
- **Backend**: :data:`DEFAULT_BACKEND` unless ``--env-kwargs backend=...`` (``generalized``,
  ``spring``, ``positional``, ``mjx``).
- **Observations**: Brax's ``obs`` as float32. **Actions**: ``Box(-1, 1, (env.action_size,))``.
- **Metrics**: the numeric scalars of Brax's per-step ``metrics`` (ant's ``x_velocity``, ...).
- **Frames**: none: ``brax.io.image`` draws with MuJoCo's OpenGL renderer on the host, which
  needs a GL context and cannot run under jit.
"""

from __future__ import annotations

from typing import Any

from ppo_trainer.adapters.base import AdaptedParams
from ppo_trainer.adapters.physics import PhysicsEnv

REQUIRES = ("brax",)
INSTALL = 'pip install "snake-ppo-jax[brax]"'
IDS = ("inverted_pendulum", "ant", "halfcheetah")

# mjx: MuJoCo's own solver. On a CPU it stepped faster than generalized (Brax's other exact
# pipeline) and positional, as fast as spring on ant; spring (faster on inverted_pendulum)
# approximates joints and contacts with springs. It compiles more slowly than the others.
DEFAULT_BACKEND = "mjx"
DEFAULT_EPISODE_LENGTH = 1000


class BraxEnv(PhysicsEnv):
    suite_name = "brax"


def make(env_id: str, episode_length: int = DEFAULT_EPISODE_LENGTH,
         backend: str = DEFAULT_BACKEND, **kwargs: Any) -> tuple[BraxEnv, AdaptedParams]:
    """``brax.envs.get_environment(env_id, backend=backend, **kwargs)`` in Brax's
    ``EpisodeWrapper(episode_length)``, adapted."""
    from brax import envs
    from brax.envs.wrappers.training import EpisodeWrapper

    known = sorted(envs._envs)  # brax has no public listing of its registry
    if env_id not in known:
        raise ValueError(f"unknown Brax env {env_id!r}; Brax has: {', '.join(known)}")
    if int(episode_length) < 1:
        raise ValueError(f"episode_length={episode_length}: it must be at least 1")
    inner = envs.get_environment(env_id, backend=str(backend), **kwargs)
    env = BraxEnv(env_id, EpisodeWrapper(inner, int(episode_length), 1), int(episode_length))
    return env, env.default_params
