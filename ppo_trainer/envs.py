"""Resolve a config to a gymnax environment, and what the trainer needs to know about any env.

Public API:

- ``make_env(config) -> (env, env_params)``: ``config.env`` is a registered gymnax id
  (``CartPole-v1``, ``Snake-v0``, ...), ``module:EnvId`` (the module is imported first so it can
  call ``gymnax.register``) or ``SUITE/ID``, an env of another suite through its adapter
  (:mod:`ppo_trainer.suites`: ``jumanji/Snake-v1``, ``brax/ant``, ...). ``config.env_kwargs`` go to the constructor (``gymnax.make(id,
  **kwargs)``: shape-changing settings such as a board size), ``config.env_params`` replace
  fields of the env's ``EnvParams`` (values cast to the field's type). A ``Discrete``
  observation is one-hot encoded when ``config.one_hot_obs``. Nothing here names an env: what
  an env needs reaches it through these two dictionaries. The trainer adds gymnax's
  ``LogWrapper``; networks flatten observations themselves, so evaluation sees the same
  observations. Raises :class:`ConfigError` with one line for an unknown id or a bad setting.
- ``make_action_fn(env, env_params) -> fn(action) -> env_action``: Box actions are reshaped to
  the space's shape and clipped to its bounds; Discrete actions pass through.
- ``info_metrics(env, env_params) -> tuple[str, ...]``: the per-step scalar ``info`` values an
  env reports beyond gymnax's own keys (Snake's ``apples``, ``length``, ``win``); the trainer logs
  each as ``charts/<key>`` and evaluation reports each per episode, for any env.
- Optional env hooks, used when the config asks for them and refused with one line when the env
  lacks them: ``env.valid_actions(state, params) -> bool (num_actions,)`` (``action_mask_fn``:
  ``--action-mask`` gives invalid actions zero probability) and ``env.symmetries(params) ->
  ((obs_transform, action_permutation), ...)`` (``symmetry_tables``: ``--augment-symmetry``).
- ``check_final_observation(env, env_params)``: the truncation bootstrap reads
  ``info["final_observation"]``; an env (or wrapper) that omits it, or gives it another shape or
  dtype than the observation, is refused here once, with a message that says what is wrong.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial
from typing import Any

import gymnax
import jax
import jax.numpy as jnp
from gymnax.environments import spaces
from gymnax.wrappers.purerl import GymnaxWrapper
from jax.custom_batching import custom_vmap

from ppo_trainer import suites
from ppo_trainer.errors import ConfigError

# Keys gymnax itself (Environment.step, LogWrapper) puts in info: not env metrics.
GYMNAX_INFO_KEYS = frozenset({
    "discount", "terminated", "truncated", "final_observation", "returned_episode",
    "returned_episode_returns", "returned_episode_lengths", "returned_episode_valid", "timestep",
})


def resolve_env_id(env: str) -> str:
    """The registered id for ``env`` (importing ``module`` of ``module:EnvId`` first). Installed
    env packages register at ``import gymnax`` (``Snake-v0`` through its start-up hook).
    ``SUITE/ID`` is returned as it is once its suite is known and its package installed."""
    if suites.is_suite_id(env):
        suites.split(env)
        return env
    env_id = env
    if ":" in env:
        module, env_id = env.split(":", 1)
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ConfigError(f"--env {env!r}: cannot import module {module!r}: {err}") from None
    if env_id not in gymnax.registered_envs:
        raise ConfigError(
            f"unknown env {env_id!r}; registered gymnax envs: {', '.join(gymnax.registered_envs)}")
    return env_id


def make_env(config: Any) -> tuple[Any, Any]:
    """Return ``(env, env_params)`` for ``config.env`` with the config's env settings applied."""
    env_id = resolve_env_id(config.env)
    kwargs = dict(getattr(config, "env_kwargs", {}) or {})
    try:
        if suites.is_suite_id(env_id):
            env, env_params = suites.make(env_id, **kwargs)
        else:
            env, env_params = gymnax.make(env_id, **kwargs)
    except ConfigError:
        raise
    except TypeError as err:
        raise ConfigError(f"--env-kwargs {kwargs}: {env_id} does not accept them ({err})") from None
    except ValueError as err:
        raise ConfigError(f"--env-kwargs {kwargs}: {err}") from None
    except Exception as err:  # e.g. an env that downloads data at construction, offline
        first = str(err).splitlines()[0] if str(err) else ""
        raise ConfigError(f"{env_id} could not be built: {type(err).__name__}: {first}") from None
    env_params = override_params(env_id, env_params, getattr(config, "env_params", {}) or {})
    if getattr(config, "one_hot_obs", True) and isinstance(
            env.observation_space(env_params), spaces.Discrete):
        env = OneHotObservation(env)
    drop = tuple(getattr(config, "obs_drop", ()) or ())
    if drop:
        env = DropObservation(env, drop, env_params)
    return env, env_params


