"""Jumanji (``jumanji/ID``, e.g. ``jumanji/Snake-v1``, ``jumanji/Game2048-v1``) as a gymnax 1.0 env.

- **Steps**: Jumanji returns a ``TimeStep``; a ``LAST`` step with discount 0 is a termination, a
  ``LAST`` step with a non-zero discount (Jumanji's ``truncation``, its time limit) a truncation.
  Some Jumanji envs end their time limit with discount 0 (``Snake-v1``'s ``time_limit``): so
  ``max_steps_in_episode`` defaults to the env's ``time_limit`` and a step that reaches it is a
  truncation, never a termination, whatever the discount. Jumanji keeps its randomness in its
  state, so gymnax's step key is not used.
- **Observations**: the ``action_mask`` field is taken out and served by the ``valid_actions``
  hook (``--action-mask``); of the other fields, one keeps its shape (a grid stays an image for
  the CNN) and several are each cast to float32, flattened and concatenated in the order the
  suite declares them (``Snake-v1``: ``grid`` then ``step_count``, 721 values). The
  ``obs_keys`` env kwarg picks the fields (``--env-kwargs obs_keys=grid`` keeps Snake-v1's
  12x12x5 grid as an image; ``+`` joins several).
- **Actions**: a ``DiscreteArray`` spec is ``Discrete(n)``; other specs are refused.
- **Metrics**: the numeric scalars of ``TimeStep.extras`` (Game2048's ``highest_tile``) reach
  ``info``.
- **Frames**: none; Jumanji draws with matplotlib outside jit, and ``render_frame`` must be
  jittable.
- **Resets**: gymnax's own (a fresh ``reset`` every step, kept where the episode ended, so each
  episode starts from a new random state), with one difference in where the choice is made:
  ``step`` picks between the reset and the stepped env on Jumanji's own state and observation,
  and flattens the observation once. Flattening both and selecting the flat vectors (gymnax's
  ``step`` on ``step_env``'s and ``reset_env``'s outputs) ran Snake-v1 at 0.57x Jumanji's own
  ``AutoResetWrapper`` loop; selecting first brings it within the benchmark's noise
  (docs/speed.md, ``speed-adapters``). The outputs are the same as gymnax's ``step``.
"""

from __future__ import annotations

from functools import partial
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

REQUIRES = ("jumanji",)
INSTALL = 'pip install "snake-ppo-jax[jumanji]"'
IDS = ("Snake-v1", "Game2048-v1")


def _fields(observation: Any) -> dict[str, Any]:
    if hasattr(observation, "_asdict"):
        return dict(observation._asdict())
    if hasattr(observation, "__dataclass_fields__"):
        return {k: getattr(observation, k) for k in observation.__dataclass_fields__}
    if isinstance(observation, dict):
        return dict(observation)
    return {"observation": observation}


