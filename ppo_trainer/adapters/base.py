"""What the adapters share: the state and params every adapted env carries, and the rules that
reduce a suite's structured observation and ``info`` to what the trainer reads.

- :class:`AdaptedState`: the suite's own state as the tuple of its leaves (``inner``: suites'
  state classes are not all known to flax's checkpoint serialization; :meth:`AdaptedEnv.pack` and
  :meth:`AdaptedEnv.unpack` convert), the step count ``time``, whether the
  suite signalled a time limit on the last step (``truncated``), the last observation's
  ``action_mask`` (a zero-size array when the suite has none) and the suite's per-step scalar
  metrics (``metrics``).
- :class:`AdaptedParams`: ``max_steps_in_episode`` is our own time limit on top of the suite's
  (``0``: none); it defaults to the suite's limit where the suite has one, so evaluation knows how
  long an episode can last. Everything else about a suite's env is a constructor argument
  (``--env-kwargs``): suites fix their dynamics at construction.
- :class:`AdaptedEnv`: a gymnax ``Environment`` whose ``is_truncated`` is the suite's signal (or
  our limit), so gymnax's ``step`` auto-resets and fills ``info["final_observation"]``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments.environment import Environment


@struct.dataclass
class AdaptedState:
    inner: Any
    time: jax.Array
    truncated: jax.Array
    action_mask: jax.Array
    metrics: dict[str, jax.Array]


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
    """Base of the adapters: time limits from the suite's own signal, or ours."""

    suite_name = "suite"

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

    def is_truncated(self, state: AdaptedState, params: AdaptedParams) -> jax.Array:
        limit = jnp.asarray(params.max_steps_in_episode)
        ours = (limit > 0) & (state.time >= limit)
        return jnp.logical_or(state.truncated, ours)

    def __hash__(self) -> int:  # jit's static self: one compile per adapter instance
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other