def make_eval_env(config: Any, env: Any) -> Any | None:
    """The env greedy evaluation plays where it differs from the training env, else ``None``.

    An env names the constructor kwargs that shape training only (Snake's ``curriculum_start``)
    in an ``evaluation_kwargs`` mapping; evaluation rebuilds the env with them, so a win rate is
    measured on the game itself. The observation and action spaces stay the training env's."""
    extra = dict(getattr(env, "evaluation_kwargs", None) or {})  # read through wrappers
    if not extra:
        return None
    kwargs = {**(getattr(config, "env_kwargs", {}) or {}), **extra}
    return make_env(config.replace(env_kwargs=kwargs))[0]


def override_params(env_id: str, env_params: Any, overrides: dict[str, Any]) -> Any:
    """``env_params`` with ``overrides`` applied, each cast to the type of the field's default."""
    if not overrides:
        return env_params
    fields = getattr(env_params, "__dataclass_fields__", {})
    changes = {}
    for name, value in overrides.items():
        if name not in fields:
            raise ConfigError(f"--env-params {name}={value}: {env_id}'s EnvParams has no field "
                              f"{name!r}; it has: {', '.join(fields) or 'none'}")
        default = getattr(env_params, name)
        try:
            if isinstance(default, bool):
                changes[name] = bool(value)
            elif isinstance(default, (int, float)):
                changes[name] = type(default)(value)
            else:
                changes[name] = jnp.asarray(value, dtype=jnp.asarray(default).dtype)
        except (TypeError, ValueError):
            raise ConfigError(f"--env-params {name}={value!r}: expected a value like "
                              f"{default!r}") from None
    return env_params.replace(**changes)


class OneHotObservation(GymnaxWrapper):
    """``Discrete(n)`` observations as float one-hot vectors of length ``n`` (``final_observation``
    in ``info`` too, so truncated steps bootstrap from the same encoding)."""

    def observation_space(self, params: Any) -> spaces.Box:
        n = self._env.observation_space(params).n
        return spaces.Box(0.0, 1.0, (int(n),), jnp.float32)

    def _encode(self, obs: jax.Array, params: Any) -> jax.Array:
        return jax.nn.one_hot(obs, self._env.observation_space(params).n, dtype=jnp.float32)

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, Any]:
        params = self._env.default_params if params is None else params
        obs, state = self._env.reset(key, params)
        return self._encode(obs, params), state

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None) -> tuple:
        params = self._env.default_params if params is None else params
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        info = {**info, "final_observation": self._encode(info["final_observation"], params)}
        return self._encode(obs, params), state, reward, terminated, truncated, info


