"""The optimizer registry: pluggy hook specs, markers and a registry of plugin optimizers.

A package declares a module in the ``ppo_trainer.optimizers`` entry-point group; the module
implements ``register_optimizers(register)`` with :data:`hookimpl`, for the contract
:data:`PLUGIN_API` (versions and their deprecation path: :mod:`plugins.api`). Our own built-ins
(``optimizers.adam_plugin``, ``optimizers.muon_plugin``) come in the same way. This package
imports neither jax nor optax, so listing optimizers stays fast. Its entry-point loader
(:func:`load_entry_points`) serves other groups too (``ppo_trainer.presets``). Reference:
docs/optimizers.md.
"""

from plugins.api import PLUGIN_API, PluginAPIDeprecationWarning
from plugins.errors import (
    AmbiguousOptimizerError,
    HyperParameterError,
    OptimizerError,
    PluginAPIError,
    UnknownOptimizerError,
)
from plugins.hookspecs import PROJECT_NAME, hookimpl, hookspec
from plugins.hyperparams import HyperParam
from plugins.loader import (
    BUILTIN_DISTRIBUTION,
    BUILTIN_PLUGINS,
    ENTRY_POINT_GROUP,
    Loaded,
    OptimizerInfo,
    Plugin,
    load_entry_points,
)
from plugins.registry import (
    ALWAYS_RESERVED,
    OptimizerRegistry,
    get_registry,
    make_registry,
)

__all__ = [
    "ALWAYS_RESERVED",
    "BUILTIN_DISTRIBUTION",
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PLUGIN_API",
    "PROJECT_NAME",
    "AmbiguousOptimizerError",
    "HyperParam",
    "HyperParameterError",
    "Loaded",
    "OptimizerError",
    "OptimizerInfo",
    "OptimizerRegistry",
    "Plugin",
    "PluginAPIDeprecationWarning",
    "PluginAPIError",
    "UnknownOptimizerError",
    "get_registry",
    "hookimpl",
    "hookspec",
    "load_entry_points",
    "make_registry",
]
