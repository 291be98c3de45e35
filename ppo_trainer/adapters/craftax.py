"""Craftax (``craftax/ID``, e.g. ``craftax/Craftax-Classic-Symbolic-v1``) as a gymnax 1.0 env.

- **Ids**: ``Craftax-Classic-Symbolic-v1``, ``Craftax-Symbolic-v1`` (flat float vectors, 1345
  and 8268 values) and ``Craftax-Classic-Pixels-v1``, ``Craftax-Pixels-v1`` (images for the
  CNN), built with ``make_craftax_env_from_name(name, auto_reset=False)``.
- **Steps**: Craftax speaks the old gymnax API (one ``done``). Its time limit is
  ``max_timesteps`` in its params; the rule: a step is a *termination* when the player's episode
  ends for a reason of the game (health 0, lava; Craftax: the final boss beaten), which is
  Craftax's own ``is_terminal`` with the time limit lifted, and a *truncation* when the state's
  ``timestep`` reaches ``max_timesteps`` (or ``max_steps_in_episode``, which defaults to it). A
  step at the time limit is a truncation, not a termination, as in the other adapters.
- **Settings**: ``--env-kwargs`` set fields of Craftax's ``EnvParams`` (``max_timesteps=1000``,
  ``day_length=...``; values cast to the field's type) and ``reset_ratio`` (below).
- **Resets**: generating a world costs several steps (docs/envs.md has the measurement), and
  gymnax's ``step`` computes a reset for every env on every step (under ``vmap`` a per-env
  branch computes both sides). ``step_batch`` (the batch step every ``vmap`` of ``step`` runs,
  :func:`ppo_trainer.envs.step_with_batch_rule`) generates ``ceil(reset_ratio * num_envs)``
  fresh worlds per step and hands them to the envs whose episode ended, in env order; when
  more envs end in one step than there are fresh worlds, some start from the same world (as
  with Craftax's own optimistic-reset wrapper). ``reset_ratio=1`` gives every env its own.
- **Metrics**: ``achievements`` (the number unlocked so far in the episode) and one
  ``achievement_<name>`` flag per achievement (0/1), float32 scalars in ``info``; averaged over
  the episodes that ended, each flag is that achievement's success rate.
- **Frames**: ``render_frame`` draws Craftax's jittable pixel renderer at 16 pixels a block.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments import spaces

from ppo_trainer.adapters.base import AdaptedEnv, AdaptedParams, AdaptedState
from ppo_trainer.envs import step_with_batch_rule

REQUIRES = ("craftax",)
INSTALL = 'pip install "snake-ppo-jax[craftax]"'
IDS = ("Craftax-Classic-Symbolic-v1", "Craftax-Symbolic-v1", "Craftax-Classic-Pixels-v1",
       "Craftax-Pixels-v1")
DEFAULT_RESET_RATIO = 1 / 16
"""Fresh worlds per step as a fraction of the batch (Craftax's reference PPO's 1 in 16)."""
FRAME_BLOCK_PIXELS = 16
_NO_LIMIT = 2**31 - 1


class CraftaxEnv(AdaptedEnv):
    suite_name = "craftax"

    def __init__(self, env_id: str, env: Any, craftax_params: Any,
                 reset_ratio: float = DEFAULT_RESET_RATIO) -> None:
        super().__init__(env_id)
        if not 0 < reset_ratio <= 1:
            raise ValueError(f"reset_ratio={reset_ratio}: give a fraction in (0, 1]")
        self.env = env
        self.craftax_params = craftax_params
        self.reset_ratio = float(reset_ratio)
        classic = "Classic" in env_id
        if classic:
            from craftax.craftax_classic.constants import Achievement
        else:
            from craftax.craftax.constants import Achievement
        self.achievement_names = tuple(a.name.lower() for a in
                                       sorted(Achievement, key=lambda a: a.value))
        self._classic = classic
        self._num_actions = int(env.num_actions)
        self._step = step_with_batch_rule(super().step, self.step_batch)

    @property
    def default_params(self) -> AdaptedParams:
        return AdaptedParams(max_steps_in_episode=int(self.craftax_params.max_timesteps))

    def suite_reset(self, key: jax.Array) -> Any:
        return self.env.reset_env(key, self.craftax_params)[1]

    def _metrics(self, inner: Any) -> dict[str, jax.Array]:
        unlocked = jnp.asarray(inner.achievements, jnp.float32)
        out = {"achievements": unlocked.sum()}
        out.update({f"achievement_{name}": unlocked[i]
                    for i, name in enumerate(self.achievement_names)})
        return out

    def reset_env(self, key: jax.Array, params: AdaptedParams) -> tuple[jax.Array, AdaptedState]:
        obs, inner = self.env.reset_env(key, self.craftax_params)
        # world generation leaves some fields Python scalars: arrays, of the type a step gives
        inner = jax.tree.map(lambda x: jnp.asarray(x, jnp.asarray(x).dtype), inner)
        state = AdaptedState(self.pack(inner), jnp.int32(0), jnp.bool_(False),
                             jnp.zeros((0,), jnp.bool_), self._metrics(inner))
        return jnp.asarray(obs, jnp.float32), state

    def step_env(self, key: jax.Array, state: AdaptedState, action: Any,
                 params: AdaptedParams) -> tuple:
        obs, inner, reward, _, _ = self.env.step_env(
            key, self.unpack(state.inner), jnp.asarray(action, jnp.int32), self.craftax_params)
        # the game's own ends: Craftax's is_terminal without its time limit
        ended = self.env.is_terminal(inner, self.craftax_params.replace(max_timesteps=_NO_LIMIT))
        suite_limit = inner.timestep >= self.craftax_params.max_timesteps
        time = state.time + 1
        limit = jnp.asarray(params.max_steps_in_episode)
        timed_out = suite_limit | ((limit > 0) & (time >= limit))
        metrics = self._metrics(inner)
        state = AdaptedState(self.pack(inner), time, suite_limit, state.action_mask, metrics)
        return (jnp.asarray(obs, jnp.float32), state, jnp.asarray(reward, jnp.float32),
                ended & ~timed_out, dict(metrics))

    def num_resets(self, num_envs: int) -> int:
        """Fresh worlds generated per batch step of ``num_envs`` envs."""
        return max(1, min(num_envs, math.ceil(self.reset_ratio * num_envs)))

    def step(self, key: jax.Array, state: AdaptedState, action: Any,
             params: AdaptedParams | None = None) -> tuple:
        """gymnax's step for one env; under ``jax.vmap`` it is :meth:`step_batch`."""
        return self._step(key, state, action, self.default_params if params is None else params)

    def step_batch(self, keys: jax.Array, states: AdaptedState, actions: Any,
                   params: AdaptedParams) -> tuple:
        """``jax.vmap(step)``'s outputs for a batch, with ``num_resets(len(keys))`` world
        generations instead of one per env (the optimistic reset, module docstring)."""
        n = keys.shape[0]
        split = jax.vmap(jax.random.split)(keys)
        k_step, k_reset = split[:, 0], split[:, 1]
        obs_st, state_st, reward, terminated, info = jax.vmap(
            self.step_env, in_axes=(0, 0, 0, None))(k_step, states, actions, params)
        truncated = jax.vmap(self.is_truncated, in_axes=(0, None))(state_st, params)
        done = terminated | truncated
        k = self.num_resets(n)
        obs_re, state_re = jax.vmap(self.reset_env, in_axes=(0, None))(k_reset[:k], params)
        # the j-th env (in env order) whose episode ended takes fresh world j mod k
        slot = (jnp.cumsum(done) - 1) % k

        def pick(fresh: jax.Array, stepped: jax.Array) -> jax.Array:
            cond = done.reshape((n,) + (1,) * (stepped.ndim - 1))
            return jnp.where(cond, fresh[slot], stepped)

        state = jax.tree.map(pick, state_re, state_st)
        obs = pick(obs_re, obs_st)
        info = {**info, "terminated": terminated, "truncated": truncated,
                "final_observation": obs_st}
        return obs, state, reward, terminated, truncated, info

    def render_frame(self, state: AdaptedState, params: AdaptedParams) -> jax.Array:
        render = getattr(self, "_render", None)
        if render is None:
            if self._classic:
                from craftax.craftax_classic.renderer import make_craftax_pixel_renderer
            else:
                from craftax.craftax.renderer import make_craftax_pixel_renderer
            # textures load with jnp ops: eagerly, even when render_frame is being traced
            with jax.ensure_compile_time_eval():
                render = self._render = make_craftax_pixel_renderer(FRAME_BLOCK_PIXELS)
        frame = render(self.unpack(state.inner))
        return jnp.clip(jnp.round(frame), 0, 255).astype(jnp.uint8)

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(self._num_actions)

    def observation_space(self, params: Any = None) -> spaces.Box:
        shape = tuple(self.env.observation_space(self.craftax_params).shape)
        return spaces.Box(0.0, 1.0, shape, jnp.float32)

    @property
    def num_actions(self) -> int:
        return self._num_actions