class DropObservation(GymnaxWrapper):
    """A flat observation without the entries at ``indices`` (``--obs-drop``): CartPole without
    its velocities is a partially observed task, solvable only by a policy with memory.

    The entries are removed, not zeroed: the observation space then says what the policy sees,
    the network has no dead inputs, and ``--normalize-obs`` has no constant entry whose std is
    0. Only 1-D observations (the classic-control and bsuite envs) are accepted; on an image or
    grid, removing entries would break its shape for a CNN. ``final_observation`` in ``info``
    loses the same entries, so truncated steps bootstrap from what the policy sees.
    """

    def __init__(self, env: Any, indices: tuple[int, ...], params: Any) -> None:
        super().__init__(env)
        space = env.observation_space(params)
        shape = tuple(getattr(space, "shape", ()) or ())
        text = ",".join(map(str, indices))
        if not isinstance(space, spaces.Box) or len(shape) != 1:
            raise ConfigError(f"--obs-drop {text}: needs a flat (1-D Box) observation; "
                              f"{getattr(env, 'name', type(env).__name__)} observes "
                              f"{type(space).__name__} {shape}")
        if max(indices) >= shape[0] or len(indices) >= shape[0]:
            raise ConfigError(f"--obs-drop {text}: the observation has {shape[0]} entries "
                              f"(indices 0-{shape[0] - 1}), and at least one must stay")
        self.keep = tuple(i for i in range(shape[0]) if i not in set(indices))

    def observation_space(self, params: Any) -> spaces.Box:
        space = self._env.observation_space(params)
        keep = jnp.asarray(self.keep)
        bound = lambda b: jnp.broadcast_to(jnp.asarray(b), space.shape)[keep]  # noqa: E731
        return spaces.Box(bound(space.low), bound(space.high), (len(self.keep),), space.dtype)

    def _select(self, obs: jax.Array) -> jax.Array:
        return obs[..., jnp.asarray(self.keep)]

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, Any]:
        obs, state = self._env.reset(key, params)
        return self._select(obs), state

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None) -> tuple:
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        info = {**info, "final_observation": self._select(info["final_observation"])}
        return self._select(obs), state, reward, terminated, truncated, info


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


def _step_shapes(env: Any, env_params: Any) -> tuple[Any, dict[str, Any]]:
    """Shapes of one observation and of ``env.step``'s info (abstract: nothing is computed)."""
    key = jax.random.PRNGKey(0)
    obs, state = jax.eval_shape(env.reset, key, env_params)
    action = jax.eval_shape(lambda: env.action_space(env_params).sample(key))
    out = jax.eval_shape(env.step, key, state, action, env_params)
    return obs, out[-1]


def info_metrics(env: Any, env_params: Any) -> tuple[str, ...]:
    """Names of the scalar numeric per-step ``info`` values beyond gymnax's own keys, sorted."""
    _, info = _step_shapes(env, env_params)
    return tuple(sorted(
        k for k, v in info.items()
        if k not in GYMNAX_INFO_KEYS and getattr(v, "shape", None) == ()
        and (jnp.issubdtype(v.dtype, jnp.number) or v.dtype == jnp.bool_)))


def check_final_observation(env: Any, env_params: Any) -> None:
    """Refuse an env whose ``info["final_observation"]`` is missing or unlike its observation."""
    obs, info = _step_shapes(env, env_params)
    name = getattr(env, "name", type(env).__name__)
    if "final_observation" not in info:
        raise ConfigError(
            f"{name}: env.step's info has no 'final_observation' (the pre-reset observation of "
            "gymnax >= 1.0), which PPO needs to bootstrap truncated episodes; step with gymnax's "
            "Environment.step or add it in your wrapper")
    final = info["final_observation"]
    if (final.shape, final.dtype) != (obs.shape, obs.dtype):
        raise ConfigError(
            f"{name}: info['final_observation'] has shape {final.shape} {final.dtype} but "
            f"observations have {obs.shape} {obs.dtype}: a wrapper transforms observations "
            "without transforming info['final_observation'] the same way")


