"""MuJoCo Playground (``playground/ID``, e.g. ``playground/CartpoleBalance``,
``playground/PendulumSwingup``) as a gymnax 1.0 env: the DM Control Suite tasks, whose models
ship in the package.

- **Steps**: ``mujoco_playground.registry.load(id, config_overrides=...)`` inside Brax's
  ``EpisodeWrapper`` with the env config's ``episode_length`` and ``action_repeat``, as
  Playground's ``wrapper.wrap_for_brax_training`` does; its ``info["truncation"]`` is our
  ``truncated``, ``done`` without it our ``terminated``.
- **Resets**: cached first reset, as Playground's ``BraxAutoResetWrapper`` does by default
  (``reset_on_done = "cached"``, see :class:`~ppo_trainer.adapters.base.AdaptedEnv`).
- **Config**: ``--env-kwargs`` override the env config (``episode_length=200``, ``impl=...``);
  ``impl`` defaults to ``jax`` (MJX's JAX implementation, which runs on any JAX backend; the DM
  Control configs ask for ``warp``, which needs the separate ``mujoco_warp`` package and a CUDA
  GPU).
- **Observations**: an array keeps its shape; a dict of fields is reduced with
  :func:`~ppo_trainer.adapters.base.flatten_fields`' rule (``obs_keys=state`` picks fields,
  ``+``-joined). **Actions**: ``Box(-1, 1, (env.action_size,))``.
- **Metrics**: the numeric scalars of the State's ``metrics`` (reward terms).
- **Refused**: locomotion and manipulation tasks, whose robot models Playground downloads
  (``mujoco_menagerie``) on first use, unless that copy is already there.
- **Frames**: none: Playground renders with MuJoCo's OpenGL renderer on the host, not under jit.
"""

from __future__ import annotations

from typing import Any

from ppo_trainer.adapters.base import AdaptedParams
from ppo_trainer.adapters.physics import PhysicsEnv

REQUIRES = ("mujoco_playground",)
INSTALL = 'pip install "snake-ppo-jax[playground]"'
IDS = ("CartpoleBalance", "PendulumSwingup")

DEFAULT_IMPL = "jax"


class PlaygroundEnv(PhysicsEnv):
    suite_name = "playground"


def _downloads_models(env_id: str) -> str | None:
    """The registry category of a task whose models are downloaded at first use and are not
    there yet (``None``: the task can be built offline). Makes no network call."""
    from mujoco_playground import locomotion, manipulation
    from mujoco_playground._src import mjx_env

    for category, module in (("locomotion", locomotion), ("manipulation", manipulation)):
        if env_id in module.ALL_ENVS and not mjx_env.MENAGERIE_PATH.exists():
            return category
    return None


def make(env_id: str, obs_keys: str | None = None, **overrides: Any
         ) -> tuple[PlaygroundEnv, AdaptedParams]:
    """``registry.load(env_id, config_overrides=overrides)`` in Brax's ``EpisodeWrapper``, with
    the config's episode length, adapted."""
    from brax.envs.wrappers.training import EpisodeWrapper
    from mujoco_playground import registry

    if env_id not in registry.ALL_ENVS:
        raise ValueError(f"unknown MuJoCo Playground env {env_id!r}; the DM Control Suite tasks "
                         f"are: {', '.join(sorted(registry.dm_control_suite.ALL_ENVS))}")
    category = _downloads_models(env_id)
    if category is not None:
        raise ValueError(f"{env_id} is a {category} task whose robot model MuJoCo Playground "
                         "downloads (mujoco_menagerie) on first use, and it is not installed: "
                         "use a DM Control Suite task (playground/CartpoleBalance) or Brax "
                         "(brax/ant)")
    config = registry.get_default_config(env_id)
    overrides = {"impl": DEFAULT_IMPL, **overrides} if "impl" in config else dict(overrides)
    unknown = [k for k in overrides if k not in config]
    if unknown:
        raise ValueError(f"{', '.join(unknown)} not in {env_id}'s config; it has: "
                         f"{', '.join(sorted(config))}")
    config.update(overrides)
    inner = registry.load(env_id, config=config)
    config = getattr(inner, "_config", config)  # the env may adjust it (vision: 250 steps)
    episode_length = int(config.get("episode_length", 1000))
    action_repeat = int(config.get("action_repeat", 1))
    keys = None if obs_keys is None else tuple(str(obs_keys).split("+"))
    wrapped = EpisodeWrapper(inner, episode_length, action_repeat)
    env = PlaygroundEnv(env_id, wrapped, episode_length, action_repeat, keys)
    return env, env.default_params
