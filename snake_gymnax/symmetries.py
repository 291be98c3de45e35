"""Board symmetries for data augmentation: the observation transforms and action permutations.

Kept apart from ``env.py`` because it is pure bookkeeping over the observation layout and the
action encoding, with no part in the dynamics; ``Snake.symmetries`` picks the elements that
fit its options and pairs each ``board_symmetry`` with its ``action_permutation``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import jax
import jax.numpy as jnp
import numpy as np

# Where a left-right mirror of the board sends each direction (up, left, down, right).
MIRROR_DIRECTION = np.array([0, 3, 2, 1], dtype=np.int32)

Observation = jax.Array
Symmetry = tuple[Callable[[Observation], Observation], np.ndarray]


def identity(obs: Observation) -> Observation:
    """The identity symmetry."""
    return obs


@cache
def board_symmetry(rotations: int, flip: bool) -> Callable[[Observation], Observation]:
    """``rot90**rotations`` (counter-clockwise) after an optional left-right flip, on (H, W, C).

    Cached: every call hands out the same function object (``identity`` for no change), so a
    trainer that passes the transforms to ``jax.jit`` as static arguments does not recompile.
    """
    if not rotations % 4 and not flip:
        return identity

    def transform(obs: Observation) -> Observation:
        if flip:
            obs = jnp.flip(obs, axis=1)
        return jnp.rot90(obs, rotations, axes=(0, 1)) if rotations % 4 else obs

    name = "_".join(([f"rot{90 * (rotations % 4)}"] if rotations % 4 else []) + ["flip"] * flip)
    transform.__name__ = transform.__qualname__ = name
    return transform


def action_permutation(actions: str, rotations: int, flip: bool) -> np.ndarray:
    """``perm[a]``: the action that does in the transformed board what ``a`` did before.

    Absolute actions turn with the board (``np.rot90`` turns up into left: ``d -> d - 1``) and
    mirror across it; relative turns only swap left and right under a flip.
    """
    if actions == "relative":
        return np.array([2, 1, 0] if flip else [0, 1, 2], np.int32)
    mirrored = MIRROR_DIRECTION if flip else np.arange(4, dtype=np.int32)
    return ((mirrored - rotations) % 4).astype(np.int32)
