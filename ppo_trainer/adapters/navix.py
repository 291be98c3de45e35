"""Navix (``navix/ID``, e.g. ``navix/Navix-Empty-5x5-v0``) as a gymnax 1.0 env.

- **Steps**: Navix returns a ``Timestep`` whose ``step_type`` is 0 (transition), 1 (truncation:
  its ``max_steps``) or 2 (termination); those are our ``truncated`` and ``terminated``. Navix's
  own auto-reset is bypassed (gymnax resets, so ``info["final_observation"]`` is the last
  observation of the episode). ``max_steps_in_episode`` defaults to Navix's ``max_steps``
  (``--env-kwargs max_steps=N`` sets Navix's own).
- **Observations**: Navix's observation function's output, cast to float32, shape kept (the
  default symbolic ``(H, W, 3)`` grid is an image for the CNN). ``--env-kwargs`` go to
  ``navix.make``.
- **Metrics**: the numeric scalars of ``Timestep.info`` except ``return`` (the episode's running
  return, which the trainer computes itself).
- **Frames**: ``render_frame`` draws the full grid with Navix's jittable ``rgb`` observation.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments import spaces

from ppo_trainer.adapters.base import AdaptedEnv, AdaptedParams, AdaptedState, scalar_metrics

REQUIRES = ("navix",)
INSTALL = 'pip install "snake-ppo-jax[navix]"'
IDS = ("Navix-Empty-5x5-v0", "Navix-DoorKey-5x5-v0")
SKIPPED_INFO = ("return",)


class NavixEnv(AdaptedEnv):
    suite_name = "navix"

    def __init__(self, env_id: str, env: Any) -> None:
        super().__init__(env_id)
        self.env = env
        self._num_actions = int(env.action_space.maximum) + 1
        self._max_steps = int(env.max_steps)

    @property
    def default_params(self) -> AdaptedParams:
        return AdaptedParams(max_steps_in_episode=self._max_steps)

    def suite_reset(self, key: jax.Array) -> Any:
        return self.env.reset(key)

    def _metrics(self, timestep: Any) -> dict[str, jax.Array]:
        info = {k: v for k, v in dict(timestep.info).items() if k not in SKIPPED_INFO}
        return scalar_metrics(info)

    def reset_env(self, key: jax.Array, params: AdaptedParams) -> tuple[jax.Array, AdaptedState]:
        timestep = self.env.reset(key)
        metrics = {k: jnp.zeros_like(v) for k, v in self._metrics(timestep).items()}
        state = AdaptedState(self.pack(timestep), jnp.int32(0), jnp.bool_(False),
                             jnp.zeros((0,), jnp.bool_), metrics)
        return jnp.asarray(timestep.observation, jnp.float32), state

    def step_env(self, key: jax.Array, state: AdaptedState, action: Any,
                 params: AdaptedParams) -> tuple:
        previous = self.unpack(state.inner)
        # step_type 0: Navix steps instead of resetting (gymnax does the resets)
        previous = previous.replace(step_type=jnp.zeros_like(previous.step_type))
        timestep = self.env.step(previous, jnp.asarray(action, jnp.int32))
        metrics = self._metrics(timestep)
        state = AdaptedState(self.pack(timestep), state.time + 1, timestep.step_type == 1,
                             state.action_mask, metrics)
        obs = jnp.asarray(timestep.observation, jnp.float32)
        reward = jnp.asarray(timestep.reward, jnp.float32)
        return obs, state, reward, timestep.step_type == 2, dict(metrics)

    def render_frame(self, state: AdaptedState, params: AdaptedParams) -> jax.Array:
        from navix import observations

        return jnp.asarray(observations.rgb(self.unpack(state.inner).state), jnp.uint8)

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(self._num_actions)

    def observation_space(self, params: Any = None) -> spaces.Box:
        shape = tuple(self.env.observation_space.shape)
        return spaces.Box(-jnp.inf, jnp.inf, shape, jnp.float32)

    @property
    def num_actions(self) -> int:
        return self._num_actions


def make(env_id: str, **kwargs: Any) -> tuple[NavixEnv, AdaptedParams]:
    """``navix.make(env_id, **kwargs)`` adapted."""
    import navix

    known = list(navix.registry())
    if env_id not in known:
        raise ValueError(f"unknown Navix env {env_id!r}; Navix has: {', '.join(sorted(known))}")
    env = NavixEnv(env_id, navix.make(env_id, **kwargs))
    return env, env.default_params
