"""Board symmetries for data augmentation: the observation transforms and action permutations.

Kept apart from ``env.py`` because it is pure bookkeeping over the observation layout and the
action encoding, with no part in the dynamics; ``Snake.symmetries`` delegates here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import jax
import jax.numpy as jnp
import numpy as np

# Where a left-right mirror of the board sends each direction (up, left, down, right).
_MIRROR_DIRECTION = np.array([0, 3, 2, 1], dtype=np.int32)

Observation = jax.Array
Symmetry = tuple[Callable[[Observation], Observation], np.ndarray]


def _identity(obs: Observation) -> Observation:
    """The identity symmetry."""
    return obs


@cache
def _board_symmetry(rotations: int, flip: bool) -> Callable[[Observation], Observation]:
    """``rot90**rotations`` (counter-clockwise) after an optional left-right flip, on (H, W, C).

    Cached: every call hands out the same function object, so a trainer that passes the
    transforms to ``jax.jit`` as static arguments does not recompile.
    """

    def transform(obs: Observation) -> Observation:
        if flip:
            obs = jnp.flip(obs, axis=1)
        return jnp.rot90(obs, rotations, axes=(0, 1)) if rotations % 4 else obs

    name = "_".join(([f"rot{90 * (rotations % 4)}"] if rotations % 4 else []) + ["flip"] * flip)
    transform.__name__ = transform.__qualname__ = name
    return transform


def symmetries(width: int, height: int, actions: str, observation: str) -> tuple[Symmetry, ...]:
    """``Snake.symmetries`` for a board of this shape and these action/observation options."""
    n = 4 if actions == "absolute" else 3
    identity: Symmetry = (_identity, np.arange(n, dtype=np.int32))
    if observation == "egocentric":
        if actions == "relative":
            return (identity, (_board_symmetry(0, True), np.array([2, 1, 0], np.int32)))
        return (identity,)
    rotations = range(4) if width == height else (0, 2)
    out: list[Symmetry] = []
    for flip in (False, True):
        for k in rotations:
            if actions == "absolute":
                mirrored = _MIRROR_DIRECTION if flip else np.arange(4, dtype=np.int32)
                # np.rot90 (counter-clockwise) turns up into left: direction d -> d - 1.
                perm = ((mirrored - k) % 4).astype(np.int32)
            else:
                perm = np.array([2, 1, 0] if flip else [0, 1, 2], np.int32)
            out.append((_identity if (k, flip) == (0, False) else _board_symmetry(k, flip), perm))
    return tuple(out)