def _craftax_params(env_id: str, defaults: Any, settings: dict[str, Any]) -> Any:
    fields = getattr(defaults, "__dataclass_fields__", {})
    changes = {}
    for name, value in settings.items():
        if name not in fields or name == "fractal_noise_angles":
            known = ", ".join(f for f in fields if f != "fractal_noise_angles")
            raise ValueError(f"craftax/{env_id} has no setting {name!r}; it has: reset_ratio, "
                             f"{known}")
        default = getattr(defaults, name)
        changes[name] = (str(value).lower() in ("1", "true", "yes")
                         if isinstance(default, bool) and isinstance(value, str)
                         else type(default)(value))
    return defaults.replace(**changes)


def make(env_id: str, reset_ratio: float = DEFAULT_RESET_RATIO,
         **settings: Any) -> tuple[CraftaxEnv, AdaptedParams]:
    """``make_craftax_env_from_name(env_id, auto_reset=False)`` adapted; ``settings``: fields of
    Craftax's ``EnvParams``."""
    if env_id not in IDS:
        raise ValueError(f"unknown Craftax env {env_id!r}; Craftax has: {', '.join(IDS)}")
    from craftax.craftax_env import make_craftax_env_from_name

    inner = make_craftax_env_from_name(env_id, auto_reset=False)
    params = _craftax_params(env_id, inner.default_params, settings)
    env = CraftaxEnv(env_id, inner, params, float(reset_ratio))
    return env, env.default_params
