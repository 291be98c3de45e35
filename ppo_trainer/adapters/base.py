"""What the adapters share: the state and params every adapted env carries, and the rules that
reduce a suite's structured observation and ``info`` to what the trainer reads.

- :class:`AdaptedState`: the suite's own state as the tuple of its leaves (``inner``: suites'
  state classes are not all known to flax's checkpoint serialization; :meth:`AdaptedEnv.pack` and
  :meth:`AdaptedEnv.unpack` convert), the step count ``time``, whether the
  suite signalled a time limit on the last step (``truncated``), the last observation's
  ``action_mask`` (a zero-size array when the suite has none), the suite's per-step scalar
  metrics (``metrics``) and, for ``reset_on_done = "cached"``, the first reset's observation and
  state (``first``). An adapter's ``step_env`` returns ``state.replace(...)`` so ``first`` stays.
- :class:`AdaptedParams`: ``max_steps_in_episode`` is our own time limit on top of the suite's
  (``0``: none); it defaults to the suite's limit where the suite has one, so evaluation knows how
  long an episode can last. Everything else about a suite's env is a constructor argument
  (``--env-kwargs``): suites fix their dynamics at construction.
- :class:`AdaptedEnv`: a gymnax ``Environment`` whose ``is_truncated`` is the suite's signal (or
  our limit), so gymnax's ``step`` auto-resets and fills ``info["final_observation"]``.
  ``reset_on_done = "cached"`` replaces gymnax's reset-on-every-step with a reset from the first
  reset's state (what Brax's own ``AutoResetWrapper`` does), for suites whose reset is a physics
  pipeline initialisation.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments.environment import Environment

RESET_RULES = ("every_step", "cached")
"""The values of :attr:`AdaptedEnv.reset_on_done`."""


@struct.dataclass
class AdaptedState:
    inner: Any
    time: jax.Array
    truncated: jax.Array
    action_mask: jax.Array
    metrics: dict[str, jax.Array]
    # ``reset_on_done = "cached"``: (obs, state) of this env's first reset, which every later
    # episode starts from; ``()`` otherwise
    first: Any = ()


@struct.dataclass
class AdaptedParams:
    max_steps_in_episode: int = 0


def scalar_metrics(values: Any) -> dict[str, jax.Array]:
    """The numeric scalar entries of a mapping (the suite's per-step metrics), as float32."""
    out = {}
    for key, value in dict(values or {}).items():
        value = jnp.asarray(value) if isinstance(value, (int, float, bool)) else value
        if getattr(value, "shape", None) == () and (
                jnp.issubdtype(value.dtype, jnp.number) or value.dtype == jnp.bool_):
            out[str(key)] = jnp.asarray(value, jnp.float32)
    return out


def flatten_fields(fields: dict[str, Any]) -> jax.Array:
    """The documented rule for structured observations: one field keeps its shape (a grid stays
    an image); several are each cast to float32, flattened, and concatenated in their order."""
    leaves = list(fields.values())
    if len(leaves) == 1:
        return jnp.asarray(leaves[0], jnp.float32)
    return jnp.concatenate([jnp.asarray(x, jnp.float32).reshape(-1) for x in leaves])


class AdaptedEnv(Environment):
    """Base of the adapters: time limits from the suite's own signal, or ours.

    ``reset_on_done``: how an episode that ended is restarted inside ``step``.

    - ``"every_step"`` (gymnax's own ``step``): ``reset_env`` runs on every step, with a fresh
      key, and is selected where the episode ended. Each episode starts from a new random state;
      the price is a reset traced into, and run on, every step.
    - ``"cached"``: ``reset`` keeps the first reset's observation and state in
      ``AdaptedState.first``, and ``step`` selects them where the episode ended; ``reset_env`` is
      never traced in ``step``. Every episode of one env then restarts from that env's first
      reset state, as in Brax's ``AutoResetWrapper`` (and so in Brax's and MuJoCo Playground's
      own training): start-state diversity comes from the number of envs. For physics suites,
      whose reset is a full pipeline initialisation.

    Both keep the gymnax 1.0 contract: six values, ``info["final_observation"]`` the last
    observation of the episode that ended, ``terminated``/``truncated`` in ``info``.
    """

    suite_name = "suite"
    reset_on_done = "every_step"

    def __init__(self, env_id: str) -> None:
        super().__init__()
        self.env_id = env_id

    @property
    def name(self) -> str:
        return f"{self.suite_name}/{self.env_id}"

    def suite_reset(self, key: jax.Array) -> Any:
        """The suite's own state after a reset (used for its structure only)."""
        raise NotImplementedError

    def pack(self, inner: Any) -> tuple:
        """The suite's state as a tuple of leaves (what :class:`AdaptedState` holds)."""
        return tuple(jax.tree.leaves(inner))

    def unpack(self, leaves: tuple) -> Any:
        """The suite's state from :meth:`pack`'s leaves."""
        treedef = getattr(self, "_treedef", None)
        if treedef is None:
            shapes = jax.eval_shape(self.suite_reset, jax.random.PRNGKey(0))
            treedef = self._treedef = jax.tree.structure(shapes)
        return jax.tree.unflatten(treedef, list(leaves))

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params: AdaptedParams | None = None
              ) -> tuple[jax.Array, AdaptedState]:
        """gymnax's ``reset``; with ``reset_on_done = "cached"`` the state also keeps itself."""
        obs, state = super().reset(key, params)
        if self.reset_on_done == "cached":
            state = state.replace(first=(obs, state))
        return obs, state

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: AdaptedState, action: Any,
             params: AdaptedParams | None = None) -> tuple:
        """gymnax's ``step``, or with ``reset_on_done = "cached"`` the same step that restarts
        an ended episode from the cached first reset instead of calling ``reset_env``."""
        if self.reset_on_done not in RESET_RULES:
            raise ValueError(f"{self.name}: reset_on_done={self.reset_on_done!r}; it must be "
                             f"one of {', '.join(RESET_RULES)}")
        if self.reset_on_done != "cached":
            return super().step(key, state, action, params)
        if params is None:
            params = self.default_params
        key_step, _ = jax.random.split(key)  # gymnax's split, so step_env sees the same key
        obs_st, state_st, reward, terminated, info = self.step_env(key_step, state, action,
                                                                   params)
        state_st = state_st.replace(first=state.first)
        truncated = self.is_truncated(state_st, params)
        done = jnp.logical_or(terminated, truncated)
        obs_re, state_re = state.first
        state_re = state_re.replace(first=state.first)
        state = jax.tree.map(lambda x, y: jax.lax.select(done, x, y), state_re, state_st)
        obs = jax.tree.map(lambda x, y: jax.lax.select(done, x, y), obs_re, obs_st)
        info = {**info, "terminated": terminated, "truncated": truncated,
                "final_observation": obs_st}
        return obs, state, reward, terminated, truncated, info

    def is_truncated(self, state: AdaptedState, params: AdaptedParams) -> jax.Array:
        limit = jnp.asarray(params.max_steps_in_episode)
        ours = (limit > 0) & (state.time >= limit)
        return jnp.logical_or(state.truncated, ours)

    def __hash__(self) -> int:  # jit's static self: one compile per adapter instance
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other
