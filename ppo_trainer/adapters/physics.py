"""What the Brax and MuJoCo Playground adapters share: both suites' envs return a ``State`` with
``obs, reward, done, metrics, info`` and both take their time limit from Brax's
``EpisodeWrapper`` (``info["truncation"]``), so one class adapts either."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments import spaces

from ppo_trainer.adapters.base import (
    AdaptedEnv,
    AdaptedParams,
    AdaptedState,
    flatten_fields,
    scalar_metrics,
)


def observe(obs: Any, keys: tuple[str, ...] | None = None) -> jax.Array:
    """A suite's observation as one float32 array: an array keeps its shape; a dict of fields
    (``keys`` of them, default all) is reduced with ``flatten_fields``' rule."""
    if isinstance(obs, dict):
        return flatten_fields({k: obs[k] for k in (keys or tuple(obs))})
    return jnp.asarray(obs, jnp.float32)


class PhysicsEnv(AdaptedEnv):
    """A Brax-style env inside Brax's ``EpisodeWrapper``, with the gymnax 1.0 contract.

    ``done`` ends an episode; the wrapper's ``info["truncation"]`` makes it a truncation, and
    ``done`` without it a termination. Ended episodes restart from the cached first reset
    (``reset_on_done = "cached"``): a reset is a full physics init, too dear for every step.
    """

    reset_on_done = "cached"

    def __init__(self, env_id: str, wrapped: Any, episode_length: int, action_repeat: int = 1,
                 obs_keys: tuple[str, ...] | None = None) -> None:
        super().__init__(env_id)
        self.env = wrapped  # an EpisodeWrapper
        self.episode_length = int(episode_length)
        self.action_repeat = int(action_repeat)
        self.obs_keys = obs_keys
        self._action_size = int(wrapped.action_size)

    @property
    def default_params(self) -> AdaptedParams:
        return AdaptedParams(
            max_steps_in_episode=math.ceil(self.episode_length / self.action_repeat))

    def suite_reset(self, key: jax.Array) -> Any:
        return self.env.reset(key)

    def reset_env(self, key: jax.Array, params: AdaptedParams) -> tuple[jax.Array, AdaptedState]:
        inner = self.env.reset(key)
        metrics = {k: jnp.zeros_like(v) for k, v in scalar_metrics(inner.metrics).items()}
        state = AdaptedState(self.pack(inner), jnp.int32(0), jnp.bool_(False),
                             jnp.zeros((0,), jnp.bool_), metrics)
        return observe(inner.obs, self.obs_keys), state

    def step_env(self, key: jax.Array, state: AdaptedState, action: Any,
                 params: AdaptedParams) -> tuple:
        inner = self.env.step(self.unpack(state.inner), jnp.asarray(action, jnp.float32))
        truncation = jnp.asarray(inner.info["truncation"]) > 0
        done = jnp.asarray(inner.done) > 0
        metrics = scalar_metrics(inner.metrics)
        # replace, not a new AdaptedState: the cached first reset (state.first) travels along
        state = state.replace(inner=self.pack(inner), time=state.time + 1, truncated=truncation,
                              metrics=metrics)
        reward = jnp.asarray(inner.reward, jnp.float32)
        return observe(inner.obs, self.obs_keys), state, reward, done & ~truncation, dict(metrics)

    def action_space(self, params: Any = None) -> spaces.Box:
        """Brax and Playground actions are in [-1, 1] (``env.action_size`` of them)."""
        return spaces.Box(-1.0, 1.0, (self._action_size,), jnp.float32)

    def observation_space(self, params: Any = None) -> spaces.Box:
        shape = getattr(self, "_obs_shape", None)
        if shape is None:  # traced once: tracing a physics reset takes seconds
            obs, _ = jax.eval_shape(self.reset_env, jax.random.PRNGKey(0), self.default_params)
            shape = self._obs_shape = tuple(obs.shape)
        return spaces.Box(-jnp.inf, jnp.inf, shape, jnp.float32)
