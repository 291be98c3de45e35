"""Resolve ``config.env`` to an (unwrapped) gymnax environment and its parameters.

Public API:

- ``make_env(config) -> (env, env_params)``: ``config.env`` is a registered gymnax id
  (``CartPole-v1``, ``Snake-v0``, ...) or ``module:EnvId`` (the module is imported first so it can
  call ``gymnax.register``). ``snake_gymnax`` is always imported first (when installed) so
  ``Snake-v0`` resolves. Snake gets ``width``/``height`` constructor kwargs; the ``EnvParams``
  overrides ``apple_reward``, ``death_penalty``, ``step_penalty`` and ``max_steps``
  (-> ``max_steps_in_episode``) apply when set, and raise ``ValueError`` for an env whose params
  lack the field. The env is returned UNWRAPPED: the trainer adds gymnax's ``LogWrapper``;
  networks flatten observations themselves, so evaluation sees the same observations.
- ``make_action_fn(env, env_params) -> fn(action) -> env_action``: what the trainer does to a
  sampled action before ``env.step``: Box actions are reshaped to the space's shape and clipped to
  its bounds; Discrete actions pass through. Use it for greedy evaluation too.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments import spaces

# Constructor kwargs (they change array shapes) for envs that take a board size.
_BOARD_ENVS = ("Snake-v0",)

# TrainConfig field -> EnvParams field.
_PARAM_OVERRIDES = {
    "apple_reward": "apple_reward",
    "death_penalty": "death_penalty",
    "step_penalty": "step_penalty",
    "max_steps": "max_steps_in_episode",
}


def _import_snake() -> bool:
    """Import ``snake_gymnax`` so ``Snake-v0`` is registered; False if it is not available."""
    try:
        importlib.import_module("snake_gymnax")
    except ImportError:
        return False
    return True


def make_env(config: Any) -> tuple[Any, Any]:
    """Return ``(env, env_params)`` for ``config.env`` with the config's overrides applied."""
    import gymnax

    _import_snake()
    env_id = config.env
    if ":" in env_id:
        module, env_id = env_id.split(":", 1)
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ValueError(
                f"--env {config.env!r}: cannot import module {module!r}: {err}"
            ) from err
    if env_id not in gymnax.registered_envs:
        raise ValueError(
            f"unknown env {env_id!r}; registered gymnax envs: {', '.join(gymnax.registered_envs)}"
        )
    kwargs = {"width": config.width, "height": config.height} if env_id in _BOARD_ENVS else {}
    env, env_params = gymnax.make(env_id, **kwargs)

    overrides = {}
    for flag, name in _PARAM_OVERRIDES.items():
        value = getattr(config, flag)
        if value is None:
            continue
        if not hasattr(env_params, name):
            raise ValueError(
                f"--{flag.replace('_', '-')} is set but {env_id}'s EnvParams has no field {name!r}"
            )
        default = getattr(env_params, name)
        overrides[name] = type(default)(value) if isinstance(default, (int, float)) else value
    if overrides:
        env_params = env_params.replace(**overrides)
    return env, env_params


def make_action_fn(env: Any, env_params: Any) -> Callable[[jax.Array], jax.Array]:
    """Map network actions to env actions: Box -> reshape to the space and clip to its bounds."""
    space = env.action_space(env_params)
    if not isinstance(space, spaces.Box):
        return lambda action: action
    shape = tuple(space.shape)
    low = jnp.asarray(space.low, jnp.float32)
    high = jnp.asarray(space.high, jnp.float32)

    def to_env(action: jax.Array) -> jax.Array:
        action = action.reshape(action.shape[:-1] + shape)
        return jnp.clip(action, low, high)

    return to_env