def action_mask_fn(env: Any, env_params: Any) -> Callable[[Any], jax.Array]:
    """``fn(env_state) -> bool (num_actions,)`` from the env's ``valid_actions`` hook."""
    if not callable(getattr(env, "valid_actions", None)):
        raise ConfigError(f"--action-mask: {getattr(env, 'name', type(env).__name__)} has no "
                          "valid_actions(state, params) method")
    if not isinstance(env.action_space(env_params), spaces.Discrete):
        raise ConfigError("--action-mask needs a Discrete action space")
    return lambda state: jnp.asarray(env.valid_actions(state, env_params), jnp.bool_)


def symmetry_tables(env: Any, env_params: Any) -> tuple[tuple[Callable, ...], jax.Array]:
    """``(obs_transforms, perms)`` from the env's ``symmetries`` hook; ``perms[k, a]`` is the
    action that plays the role of ``a`` in ``obs_transforms[k](obs)``."""
    name = getattr(env, "name", type(env).__name__)
    if not callable(getattr(env, "symmetries", None)):
        raise ConfigError(f"--augment-symmetry: {name} has no symmetries(params) method")
    pairs = tuple(env.symmetries(env_params))
    if len(pairs) < 2:
        raise ConfigError(f"--augment-symmetry: {name} declares no symmetry besides the identity "
                          "for these settings")
    perms = jnp.asarray([p for _, p in pairs], jnp.int32)
    n = env.action_space(env_params).n
    if perms.shape[1] != n or not all(sorted(map(int, p)) == list(range(n)) for p in perms):
        raise ConfigError(f"--augment-symmetry: {name}'s action permutations are not "
                          f"permutations of its {n} actions")
    return tuple(f for f, _ in pairs), perms


def batched_step(env: Any) -> Callable[..., tuple]:
    """``fn(keys, states, actions, params)``: one step of a batch of envs sharing ``params``, as
    the trainer and the evaluator step theirs: ``jax.vmap(env.step)``. An env whose batch can
    step for less than one full step per env (a reset only where an episode ended) defines
    ``step_batch(keys, states, actions, params)``, with the outputs of ``jax.vmap(env.step)``,
    and builds its ``step`` with :func:`step_with_batch_rule`: then this vmap runs
    ``step_batch``, and so does a vmap through any wrapper (gymnax's ``LogWrapper`` steps the env
    inside it one env at a time, and a wrapper's attribute lookup would skip its own ``step``)."""
    return jax.vmap(env.step, in_axes=(0, 0, 0, None))


def step_with_batch_rule(step: Callable[..., tuple],
                         step_batch: Callable[..., tuple]) -> Callable[..., tuple]:
    """``step(key, state, action, params)`` for one env, whose ``jax.vmap`` over envs runs
    ``step_batch`` (``jax.custom_batching.custom_vmap``). Why: under ``vmap`` a ``lax.cond`` on a
    per-env flag becomes a select that computes both branches, so no per-env ``step`` can skip
    a reset that only the envs whose episode ended need. Arguments that arrive unbatched are
    broadcast; batched ``params`` (one per env) fall back to ``vmap(step)``. Outer vmaps (over
    seeds) batch ``step_batch`` itself."""
    def one(key: Any, state: Any, action: Any, params: Any) -> tuple:
        return step(key, state, action, params)

    fn = custom_vmap(one)

    @fn.def_vmap
    def rule(axis_size: int, in_batched: list, key: Any, state: Any, action: Any,
             params: Any) -> tuple:
        def full(tree: Any, batched: Any) -> Any:
            return jax.tree.map(
                lambda x, b: x if b else jnp.broadcast_to(x, (axis_size, *jnp.shape(x))),
                tree, batched)

        key, state, action = (full(tree, batched) for tree, batched
                              in zip((key, state, action), in_batched[:3], strict=True))
        if any(jax.tree.leaves(in_batched[3])):
            out = jax.vmap(step)(key, state, action, full(params, in_batched[3]))
        else:
            out = step_batch(key, state, action, params)
        return out, jax.tree.map(lambda _: True, out)

    return fn