class JumanjiEnv(AdaptedEnv):
    suite_name = "jumanji"

    def __init__(self, env_id: str, env: Any, obs_keys: tuple[str, ...] | None = None) -> None:
        super().__init__(env_id)
        from jumanji.specs import DiscreteArray

        self.env = env
        spec = env.action_spec
        if not isinstance(spec, DiscreteArray):
            raise ValueError(f"jumanji/{env_id}'s action spec is a {type(spec).__name__}; only "
                             "DiscreteArray actions are supported")
        self._num_actions = int(spec.num_values)
        names = [k for k in _fields(env.observation_spec.generate_value()) if k != "action_mask"]
        if obs_keys is not None:
            unknown = [k for k in obs_keys if k not in names]
            if unknown:
                raise ValueError(f"obs_keys {'+'.join(unknown)} not among the observation's "
                                 f"fields {', '.join(names)}")
            names = list(obs_keys)
        self.obs_keys = tuple(names)
        self._time_limit = int(getattr(env, "time_limit", 0) or 0)

    @property
    def default_params(self) -> AdaptedParams:
        return AdaptedParams(max_steps_in_episode=self._time_limit)

    def _observe(self, observation: Any) -> tuple[jax.Array, jax.Array]:
        fields = _fields(observation)
        obs = flatten_fields({k: fields[k] for k in self.obs_keys})
        mask = fields.get("action_mask")
        mask = jnp.zeros((0,), jnp.bool_) if mask is None else jnp.asarray(mask, jnp.bool_)
        return obs, mask

    def suite_reset(self, key: jax.Array) -> Any:
        return self.env.reset(key)[0]

    def reset_env(self, key: jax.Array, params: AdaptedParams) -> tuple[jax.Array, AdaptedState]:
        inner, timestep = self.env.reset(key)
        obs, mask = self._observe(timestep.observation)
        metrics = scalar_metrics(timestep.extras)
        state = AdaptedState(self.pack(inner), jnp.int32(0), jnp.bool_(False), mask,
                             {k: jnp.zeros_like(v) for k, v in metrics.items()})
        return obs, state

    def _suite_step(self, state: AdaptedState, action: Any, params: AdaptedParams) -> tuple:
        """One Jumanji step: (its state, its observation, reward, terminated, suite truncation,
        truncated, metrics), before the observation is flattened."""
        inner, timestep = self.env.step(self.unpack(state.inner), jnp.asarray(action, jnp.int32))
        last = timestep.last()
        ended = jnp.asarray(timestep.discount) == 0
        limit = jnp.asarray(params.max_steps_in_episode)
        timed_out = (limit > 0) & (state.time + 1 >= limit)
        terminated = last & ended & ~timed_out
        suite_truncated = last & ~ended
        reward = jnp.asarray(timestep.reward, jnp.float32)
        return (inner, timestep.observation, reward, terminated, suite_truncated,
                suite_truncated | timed_out, scalar_metrics(timestep.extras))

    def step_env(self, key: jax.Array, state: AdaptedState, action: Any,
                 params: AdaptedParams) -> tuple:
        inner, observation, reward, terminated, suite_truncated, _, metrics = self._suite_step(
            state, action, params)
        obs, mask = self._observe(observation)
        state = AdaptedState(self.pack(inner), state.time + 1, suite_truncated, mask, metrics)
        return obs, state, reward, terminated, dict(metrics)

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: AdaptedState, action: Any,
             params: AdaptedParams | None = None) -> tuple:
        """gymnax's ``step`` (same keys, same outputs), selecting the reset on Jumanji's state
        and observation before flattening (module docstring: 0.57x -> within noise)."""
        if self.reset_on_done != "every_step":
            return super().step(key, state, action, params)
        if params is None:
            params = self.default_params
        key_step, key_reset = jax.random.split(key)  # gymnax's split
        inner_st, observation_st, reward, terminated, _, truncated, metrics = self._suite_step(
            state, action, params)
        done = terminated | truncated
        inner_re, timestep_re = self.env.reset(key_reset)

        def select(reset: Any, stepped: Any) -> Any:
            return jax.tree.map(lambda x, y: jax.lax.select(done, x, y), reset, stepped)

        obs, mask = self._observe(select(timestep_re.observation, observation_st))
        zeros = {k: jnp.zeros_like(v) for k, v in metrics.items()}
        # a suite truncation ends the episode, so the kept state's flag is always the reset's
        state = AdaptedState(self.pack(select(inner_re, inner_st)),
                             jnp.where(done, 0, state.time + 1), jnp.zeros_like(done), mask,
                             select(zeros, metrics))
        info = {**metrics, "terminated": terminated, "truncated": truncated,
                "final_observation": self._observe(observation_st)[0]}
        return obs, state, reward, terminated, truncated, info

    def valid_actions(self, state: AdaptedState, params: AdaptedParams) -> jax.Array:
        if state.action_mask.shape[-1:] != (self._num_actions,):
            return jnp.ones(state.action_mask.shape[:-1] + (self._num_actions,), jnp.bool_)
        return state.action_mask

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(self._num_actions)

    def observation_space(self, params: Any = None) -> spaces.Box:
        obs, _ = jax.eval_shape(self.reset_env, jax.random.PRNGKey(0), self.default_params)
        return spaces.Box(-jnp.inf, jnp.inf, obs.shape, jnp.float32)

    @property
    def num_actions(self) -> int:
        return self._num_actions


def make(env_id: str, obs_keys: str | None = None, **kwargs: Any) -> tuple[JumanjiEnv,
                                                                           AdaptedParams]:
    """``jumanji.make(env_id, **kwargs)`` adapted; ``obs_keys``: ``+``-joined field names."""
    import jumanji

    if env_id not in jumanji.registered_environments():
        known = ", ".join(sorted(jumanji.registered_environments()))
        raise ValueError(f"unknown Jumanji env {env_id!r}; Jumanji has: {known}")
    keys = None if obs_keys is None else tuple(str(obs_keys).split("+"))
    env = JumanjiEnv(env_id, jumanji.make(env_id, **kwargs), keys)
    return env, env.default_params
