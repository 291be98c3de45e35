"""The optimizer hook specification and its markers.

Modelled on ``register_models(register)`` in simonw/llm: a plugin implements one hook that
receives a ``register`` callable, and calls it once per optimizer it provides. The project name
``ppo_trainer`` ties the markers to our :class:`pluggy.PluginManager`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT_NAME = "ppo_trainer"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_optimizers(register: Callable[..., Any]) -> None:
    """Register optimizers by calling
    ``register(name, factory, hyperparams=(), description="", *, plugin_api=None)``.

    Plugin API 2 (``plugins.PLUGIN_API``): the registry calls
    ``factory(*, learning_rate, **declared_hyperparams)`` with every declared hyperparameter (so a
    factory needs no defaults of its own) and applies the global-norm clip itself; the factory
    returns an ``optax.GradientTransformation`` without a clip. Declare the version the plugin
    was written for with a module attribute ``PLUGIN_API = 2`` (or ``plugin_api=2``); a factory
    taking ``max_grad_norm`` is served by the deprecated plugin API 1 (see ``plugins.api``).
    Import jax/optax inside the factory, not at module level, so that listing stays fast.
    """
