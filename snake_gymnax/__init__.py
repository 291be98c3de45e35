"""Snake for gymnax: ``import snake_gymnax`` registers ``Snake-v0`` with ``gymnax.make``.

Installing the package also registers it without this import (see ``snake_gymnax_autoload``),
so ``gymnax.make("Snake-v0", width=12, height=12)`` works in any project that has it installed.
"""

from __future__ import annotations

from typing import Any

import gymnax

from snake_gymnax.env import ACTION_MODES, Snake
from snake_gymnax.observations import CHANNELS, EGOCENTRIC_CHANNELS, NUM_CHANNELS, OBSERVATIONS
from snake_gymnax.state import CurriculumState, EnvParams, EnvState, RetryState

ENV_ID = "Snake-v0"

__all__ = [
    "ACTION_MODES",
    "CurriculumState",
    "CHANNELS",
    "EGOCENTRIC_CHANNELS",
    "ENV_ID",
    "NUM_CHANNELS",
    "OBSERVATIONS",
    "EnvParams",
    "EnvState",
    "RetryState",
    "Snake",
    "make_snake",
]


def make_snake(**options: Any) -> Snake:
    """Factory registered with gymnax, so every constructor option of :class:`Snake` reaches
    ``gymnax.make``: ``gymnax.make("Snake-v0", width=12, height=12, actions="relative")``."""
    return Snake(**options)


def _register() -> None:
    # gymnax raises on a duplicate id, so a second import, a reload or the auto-load hook
    # running after an explicit import must all be no-ops.
    if ENV_ID in gymnax.registered_envs:
        return
    try:
        gymnax.register(ENV_ID, make_snake)
    except ValueError:  # registered concurrently between the check and the call
        if ENV_ID not in gymnax.registered_envs:
            raise


_register()
